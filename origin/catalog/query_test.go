package catalog

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/novashop/edge/origin/api"
)

func TestParseListQuery(t *testing.T) {
	tests := []struct {
		query   string
		want    ListQuery
		errFeld string
	}{
		{"", ListQuery{MinCents: -1, MaxCents: -1, Limit: 20}, ""},
		{"category=3&min_price=1.5&max_price=20&in_stock=1&ordering=-price&limit=100",
			ListQuery{Category: 3, MinCents: 150, MaxCents: 2000, InStock: true, Ordering: "-price", Limit: 100}, ""},
		{"search=Red+Lamp!", ListQuery{MinCents: -1, MaxCents: -1, Limit: 20, Search: "Red Lamp!", TSQuery: "red:* & lamp:*"}, ""},
		{"in_stock=0&utm_source=x", ListQuery{MinCents: -1, MaxCents: -1, Limit: 20}, ""},
		{"category=0", ListQuery{}, "category"},
		{"category=-1", ListQuery{}, "category"},
		{"min_price=abc", ListQuery{}, "min_price"},
		{"max_price=1.999", ListQuery{}, "max_price"},
		{"min_price=5&max_price=4", ListQuery{}, "min_price"},
		{"in_stock=2", ListQuery{}, "in_stock"},
		{"ordering=id", ListQuery{}, "ordering"},
		{"limit=101", ListQuery{}, "limit"},
		{"limit=-1", ListQuery{}, "limit"},
		{"search=" + strings.Repeat("a", 101), ListQuery{}, "search"},
		{"search=%27%3B--", ListQuery{}, "search"},
		{"cursor=zzz", ListQuery{}, "cursor"},
	}
	for _, tt := range tests {
		v, err := url.ParseQuery(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseListQuery(v)
		if tt.errFeld != "" {
			if !errors.Is(err, api.ErrInvalid) || !strings.HasPrefix(err.Error(), tt.errFeld+":") {
				t.Errorf("%q: err %v, want a 422 on %s", tt.query, err, tt.errFeld)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.query, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%q:\n got %+v\nwant %+v", tt.query, got, tt.want)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	tests := []Cursor{
		{Ordering: OrderID, ID: 5},
		{Ordering: OrderPrice, ID: 9, Price: 12999},
		{Ordering: OrderPriceDsc, ID: 9, Price: 0},
		{Ordering: OrderName, ID: 1, Name: "Classic Lamp 1 — ünïcode"},
		{Ordering: OrderNewest, ID: 2, Created: time.Date(2024, 5, 1, 1, 2, 3, 4000, time.UTC).UnixMicro()},
	}
	for _, c := range tests {
		s := EncodeCursor(c)
		got, err := DecodeCursor(s, c.Ordering)
		if err != nil || got != c {
			t.Errorf("round trip %+v -> %q -> %+v, %v", c, s, got, err)
		}
		for _, other := range []string{OrderID, OrderPrice, OrderName, OrderNewest} {
			if other == c.Ordering || (c.Ordering == OrderPriceDsc && other == OrderPrice) {
				continue
			}
			if _, err := DecodeCursor(s, other); err == nil {
				t.Errorf("cursor of %q accepted for %q", c.Ordering, other)
			}
		}
	}
	for _, bad := range []string{"", "!!", EncodeCursor(Cursor{Ordering: OrderID}), EncodeCursor(Cursor{Ordering: OrderPrice, ID: 1, Price: -5}),
		EncodeCursor(Cursor{Ordering: OrderID, ID: 1, Name: "x"}), strings.Repeat("A", 2000)} {
		if _, err := DecodeCursor(bad, OrderID); !errors.Is(err, ErrBadCursor) {
			t.Errorf("DecodeCursor(%q) = %v, want ErrBadCursor", bad, err)
		}
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(EncodeCursor(Cursor{Ordering: OrderPrice, ID: 9, Price: 12999}), OrderPrice)
	f.Add(EncodeCursor(Cursor{Ordering: OrderName, ID: 1, Name: "x"}), OrderName)
	f.Add(EncodeCursor(Cursor{Ordering: OrderNewest, ID: 2, Created: 1700000000000000}), OrderNewest)
	f.Add("eyJvIjoiIiwiaWQiOjV9", "")
	f.Add("%%%", "price")
	f.Fuzz(func(t *testing.T, s, ordering string) {
		c, err := DecodeCursor(s, ordering)
		if err != nil {
			return
		}
		if c.ID <= 0 || c.Ordering != ordering {
			t.Fatalf("accepted invalid cursor %+v", c)
		}
		// A valid cursor always yields SQL whose args match its placeholders.
		q := ListQuery{MinCents: -1, MaxCents: -1, Ordering: ordering, Limit: 20, After: &c}
		sql, args := ListSQL(q)
		if strings.Count(sql, "$") != len(args) {
			t.Fatalf("placeholders %d != args %d", strings.Count(sql, "$"), len(args))
		}
	})
}

func FuzzParseListQuery(f *testing.F) {
	for _, s := range []string{"", "category=3&ordering=price&limit=5", "search=lap+top&in_stock=1",
		"min_price=1.5&max_price=20", "cursor=eyJvIjoiIiwiaWQiOjV9", "ordering=-created&limit=100", "search=%00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseListQuery(v)
		if err != nil {
			if !errors.Is(err, api.ErrInvalid) {
				t.Fatalf("non-422 error %v", err)
			}
			return
		}
		if q.Limit < 1 || q.Limit > MaxLimit {
			t.Fatalf("limit %d", q.Limit)
		}
		for _, r := range q.TSQuery {
			if strings.ContainsRune("'\\|!()<>", r) {
				t.Fatalf("tsquery %q carries syntax", q.TSQuery)
			}
		}
		sql, args := ListSQL(q)
		if strings.Count(sql, "$") != len(args) {
			t.Fatalf("placeholders %d != args %d", strings.Count(sql, "$"), len(args))
		}
	})
}
