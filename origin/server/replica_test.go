package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/fasthttp/router"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/novashop/edge/origin/api"
	"github.com/novashop/edge/origin/origintest"
	"github.com/novashop/edge/origin/server"
	"github.com/novashop/edge/origin/web"
)

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// noEdgeHour: a catalog read served from a replica is shared for the
// s-maxage minute but gets no hour-long edge lifetime, since the edge's
// refetch after a tag bump may read the replica before it has the write.
func noEdgeHour(t *testing.T, get func(string) string, what string) {
	t.Helper()
	if v := get("Novashop-Edge-Cache-Control"); v != "" {
		t.Fatalf("%s from a replica carries Novashop-Edge-Cache-Control %q", what, v)
	}
	if v := get("Cache-Control"); v != api.CacheControlPublic {
		t.Fatalf("%s from a replica: Cache-Control %q, want %q", what, v, api.CacheControlPublic)
	}
}

// TestReadReplica points Replica at a second database seeded differently
// (fewer products, names marked "replica"): catalog reads, on the API and
// the storefront, come from it; writes and the caller's own reads (login,
// cart, me, orders) go to the primary.
func TestReadReplica(t *testing.T) {
	_, primary := origintest.DB(t)
	origintest.Seed(t, primary, 3, 30, 2)
	_, replica := origintest.DB(t)
	origintest.Seed(t, replica, 2, 10, 2)
	ctx := context.Background()
	for _, q := range []string{
		`UPDATE products SET name = 'Replica ' || name`,
		`UPDATE categories SET name = 'Replica ' || name`,
		`INSERT INTO reviews (product_id, user_id, rating, text) SELECT 5, id, 4, 'seen on the replica' FROM users WHERE username = 'user1'`,
	} {
		if _, err := replica.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	base, _ := origintest.Start(t, server.Deps{Name: "origin-replica", Pool: primary, Replica: replica,
		Mount: []func(*router.Router, *api.Env){web.Mount}})
	c := origintest.NewClient(base)
	want(t, c.Do(t, "GET", "/readyz", nil), 200, "readyz with a replica")

	// Catalog reads: the replica.
	var p product
	r := c.Do(t, "GET", "/api/products/5/", nil)
	want(t, r, 200, "product 5")
	noEdgeHour(t, r.Header.Get, "product 5")
	r.JSON(t, &p)
	if !strings.HasPrefix(p.Name, "Replica ") || !strings.HasPrefix(p.Category.Name, "Replica ") {
		t.Fatalf("product page not from the replica: %+v", p)
	}
	want(t, c.Do(t, "GET", "/api/products/25/", nil), 404, "product 25 exists only on the primary")
	var pg page
	r = c.Do(t, "GET", "/api/products/?limit=100", nil)
	want(t, r, 200, "list")
	r.JSON(t, &pg)
	if len(pg.Results) != 10 {
		t.Fatalf("list has %d products, want the replica's 10", len(pg.Results))
	}
	var cats []struct{ Name string }
	c.Do(t, "GET", "/api/categories/", nil).JSON(t, &cats)
	if len(cats) != 2 {
		t.Fatalf("%d categories, want the replica's 2", len(cats))
	}
	want(t, c.Do(t, "GET", "/api/categories/3/", nil), 404, "category 3 exists only on the primary")
	var revs struct{ Count int }
	c.Do(t, "GET", "/api/products/5/reviews/", nil).JSON(t, &revs)
	if revs.Count != 1 {
		t.Fatalf("reviews of 5: count %d, want the replica's 1", revs.Count)
	}
	for _, path := range []string{"/products/5/", "/products/", "/1/", "/"} {
		r := c.Do(t, "GET", path, nil)
		want(t, r, 200, path)
		if !strings.Contains(string(r.Body), "Replica ") {
			t.Fatalf("storefront %s not from the replica", path)
		}
		noEdgeHour(t, r.Header.Get, path)
	}
	want(t, c.Do(t, "GET", "/products/25/", nil), 404, "storefront product 25")

	// Writes and the caller's own reads: the primary.
	access, _ := c.Login(t, "user1", "shopper123")
	u := c.WithToken(access)
	r = u.Do(t, "POST", "/api/cart/items/", map[string]any{"product_id": 25, "quantity": 2})
	want(t, r, 201, "cart add of a primary-only product")
	r = u.Do(t, "GET", "/api/cart/", nil)
	want(t, r, 200, "cart")
	if strings.Contains(string(r.Body), "Replica ") || !strings.Contains(string(r.Body), `"count":2`) {
		t.Fatalf("cart not read from the primary: %s", r.Body)
	}
	var me struct {
		CartCount int `json:"cart_count"`
	}
	u.Do(t, "GET", "/api/me/", nil).JSON(t, &me)
	if me.CartCount != 2 {
		t.Fatalf("me: cart_count %d, want 2", me.CartCount)
	}
	want(t, u.Do(t, "POST", "/api/orders/", nil), 201, "checkout")
	want(t, u.Do(t, "GET", "/api/orders/", nil), 200, "orders")
	if n := count(t, primary, `SELECT count(*) FROM orders`); n != 1 {
		t.Fatalf("primary has %d orders, want 1", n)
	}
	if n := count(t, replica, `SELECT count(*) FROM orders`); n != 0 {
		t.Fatalf("replica has %d orders, want 0", n)
	}
	want(t, u.Do(t, "POST", "/api/products/7/reviews/", map[string]any{"rating": 5, "text": "great"}), 201, "review")
	if n := count(t, primary, `SELECT count(*) FROM reviews WHERE product_id = 7`); n != 1 {
		t.Fatalf("primary has %d reviews of 7, want 1", n)
	}
	if n := count(t, replica, `SELECT count(*) FROM reviews WHERE product_id = 7`); n != 0 {
		t.Fatalf("replica has %d reviews of 7, want 0", n)
	}

	staff, _ := c.Login(t, "admin", "admin123")
	r = c.WithToken(staff).Do(t, "POST", "/api/products/",
		map[string]any{"name": "Written to the primary", "description": "x", "price": "9.99", "stock": 1, "category_id": 1})
	want(t, r, 201, "create product")
	if n := count(t, primary, `SELECT count(*) FROM products WHERE name = 'Written to the primary'`); n != 1 {
		t.Fatalf("primary has %d new products", n)
	}
	if n := count(t, replica, `SELECT count(*) FROM products WHERE name = 'Written to the primary'`); n != 0 {
		t.Fatalf("replica has %d new products", n)
	}
}
