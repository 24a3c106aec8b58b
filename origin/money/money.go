package money

import (
	"errors"
	"strconv"
	"strings"
)

// ErrBadPrice means a price is not a non-negative decimal with at most two
// decimals and at most 8 digits before the point (numeric(10,2)).
var ErrBadPrice = errors.New("money: must be a decimal like \"129.99\" between 0 and 99999999.99")

// MaxCents is the largest price numeric(10,2) holds.
const MaxCents = 99999999_99

// Parse reads "129.99", "129.9", "129" into cents.
func Parse(s string) (int64, error) {
	if s == "" || len(s) > 12 {
		return 0, ErrBadPrice
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || len(whole) > 8 || (hasDot && (frac == "" || len(frac) > 2)) {
		return 0, ErrBadPrice
	}
	for _, part := range []string{whole, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return 0, ErrBadPrice
			}
		}
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, ErrBadPrice
	}
	var f int64
	if frac != "" {
		f, _ = strconv.ParseInt(frac, 10, 64)
		if len(frac) == 1 {
			f *= 10
		}
	}
	c := w*100 + f
	if c > MaxCents {
		return 0, ErrBadPrice
	}
	return c, nil
}

// Format writes cents as "129.99".
func Format(cents int64) string {
	neg := cents < 0
	if neg {
		cents = -cents
	}
	b := make([]byte, 0, 16)
	if neg {
		b = append(b, '-')
	}
	b = strconv.AppendInt(b, cents/100, 10)
	b = append(b, '.')
	f := cents % 100
	b = append(b, byte('0'+f/10), byte('0'+f%10))
	return string(b)
}
