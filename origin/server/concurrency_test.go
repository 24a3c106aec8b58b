package server_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/novashop/edge/cachekeys"
	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/origin/origintest"
	"github.com/novashop/edge/origin/server"
)

// TestNoOversell: two origins on one database, 60 concurrent buyers for the
// last 10 units: exactly 10 orders, 50 answers 409, stock 0.
func TestNoOversell(t *testing.T) {
	const buyers, units = 60, 10
	_, pool := origintest.DB(t)
	origintest.Seed(t, pool, 1, 3, buyers)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `UPDATE products SET stock = $1 WHERE id = 1`, units); err != nil {
		t.Fatal(err)
	}
	keys := origintest.Keys(t)
	a, _ := origintest.Start(t, server.Deps{Name: "origin-a", Pool: pool, Keys: keys})
	b, _ := origintest.Start(t, server.Deps{Name: "origin-b", Pool: pool, Keys: keys})

	var ids []int64
	if err := func() error {
		rows, err := pool.Query(ctx, `SELECT id FROM users WHERE username LIKE 'user%' ORDER BY id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return rows.Err()
	}(); err != nil || len(ids) != buyers {
		t.Fatalf("users: %d, %v", len(ids), err)
	}
	clients := make([]*origintest.Client, buyers)
	for i, id := range ids {
		tok, err := keys.IssueAccess(id, "shopper")
		if err != nil {
			t.Fatal(err)
		}
		base := a
		if i%2 == 1 {
			base = b
		}
		cl := origintest.NewClient(base).WithToken(tok)
		cl.HTTP = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: buyers}}
		clients[i] = cl
		if r := cl.Do(t, "POST", "/api/cart/items/", map[string]any{"product_id": 1, "quantity": 1}); r.Status != 201 {
			t.Fatalf("cart add: %d %s", r.Status, r.Body)
		}
	}

	statuses := make([]int, buyers)
	served := make([]string, buyers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			r := clients[i].Do(t, "POST", "/api/orders/", nil)
			statuses[i], served[i] = r.Status, r.Header.Get("X-Served-By")
		}(i)
	}
	close(start)
	wg.Wait()

	count := map[int]int{}
	by := map[string]int{}
	for i, s := range statuses {
		count[s]++
		if s == 201 {
			by[served[i]]++
		}
	}
	if count[201] != units || count[409] != buyers-units || len(count) != 2 {
		t.Fatalf("statuses %v, want %d×201 and %d×409", count, units, buyers-units)
	}
	var stock, orders, items int
	if err := pool.QueryRow(ctx, `SELECT stock, (SELECT count(*) FROM orders), (SELECT coalesce(sum(quantity),0) FROM order_items)
		FROM products WHERE id = 1`).Scan(&stock, &orders, &items); err != nil {
		t.Fatal(err)
	}
	if stock != 0 || orders != units || items != units {
		t.Fatalf("stock %d orders %d units sold %d", stock, orders, items)
	}
	t.Logf("orders by origin: %v", by)
}

// TestTagBumpSurvivesRedisOutage: a write while Redis is down still
// answers, keeps its bump in tag_bumps, and the retry loop applies it once
// Redis is back.
func TestTagBumpSurvivesRedisOutage(t *testing.T) {
	_, pool := origintest.DB(t)
	origintest.Seed(t, pool, 1, 3, 1)
	red := testenv.FreshRedis(t)
	rdb := origintest.Redis(t, red.URL)
	base, _ := origintest.Start(t, server.Deps{Pool: pool, Redis: rdb, BumpRetryEvery: 100 * time.Millisecond})
	c := origintest.NewClient(base)
	admin, _ := c.Login(t, "admin", "admin123")
	ac := c.WithToken(admin)
	ctx := context.Background()

	// Redis up: bumped at once, no leftover row.
	r := ac.Do(t, "PATCH", "/api/products/1/", map[string]any{"stock": 7})
	want(t, r, 200, "patch with redis up")
	if v := tagVersion(t, rdb, cachekeys.TagProduct(1)); v != 1 {
		t.Fatalf("product:1 version = %d, want 1", v)
	}
	if n := bumpRows(t, pool); n != 0 {
		t.Fatalf("%d tag_bumps rows left with redis up", n)
	}

	red.Kill()
	r = ac.Do(t, "PATCH", "/api/products/2/", map[string]any{"stock": 8})
	want(t, r, 200, "patch with redis down")
	if inv := r.Header.Get(cachekeys.HeaderInvalidate); inv == "" {
		t.Fatal("no Cache-Invalidate while redis is down")
	}
	if n := bumpRows(t, pool); n != 1 {
		t.Fatalf("%d tag_bumps rows, want 1 while redis is down", n)
	}

	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := red.Start(sctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for bumpRows(t, pool) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("leftover tag bump never applied after redis came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The restarted Redis lost its data (no persistence), so the retried
	// bump is its first: version 1.
	if v := tagVersion(t, rdb, cachekeys.TagProduct(2)); v != 1 {
		t.Fatalf("product:2 version = %d after retry, want 1", v)
	}
}

func bumpRows(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM tag_bumps`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLabKnobs: injected errors and latency hit the API but never the ops
// endpoints, so a flaky or slow instance stays in rotation.
func TestLabKnobs(t *testing.T) {
	_, pool := origintest.DB(t)
	origintest.Seed(t, pool, 1, 2, 0)
	base, _ := origintest.Start(t, server.Deps{Name: "flaky", Pool: pool, InjectErrorRate: 0.5, Rand: func() float64 { return 0.1 }})
	c := origintest.NewClient(base)
	r := c.Do(t, "GET", "/api/products/1/", nil)
	if r.Status != 503 || r.Error() == "" || r.Header.Get("X-Served-By") != "flaky" {
		t.Fatalf("injected: %d %s", r.Status, r.Body)
	}
	want(t, c.Do(t, "GET", "/healthz", nil), 200, "healthz on a flaky origin")
	want(t, c.Do(t, "GET", "/readyz", nil), 200, "readyz on a flaky origin")

	// An hour of injected latency: the ops endpoints must still answer
	// within the client's timeout.
	slow, _ := origintest.Start(t, server.Deps{Name: "slow", Pool: pool, InjectLatency: time.Hour})
	sc := origintest.NewClient(slow)
	sc.HTTP.Timeout = 10 * time.Second
	want(t, sc.Do(t, "GET", "/healthz", nil), 200, "healthz on a slow origin")
	want(t, sc.Do(t, "GET", "/metrics", nil), 200, "metrics on a slow origin")

	ok, _ := origintest.Start(t, server.Deps{Name: "ok", Pool: pool, InjectErrorRate: 0.5, Rand: func() float64 { return 0.9 }})
	want(t, origintest.NewClient(ok).Do(t, "GET", "/api/products/1/", nil), 200, "not injected")
}

// TestGracefulShutdown: a request in flight when shutdown starts finishes.
func TestGracefulShutdown(t *testing.T) {
	_, pool := origintest.DB(t)
	origintest.Seed(t, pool, 1, 2, 0)
	base, srv := origintest.Start(t, server.Deps{Pool: pool, InjectLatency: time.Second})
	c := origintest.NewClient(base)
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", base+"/api/products/1/", nil)
		resp, err := c.HTTP.Do(req)
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	for deadline := time.Now().Add(10 * time.Second); srv.OpenConnections() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("request never connected")
		}
	}
	// The request is now inside its injected second of latency.
	time.Sleep(200 * time.Millisecond)
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if st := <-done; st != 200 {
		t.Fatalf("in-flight request got %d, want 200", st)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("server still accepts after shutdown")
	}
}
