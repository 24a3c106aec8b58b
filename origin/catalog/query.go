package catalog

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/novashop/edge/origin/api"
	"github.com/novashop/edge/origin/money"
)

// Orderings of the product list. OrderID (the default) is by id ascending.
const (
	OrderID       = ""
	OrderPrice    = "price"
	OrderPriceDsc = "-price"
	OrderName     = "name"
	OrderNewest   = "-created"
)

// Limits of the product list.
const (
	DefaultLimit  = 20
	MaxLimit      = 100
	maxSearchLen  = 100
	maxSearchWord = 8
	maxCursorLen  = 1024
)

// ErrBadCursor means a cursor was not made by this server for this ordering.
var ErrBadCursor = errors.New("catalog: invalid cursor")

// ListQuery is a parsed, validated product list request.
type ListQuery struct {
	Category int64 // 0: any
	MinCents int64 // -1: no bound
	MaxCents int64 // -1: no bound
	InStock  bool
	// Search is the raw search text; TSQuery its prefix tsquery
	// ("word1:* & word2:*"), built only from letters and digits.
	Search   string
	TSQuery  string
	Ordering string
	Limit    int
	After    *Cursor
}

// Cursor is the keyset position after which the next page starts.
type Cursor struct {
	Ordering string `json:"o"`
	ID       int64  `json:"id"`
	Price    int64  `json:"p,omitempty"`
	Name     string `json:"n,omitempty"`
	Created  int64  `json:"t,omitempty"` // unix microseconds
}

// Getter reads one query parameter: url.Values, or api.Args over a
// fasthttp query string (which spares the handler a map per request).
type Getter interface{ Get(name string) string }

// ParseListQuery validates the list's query string. Unknown parameters are
// ignored (caches and trackers add them); bad values are 422 naming the field.
func ParseListQuery(q Getter) (ListQuery, error) {
	lq := ListQuery{MinCents: -1, MaxCents: -1, Limit: DefaultLimit}
	if s := q.Get("category"); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return lq, api.Invalid("category", "must be a positive integer")
		}
		lq.Category = id
	}
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"min_price", &lq.MinCents}, {"max_price", &lq.MaxCents}} {
		if s := q.Get(f.name); s != "" {
			c, err := money.Parse(s)
			if err != nil {
				return lq, api.Invalid(f.name, "must be a decimal like 129.99")
			}
			*f.dst = c
		}
	}
	if lq.MinCents >= 0 && lq.MaxCents >= 0 && lq.MinCents > lq.MaxCents {
		return lq, api.Invalid("min_price", "must not exceed max_price")
	}
	switch q.Get("in_stock") {
	case "", "0", "false":
	case "1", "true":
		lq.InStock = true
	default:
		return lq, api.Invalid("in_stock", "must be 1 or 0")
	}
	if s := strings.TrimSpace(q.Get("search")); s != "" {
		ts, err := searchQuery(s)
		if err != nil {
			return lq, err
		}
		lq.Search, lq.TSQuery = s, ts
	}
	switch o := q.Get("ordering"); o {
	case OrderID, OrderPrice, OrderPriceDsc, OrderName, OrderNewest:
		lq.Ordering = o
	default:
		return lq, api.Invalid("ordering", "must be one of price, -price, name, -created")
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return lq, api.Invalid("limit", "must be an integer from 1 to 100")
		}
		lq.Limit = n
	}
	if s := q.Get("cursor"); s != "" {
		c, err := DecodeCursor(s, lq.Ordering)
		if err != nil {
			return lq, api.Invalid("cursor", "is not a cursor of this list (start again without it)")
		}
		lq.After = &c
	}
	return lq, nil
}

// searchQuery turns free text into a prefix tsquery over its words. Only
// letters and digits survive, so the text can never inject tsquery syntax.
func searchQuery(s string) (string, error) {
	if len(s) > maxSearchLen {
		return "", api.Invalid("search", "must be at most 100 characters")
	}
	words := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	if len(words) == 0 {
		return "", api.Invalid("search", "must contain a letter or digit")
	}
	if len(words) > maxSearchWord {
		words = words[:maxSearchWord]
	}
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			b.WriteString(" & ")
		}
		b.WriteString(w)
		b.WriteString(":*")
	}
	return b.String(), nil
}

// EncodeCursor renders a cursor as base64url JSON; it is opaque to clients.
func EncodeCursor(c Cursor) string {
	var buf [192]byte
	return string(appendCursor(buf[:0], c))
}

// appendCursor appends EncodeCursor(c) to dst: the base64url of the JSON
// encoding/json makes of c, built without reflection for the list's hot
// path.
func appendCursor(dst []byte, c Cursor) []byte {
	var buf [128]byte
	j := append(buf[:0], `{"o":`...)
	if s, ok := orderingJSON[c.Ordering]; ok {
		j = append(j, s...)
	} else {
		q, _ := json.Marshal(c.Ordering)
		j = append(j, q...)
	}
	j = append(j, `,"id":`...)
	j = strconv.AppendInt(j, c.ID, 10)
	if c.Price != 0 {
		j = append(j, `,"p":`...)
		j = strconv.AppendInt(j, c.Price, 10)
	}
	if c.Name != "" {
		// Names are rare cursors (ordering=name) and may hold characters
		// encoding/json escapes for HTML; let it do so.
		q, _ := json.Marshal(c.Name)
		j = append(j, `,"n":`...)
		j = append(j, q...)
	}
	if c.Created != 0 {
		j = append(j, `,"t":`...)
		j = strconv.AppendInt(j, c.Created, 10)
	}
	j = append(j, '}')
	return base64.RawURLEncoding.AppendEncode(dst, j)
}

// orderingJSON holds the orderings as JSON strings.
var orderingJSON = map[string]string{OrderID: `""`, OrderPrice: `"price"`, OrderPriceDsc: `"-price"`,
	OrderName: `"name"`, OrderNewest: `"-created"`}

// DecodeCursor parses and validates a cursor for the given ordering.
func DecodeCursor(s, ordering string) (Cursor, error) {
	var c Cursor
	if len(s) > maxCursorLen {
		return c, ErrBadCursor
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return c, ErrBadCursor
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, ErrBadCursor
	}
	if c.Ordering != ordering || c.ID <= 0 {
		return c, ErrBadCursor
	}
	switch ordering {
	case OrderPrice, OrderPriceDsc:
		if c.Price < 0 || c.Price > money.MaxCents || c.Name != "" || c.Created != 0 {
			return c, ErrBadCursor
		}
	case OrderName:
		if c.Price != 0 || c.Created != 0 || len(c.Name) > 1000 || strings.ContainsRune(c.Name, 0) {
			return c, ErrBadCursor
		}
	case OrderNewest:
		// Any instant PostgreSQL's timestamptz holds (4713 BC .. 294276 AD);
		// bound to years 1..9999 to stay well inside both Go's and its range.
		if c.Price != 0 || c.Name != "" || c.Created < minMicro || c.Created > maxMicro {
			return c, ErrBadCursor
		}
	default:
		if c.Price != 0 || c.Name != "" || c.Created != 0 {
			return c, ErrBadCursor
		}
	}
	return c, nil
}

var (
	minMicro = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	maxMicro = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC).UnixMicro()
)

// cursorAfter is the cursor pointing after product p in ordering o.
func cursorAfter(p *Product, o string) Cursor {
	c := Cursor{Ordering: o, ID: p.ID}
	switch o {
	case OrderPrice, OrderPriceDsc:
		c.Price = p.PriceCents
	case OrderName:
		c.Name = p.Name
	case OrderNewest:
		c.Created = p.CreatedAt.UnixMicro()
	}
	return c
}
