package web

import (
	"net/url"
	"strings"
	"testing"

	"github.com/novashop/edge/origin/catalog"
)

// FuzzListLinks: for any query the list accepts, the paging links keep
// every filter exactly (a next page never silently changes the results'
// filter) and carry the cursor.
func FuzzListLinks(f *testing.F) {
	for _, s := range []string{"", "category=2&ordering=price", "min_price=1.5&max_price=20&in_stock=1", "search=red+lamp&limit=7",
		"ordering=-created&search=%C3%A9t%C3%A9", "search=a%26b&ordering=name", "limit=100&in_stock=true"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q.Del("cursor")
		lq, err := catalog.ParseListQuery(q)
		if err != nil {
			return
		}
		next := "Y3Vyc29y"
		v := listOf("/products/", lq, &next, true)
		path, query, ok := strings.Cut(v.NextURL, "?")
		if !ok || path != "/products/" {
			t.Fatalf("next link %q", v.NextURL)
		}
		back, err := url.ParseQuery(query)
		if err != nil {
			t.Fatalf("next link %q: %v", v.NextURL, err)
		}
		if back.Get("cursor") != next {
			t.Fatalf("next link %q lost the cursor", v.NextURL)
		}
		back.Del("cursor")
		again, err := catalog.ParseListQuery(back)
		if err != nil {
			t.Fatalf("next link %q does not parse: %v", v.NextURL, err)
		}
		if again.Category != lq.Category || again.MinCents != lq.MinCents || again.MaxCents != lq.MaxCents ||
			again.InStock != lq.InStock || again.Search != lq.Search || again.Ordering != lq.Ordering || again.Limit != lq.Limit {
			t.Fatalf("query %q: next link %q changes the filter: %+v vs %+v", raw, v.NextURL, again, lq)
		}
		if v.FirstURL != "" {
			t.Fatalf("first page has a first-page link %q", v.FirstURL)
		}
	})
}

func TestListLinksFirstPage(t *testing.T) {
	lq, err := catalog.ParseListQuery(url.Values{"ordering": {"price"}, "in_stock": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	lq.After = &catalog.Cursor{Ordering: "price", ID: 3}
	v := listOf("/4/", lq, nil, false)
	if v.FirstURL != "/4/?in_stock=1&ordering=price" || v.NextURL != "" {
		t.Fatalf("links: first %q next %q", v.FirstURL, v.NextURL)
	}
	lq.Category = 4
	if v := listOf("/4/", lq, nil, false); strings.Contains(v.FirstURL, "category") {
		t.Fatalf("category page link repeats the category: %q", v.FirstURL)
	}
}
