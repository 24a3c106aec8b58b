package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/novashop/edge/cachekeys"
	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/origin/origintest"
	"github.com/novashop/edge/origin/server"
)

type product struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Price    string `json:"price"`
	Stock    int    `json:"stock"`
	Image    string `json:"image"`
	Category struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	} `json:"category"`
}

type page struct {
	Results []product `json:"results"`
	Next    *string   `json:"next"`
}

func want(t *testing.T, r origintest.Response, status int, what string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.Status, status, r.Body)
	}
	if got := r.Header.Get("X-Served-By"); got == "" {
		t.Fatalf("%s: no X-Served-By", what)
	}
}

func TestAPIEndToEnd(t *testing.T) {
	_, pool := origintest.DB(t)
	origintest.Seed(t, pool, 3, 60, 2)
	rdb := origintest.Redis(t, testenv.Redis(t))
	base, _ := origintest.Start(t, server.Deps{Name: "origin-e2e", Pool: pool, Redis: rdb})
	c := origintest.NewClient(base)
	ctx := context.Background()

	r := c.Do(t, "GET", "/healthz", nil)
	want(t, r, 200, "healthz")
	if r.Header.Get("X-Served-By") != "origin-e2e" {
		t.Fatalf("X-Served-By = %q", r.Header.Get("X-Served-By"))
	}
	want(t, c.Do(t, "GET", "/readyz", nil), 200, "readyz")

	// Register, duplicate, login, wrong password, unknown user.
	reg := map[string]string{"username": "alice", "email": "alice@example.com", "password": "wonderland1", "city": "Almaty"}
	r = c.Do(t, "POST", "/api/register/", reg)
	want(t, r, 201, "register")
	if strings.Contains(string(r.Body), "password") {
		t.Fatalf("register answer leaks password fields: %s", r.Body)
	}
	want(t, c.Do(t, "POST", "/api/register/", reg), 409, "duplicate register")
	access, refresh := c.Login(t, "alice", "wonderland1")
	wrong := c.Do(t, "POST", "/api/login/", map[string]string{"username": "alice", "password": "nope-nope"})
	unknown := c.Do(t, "POST", "/api/login/", map[string]string{"username": "nobody-here", "password": "nope-nope"})
	want(t, wrong, 401, "wrong password")
	want(t, unknown, 401, "unknown user")
	if wrong.Error() != unknown.Error() || !strings.HasPrefix(wrong.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("login failures differ or lack WWW-Authenticate: %q vs %q", wrong.Error(), unknown.Error())
	}
	alice := c.WithToken(access)

	r = alice.Do(t, "GET", "/api/me/", nil)
	want(t, r, 200, "me")
	var me struct {
		User struct {
			Username string `json:"username"`
			IsStaff  bool   `json:"is_staff"`
		} `json:"user"`
		CartCount int `json:"cart_count"`
	}
	r.JSON(t, &me)
	if me.User.Username != "alice" || me.User.IsStaff || me.CartCount != 0 {
		t.Fatalf("me = %+v", me)
	}
	if r.Header.Get("Cache-Control") != "private, no-store" {
		t.Fatalf("me Cache-Control = %q", r.Header.Get("Cache-Control"))
	}
	r = c.Do(t, "GET", "/api/me/", nil)
	want(t, r, 401, "me without token")

	// Refresh rotation: new pair works, the old refresh token is reuse and
	// revokes the family, so the new one dies too.
	r = c.Do(t, "POST", "/api/token/refresh/", map[string]string{"refresh": refresh})
	want(t, r, 200, "refresh")
	var pair struct{ Access, Refresh string }
	r.JSON(t, &pair)
	if pair.Access == "" || pair.Refresh == "" || pair.Refresh == refresh {
		t.Fatalf("refresh pair = %+v", pair)
	}
	want(t, c.WithToken(pair.Access).Do(t, "GET", "/api/me/", nil), 200, "me with refreshed access")
	r = c.Do(t, "POST", "/api/token/refresh/", map[string]string{"refresh": refresh})
	want(t, r, 401, "refresh reuse")
	if !strings.Contains(r.Error(), "reuse") {
		t.Fatalf("reuse error = %q", r.Error())
	}
	want(t, c.Do(t, "POST", "/api/token/refresh/", map[string]string{"refresh": pair.Refresh}), 401, "refresh after family revoked")
	// A refresh token is never an access token.
	want(t, c.WithToken(pair.Refresh).Do(t, "GET", "/api/me/", nil), 401, "refresh token as access")

	// Catalog reads are public with tags.
	r = c.Do(t, "GET", "/api/categories/", nil)
	want(t, r, 200, "categories")
	if r.Header.Get("Cache-Control") != "public, max-age=0, s-maxage=60, stale-while-revalidate=30" ||
		r.Header.Get("Novashop-Edge-Cache-Control") != "public, max-age=3600, stale-while-revalidate=60" ||
		r.Header.Get("Cache-Tag") != "categories,catalog" {
		t.Fatalf("categories headers: %v", r.Header)
	}
	want(t, c.Do(t, "GET", "/api/categories/1/", nil), 200, "category")
	want(t, c.Do(t, "GET", "/api/categories/999/", nil), 404, "unknown category")

	// Paging by price within a category: sorted, no duplicates, ends.
	seen := map[int64]bool{}
	last := ""
	path := "/api/products/?category=1&ordering=price&limit=7"
	pages := 0
	for path != "" {
		r = c.Do(t, "GET", path, nil)
		want(t, r, 200, "list")
		if tags := r.Header.Get("Cache-Tag"); tags != "products,catalog,category:1" {
			t.Fatalf("list Cache-Tag = %q", tags)
		}
		var p page
		r.JSON(t, &p)
		for _, pr := range p.Results {
			if seen[pr.ID] || pr.Category.ID != 1 {
				t.Fatalf("duplicate or foreign product %+v", pr)
			}
			seen[pr.ID] = true
			if last != "" && cmpPrice(pr.Price, last) < 0 {
				t.Fatalf("price order broken: %s after %s", pr.Price, last)
			}
			last = pr.Price
		}
		path = ""
		if p.Next != nil {
			path = "/api/products/?category=1&ordering=price&limit=7&cursor=" + *p.Next
		}
		pages++
	}
	if len(seen) != 20 || pages != 3 {
		t.Fatalf("category 1 paged %d products in %d pages, want 20 in 3", len(seen), pages)
	}

	r = c.Do(t, "GET", "/api/products/1/", nil)
	want(t, r, 200, "product")
	var p1 product
	r.JSON(t, &p1)
	if r.Header.Get("Cache-Tag") != fmt.Sprintf("product:1,category:%d", p1.Category.ID) || !strings.Contains(p1.Price, ".") {
		t.Fatalf("product: %+v tags %q", p1, r.Header.Get("Cache-Tag"))
	}
	var inStock product
	for id := int64(1); ; id++ {
		r = c.Do(t, "GET", fmt.Sprintf("/api/products/%d/", id), nil)
		r.JSON(t, &inStock)
		if inStock.Stock >= 3 {
			break
		}
	}

	// Cart.
	r = alice.Do(t, "POST", "/api/cart/items/", map[string]any{"product_id": inStock.ID, "quantity": 2})
	want(t, r, 201, "cart add")
	r = alice.Do(t, "PATCH", fmt.Sprintf("/api/cart/items/%d/", inStock.ID), map[string]any{"quantity": 3})
	want(t, r, 200, "cart set")
	r = alice.Do(t, "GET", "/api/me/", nil)
	r.JSON(t, &me)
	if me.CartCount != 3 {
		t.Fatalf("cart_count = %d, want 3", me.CartCount)
	}
	want(t, alice.Do(t, "DELETE", fmt.Sprintf("/api/cart/items/%d/", inStock.ID), nil), 200, "cart remove")
	want(t, alice.Do(t, "DELETE", fmt.Sprintf("/api/cart/items/%d/", inStock.ID), nil), 404, "cart remove twice")
	want(t, alice.Do(t, "POST", "/api/orders/", nil), 422, "empty checkout")
	want(t, alice.Do(t, "POST", "/api/cart/items/", map[string]any{"product_id": inStock.ID, "quantity": 1}), 201, "cart add again")
	want(t, alice.Do(t, "POST", "/api/cart/items/", map[string]any{"product_id": 99999, "quantity": 1}), 404, "cart add unknown")
	want(t, alice.Do(t, "POST", "/api/cart/items/", map[string]any{"product_id": inStock.ID, "quantity": 500}), 409, "cart add beyond stock")

	// Checkout.
	r = alice.Do(t, "POST", "/api/orders/", nil)
	want(t, r, 201, "checkout")
	var order struct {
		ID     int64  `json:"id"`
		Status string `json:"status"`
		Total  string `json:"total"`
		Items  []struct {
			Quantity int `json:"quantity"`
		} `json:"items"`
	}
	r.JSON(t, &order)
	if order.Status != "pending" || order.Total != inStock.Price || len(order.Items) != 1 {
		t.Fatalf("order = %+v (price %s)", order, inStock.Price)
	}
	if inv := r.Header.Get(cachekeys.HeaderInvalidate); !strings.Contains(inv, cachekeys.TagProduct(inStock.ID)) {
		t.Fatalf("checkout Cache-Invalidate = %q", inv)
	}
	var stock, outbox int
	if err := pool.QueryRow(ctx, `SELECT stock FROM products WHERE id = $1`, inStock.ID).Scan(&stock); err != nil || stock != inStock.Stock-1 {
		t.Fatalf("stock = %d, want %d (%v)", stock, inStock.Stock-1, err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE topic = 'order.created' AND (payload->>'order_id')::bigint = $1`, order.ID).Scan(&outbox); err != nil || outbox != 1 {
		t.Fatalf("outbox rows = %d (%v)", outbox, err)
	}
	r = alice.Do(t, "GET", "/api/cart/", nil)
	if !strings.Contains(string(r.Body), `"count":0`) {
		t.Fatalf("cart not cleared: %s", r.Body)
	}
	want(t, alice.Do(t, "GET", fmt.Sprintf("/api/orders/%d/", order.ID), nil), 200, "own order")
	r = alice.Do(t, "GET", "/api/orders/", nil)
	want(t, r, 200, "orders")
	if !strings.Contains(string(r.Body), fmt.Sprintf(`"id":%d`, order.ID)) {
		t.Fatalf("order list %s", r.Body)
	}

	// Isolation: bob cannot see alice's order.
	want(t, c.Do(t, "POST", "/api/register/", map[string]string{"username": "bob", "email": "bob@example.com", "password": "builder123"}), 201, "register bob")
	bobTok, _ := c.Login(t, "bob", "builder123")
	bob := c.WithToken(bobTok)
	r = bob.Do(t, "GET", fmt.Sprintf("/api/orders/%d/", order.ID), nil)
	want(t, r, 404, "other's order")
	r = bob.Do(t, "GET", "/api/orders/", nil)
	if !strings.Contains(string(r.Body), `"results":[]`) {
		t.Fatalf("bob sees orders: %s", r.Body)
	}

	// Reviews.
	rp := fmt.Sprintf("/api/products/%d/reviews/", inStock.ID)
	r = alice.Do(t, "POST", rp, map[string]any{"rating": 5, "text": "Great!"})
	want(t, r, 201, "review")
	if inv := r.Header.Get(cachekeys.HeaderInvalidate); !strings.Contains(inv, cachekeys.TagReviews(inStock.ID)) {
		t.Fatalf("review Cache-Invalidate = %q", inv)
	}
	want(t, alice.Do(t, "POST", rp, map[string]any{"rating": 4, "text": "Again"}), 409, "second review")
	want(t, bob.Do(t, "POST", rp, map[string]any{"rating": 9}), 422, "bad rating")
	want(t, bob.Do(t, "POST", "/api/products/99999/reviews/", map[string]any{"rating": 3}), 404, "review unknown product")
	r = c.Do(t, "GET", rp, nil)
	want(t, r, 200, "reviews")
	if !strings.Contains(string(r.Body), `"count":1`) || !strings.Contains(string(r.Body), `"username":"alice"`) {
		t.Fatalf("reviews %s", r.Body)
	}

	// Staff only.
	newProd := map[string]any{"name": "Test Gadget", "description": "x", "price": "12.50", "stock": 5, "category_id": 2}
	want(t, alice.Do(t, "POST", "/api/products/", newProd), 403, "shopper creates product")
	want(t, c.Do(t, "POST", "/api/products/", newProd), 401, "anonymous creates product")
	adminTok, _ := c.Login(t, "admin", "admin123")
	admin := c.WithToken(adminTok)
	before := tagVersion(t, rdb, cachekeys.TagProducts)
	r = admin.Do(t, "POST", "/api/products/", newProd)
	want(t, r, 201, "staff creates product")
	var created product
	r.JSON(t, &created)
	if created.Price != "12.50" || created.Category.ID != 2 {
		t.Fatalf("created = %+v", created)
	}
	if after := tagVersion(t, rdb, cachekeys.TagProducts); after <= before {
		t.Fatalf("products tag version %d -> %d, want a bump", before, after)
	}
	if inv := r.Header.Get(cachekeys.HeaderInvalidate); !strings.Contains(inv, "products") || !strings.Contains(inv, "category:2") {
		t.Fatalf("create Cache-Invalidate = %q", inv)
	}
	pp := fmt.Sprintf("/api/products/%d/", created.ID)
	r = admin.Do(t, "PATCH", pp, map[string]any{"price": 13, "category_id": 3})
	want(t, r, 200, "staff patches product")
	if inv := r.Header.Get(cachekeys.HeaderInvalidate); !strings.Contains(inv, "category:2") || !strings.Contains(inv, "category:3") {
		t.Fatalf("patch Cache-Invalidate = %q", inv)
	}
	want(t, admin.Do(t, "PATCH", pp, map[string]any{"category_id": 999}), 422, "patch to unknown category")
	want(t, alice.Do(t, "DELETE", pp, nil), 403, "shopper deletes")
	want(t, admin.Do(t, "DELETE", pp, nil), 204, "staff deletes")
	want(t, c.Do(t, "GET", pp, nil), 404, "deleted product")
	want(t, admin.Do(t, "DELETE", pp, nil), 404, "delete twice")
	r = admin.Do(t, "POST", "/api/categories/", map[string]any{"name": "Lab"})
	want(t, r, 201, "staff creates category")
	want(t, admin.Do(t, "PATCH", "/api/categories/1/", map[string]any{"description": "Renamed"}), 200, "staff patches category")
	want(t, alice.Do(t, "PATCH", "/api/categories/1/", map[string]any{"description": "x"}), 403, "shopper patches category")
	want(t, admin.Do(t, "PATCH", "/api/categories/999/", map[string]any{"description": "x"}), 404, "patch unknown category")

	// Metrics saw the routes.
	r = c.Do(t, "GET", "/metrics", nil)
	for _, s := range []string{`origin_http_requests_total{route="/api/products/{id}/",method="GET",status="200"}`,
		`origin_http_request_duration_seconds_bucket{route="/api/products/",method="GET",status="200"`,
		"origin_pgxpool_total_conns"} {
		if !strings.Contains(string(r.Body), s) {
			t.Fatalf("metrics lack %s", s)
		}
	}
}

func cmpPrice(a, b string) int {
	pa, pb := padPrice(a), padPrice(b)
	return strings.Compare(pa, pb)
}

func padPrice(s string) string {
	return strings.Repeat("0", 12-len(s)) + s
}

func TestConditionalGet(t *testing.T) {
	_, pool := origintest.DB(t)
	origintest.Seed(t, pool, 1, 3, 1)
	base, _ := origintest.Start(t, server.Deps{Pool: pool})
	c := origintest.NewClient(base)
	r := c.Do(t, "GET", "/api/products/1/", nil)
	etag := r.Header.Get("ETag")
	if r.Status != 200 || !strings.HasPrefix(etag, `"`) {
		t.Fatalf("no ETag: %d %v", r.Status, r.Header)
	}
	for _, inm := range []string{etag, "W/" + etag, `"x", ` + etag, "*"} {
		req, _ := http.NewRequest("GET", base+"/api/products/1/", nil)
		req.Header.Set("If-None-Match", inm)
		r = c.Send(t, req)
		if r.Status != 304 || len(r.Body) != 0 {
			t.Fatalf("If-None-Match %s: %d %q", inm, r.Status, r.Body)
		}
	}
	req, _ := http.NewRequest("GET", base+"/api/products/1/", nil)
	req.Header.Set("If-None-Match", `"stale"`)
	if r = c.Send(t, req); r.Status != 200 {
		t.Fatalf("stale validator: %d", r.Status)
	}
	// Personal answers never carry a validator.
	tok, _ := c.Login(t, "user1", "shopper123")
	if r = c.WithToken(tok).Do(t, "GET", "/api/me/", nil); r.Header.Get("ETag") != "" {
		t.Fatalf("private answer has an ETag")
	}
}
