package money

import (
	"errors"
	"math"
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
	var buf [24]byte
	return string(Append(buf[:0], cents))
}

// Append appends cents as "129.99" to dst; the JSON encoders of hot
// handlers use it so a price costs no allocation.
func Append(dst []byte, cents int64) []byte {
	if cents < 0 {
		dst = append(dst, '-')
		if cents == math.MinInt64 {
			// -MinInt64 overflows; its digits are written from uint64.
			u := uint64(1) << 63
			dst = strconv.AppendUint(dst, u/100, 10)
			f := u % 100
			return append(dst, '.', byte('0'+f/10), byte('0'+f%10))
		}
		cents = -cents
	}
	dst = strconv.AppendInt(dst, cents/100, 10)
	f := cents % 100
	return append(dst, '.', byte('0'+f/10), byte('0'+f%10))
}
