package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

const publicCC = "public, max-age=0, s-maxage=60, stale-while-revalidate=30"

func inStock(t *testing.T, pool *pgxpool.Pool, min int) (id int64, name string, stock int) {
	t.Helper()
	err := pool.QueryRow(context.Background(), `SELECT id, name, stock FROM products WHERE stock >= $1 ORDER BY id LIMIT 1`, min).
		Scan(&id, &name, &stock)
	if err != nil {
		t.Fatal(err)
	}
	return id, name, stock
}

// TestCatalogPages: every catalog page is public with its tags, sets no
// cookie, and is byte-for-byte the same for an anonymous visitor and two
// different logged-in shoppers.
func TestCatalogPages(t *testing.T) {
	base, pool := shop(t)
	pid, pname, _ := inStock(t, pool, 1)
	var cid int64
	var cname string
	if err := pool.QueryRow(context.Background(), `SELECT c.id, c.name FROM products p JOIN categories c ON c.id = p.category_id WHERE p.id = $1`, pid).Scan(&cid, &cname); err != nil {
		t.Fatal(err)
	}
	anon := newBrowser(t, base)
	u1 := newBrowser(t, base)
	u1.login(t, "user1", "shopper123")
	u2 := newBrowser(t, base)
	u2.login(t, "user2", "shopper123")
	tests := []struct {
		path string
		tags string
		has  []string
	}{
		{"/", "catalog,categories,products", []string{"Shop by category", cname, "Just arrived", "/products/"}},
		{fmt.Sprintf("/%d/", cid), fmt.Sprintf("catalog,products,category:%d", cid), []string{"<h1>" + cname + "</h1>", "Sort"}},
		{"/products/", "catalog,products,categories", []string{"All products", "class=\"card\"", "Next page"}},
		{fmt.Sprintf("/products/?category=%d&ordering=price&in_stock=1", cid), fmt.Sprintf("catalog,products,categories,category:%d", cid), []string{`value="price" selected`, "checked"}},
		{"/products/?search=" + url.QueryEscape(strings.Fields(pname)[1]), "catalog,products,categories", []string{"Results for", strings.Fields(pname)[1]}},
		{fmt.Sprintf("/products/%d/", pid), fmt.Sprintf("product:%d,category:%d,reviews:%d", pid, cid, pid),
			[]string{"<h1>" + pname + "</h1>", "Add to cart", fmt.Sprintf(`action="/cart/add/%d/"`, pid), "Customer reviews", `data-auth="in" hidden`}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			a := anon.get(t, tt.path)
			wantStatus(t, a, 200, tt.path)
			wantBody(t, a, tt.path, tt.has...)
			if cc := a.Header.Get("Cache-Control"); cc != publicCC {
				t.Fatalf("Cache-Control = %q", cc)
			}
			if cc := a.Header.Get("Novashop-Edge-Cache-Control"); cc != "public, max-age=3600, stale-while-revalidate=60" {
				t.Fatalf("Novashop-Edge-Cache-Control = %q", cc)
			}
			if tags := a.Header.Get("Cache-Tag"); tags != tt.tags {
				t.Fatalf("Cache-Tag = %q, want %q", tags, tt.tags)
			}
			if sc := a.Header.Values("Set-Cookie"); len(sc) > 0 {
				t.Fatalf("catalog page sets cookies: %v", sc)
			}
			if ct := a.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Fatalf("Content-Type = %q", ct)
			}
			req, _ := http.NewRequest("HEAD", base+tt.path, nil)
			if h := anon.do(t, req); h.Status != 200 || h.Body != "" || h.Header.Get("Cache-Tag") != tt.tags {
				t.Fatalf("HEAD: %d, %d body bytes, tags %q", h.Status, len(h.Body), h.Header.Get("Cache-Tag"))
			}
			b1, b2 := u1.get(t, tt.path), u2.get(t, tt.path)
			if b1.Body != a.Body || b2.Body != a.Body {
				t.Fatalf("catalog page differs between visitors (anon %d bytes, user1 %d, user2 %d)", len(a.Body), len(b1.Body), len(b2.Body))
			}
			for _, personal := range []string{"user1", "user2", u1.cookie("novashop_csrf"), u2.cookie("novashop_csrf")} {
				if strings.Contains(a.Body, personal) {
					t.Fatalf("catalog page contains personal %q", personal)
				}
			}
		})
	}
}

// TestPagination follows the product list's next links to the end.
func TestPagination(t *testing.T) {
	base, _ := shop(t)
	b := newBrowser(t, base)
	link := regexp.MustCompile(`href="(/products/\?[^"]*cursor=[^"]*)" rel="next"`)
	card := regexp.MustCompile(`<h3 class="card-title"><a href="/products/(\d+)/">`)
	path := "/products/?ordering=price&limit=7"
	seen := map[string]bool{}
	for pages := 0; path != ""; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		r := b.get(t, path)
		wantStatus(t, r, 200, path)
		for _, m := range card.FindAllStringSubmatch(r.Body, -1) {
			if seen[m[1]] {
				t.Fatalf("product %s on two pages", m[1])
			}
			seen[m[1]] = true
		}
		path = ""
		if m := link.FindStringSubmatch(r.Body); m != nil {
			path = strings.ReplaceAll(m[1], "&amp;", "&")
			if !strings.Contains(path, "limit=7") || !strings.Contains(path, "ordering=price") {
				t.Fatalf("next link drops filters: %s", path)
			}
		}
	}
	if len(seen) != 30 {
		t.Fatalf("paged through %d products, want 30", len(seen))
	}
}

// TestPersonalPages: logged out they redirect to the login page with a
// next that comes back; logged in they are private, no-store.
func TestPersonalPages(t *testing.T) {
	base, pool := shop(t)
	pid, _, _ := inStock(t, pool, 1)
	anon := newBrowser(t, base)
	for _, tt := range []struct{ method, path, loc string }{
		{"GET", "/cart/", "/login/?next=%2Fcart%2F"},
		{"GET", "/orders/", "/login/?next=%2Forders%2F"},
		{"GET", "/orders/3/", "/login/?next=%2Forders%2F3%2F"},
		{"POST", fmt.Sprintf("/cart/add/%d/", pid), fmt.Sprintf("/login/?next=%%2Fproducts%%2F%d%%2F", pid)},
		{"POST", "/cart/checkout/", "/login/?next=%2Fcart%2F"},
		{"POST", fmt.Sprintf("/products/%d/reviews/add/", pid), fmt.Sprintf("/login/?next=%%2Fproducts%%2F%d%%2F", pid)},
	} {
		var r resp
		if tt.method == "GET" {
			r = anon.get(t, tt.path)
		} else {
			r = anon.post(t, tt.path, nil, false)
		}
		wantStatus(t, r, 303, tt.method+" "+tt.path)
		if loc := r.Header.Get("Location"); loc != tt.loc {
			t.Fatalf("%s %s: Location %q, want %q", tt.method, tt.path, loc, tt.loc)
		}
	}
	u := newBrowser(t, base)
	u.login(t, "user1", "shopper123")
	for _, p := range []string{"/cart/", "/orders/", "/login/", "/register/"} {
		r := u.get(t, p)
		wantStatus(t, r, 200, p)
		if cc := r.Header.Get("Cache-Control"); cc != "private, no-store" {
			t.Fatalf("%s Cache-Control = %q", p, cc)
		}
		if r.Header.Get("Cache-Tag") != "" {
			t.Fatalf("%s has Cache-Tag", p)
		}
	}
	wantBody(t, u.get(t, "/cart/"), "cart", "user1", "Your cart is empty", u.cookie("novashop_csrf"))
}
