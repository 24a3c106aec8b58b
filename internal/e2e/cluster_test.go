package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/novashop/edge/internal/stack"
)

// TestRedisCluster: two edges and two origins on a three-master Redis
// Cluster, each given only the first node's URL as seed (issue #4: "Redis
// Cluster works too (rueidis cluster client)"). Entries are cached and hit,
// a staff price change through edge B (tag bumps on whichever node owns
// each tag's slot) is served by edge A, the admin purges by tag and by
// prefix (a SCAN of every node) work, and the order worker confirms an
// order through a stream on the cluster (issue #6: "Redis Cluster for the
// cache and streams").
func TestRedisCluster(t *testing.T) {
	// Installing redis-server is not part of the 60 s start.
	if _, err := stack.Ensure(os.Stderr, "redis-server"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := stack.StartRedisCluster(ctx, os.Stderr, 3)
	if err != nil {
		t.Fatalf("StartRedisCluster: %v", err)
	}
	t.Cleanup(cl.Stop)
	st := startTwoEdges(t, cl.URL, cl.URL)
	st.shop.startWorker(cl.URL)
	c := newClient(t)
	admin := c.login(st.b.url, "admin", "admin123")

	// Several products, so entries and tags land on different nodes.
	const products = 12
	for id := 1; id <= products; id++ {
		warm(t, c, fmt.Sprintf("%s/api/products/%d/", st.a.url, id))
		warm(t, c, fmt.Sprintf("%s/api/products/%d/", st.b.url, id))
	}
	// The entries really are sharded: every master holds some keys (with
	// 12 entries and their tag versions, an empty master would mean the
	// edges talk to one node only).
	for _, a := range cl.Addrs {
		if n := dbSize(t, a); n == 0 {
			t.Fatalf("cluster node %s holds no keys after caching %d products", a, products)
		}
	}
	for id := 1; id <= products; id++ {
		pathA := fmt.Sprintf("%s/api/products/%d/", st.a.url, id)
		price := fmt.Sprintf("%d.%02d", 500+id, id)
		c.must(200, "PATCH", fmt.Sprintf("%s/api/products/%d/", st.b.url, id), admin, map[string]string{"price": price})
		eventually(t, time.Second, time.Millisecond, fmt.Sprintf("edge A serves product %d's new price", id), func() bool {
			return decode[product](t, c.must(200, "GET", pathA, "", nil)).Price == price
		})
		if got := decode[product](t, warm(t, c, pathA)).Price; got != price {
			t.Fatalf("edge A caches product %d at %s, want %s", id, got, price)
		}
	}

	// A hard purge by tag: both edges stop serving the entry at once.
	r := c.must(200, "POST", st.a.admin+"/admin/purge", "", map[string]any{"tags": []string{"product:3"}})
	if n := decode[struct {
		Purged int `json:"purged"`
	}](t, r).Purged; n < 1 {
		t.Fatalf("purge by tag: %s", r)
	}
	for _, e := range []*edge{st.a, st.b} {
		if r := c.must(200, "GET", e.url+"/api/products/3/", "", nil); cacheHit(r) {
			t.Fatalf("%s: product 3 still a hit after its tag was purged: %q", e.name, r.header.Get("Cache-Status"))
		}
	}
	// A purge by prefix scans every node of the cluster.
	r = c.must(200, "POST", st.a.admin+"/admin/purge", "", map[string]any{"prefix": "/api/products/"})
	purged := decode[struct {
		Purged int `json:"purged"`
	}](t, r).Purged
	if purged < products-1 {
		t.Fatalf("purge by prefix on a cluster removed %d entries, want at least %d: %s", purged, products-1, r)
	}
	for id := 1; id <= products; id++ {
		if r := c.must(200, "GET", fmt.Sprintf("%s/api/products/%d/", st.b.url, id), "", nil); cacheHit(r) {
			t.Fatalf("edge B: product %d still a hit after the prefix purge: %q", id, r.header.Get("Cache-Status"))
		}
	}

	// The order pipeline's stream lives on the cluster too.
	tok := c.login(st.a.url, "user4", "shopper123")
	c.must(201, "POST", st.a.url+"/api/cart/items/", tok, map[string]any{"product_id": c.inStock(st.a.url, 1, 1)[0], "quantity": 1})
	o := decode[struct {
		ID int64 `json:"id"`
	}](t, c.must(201, "POST", st.a.url+"/api/orders/", tok, nil))
	placed := time.Now()
	eventually(t, 5*time.Second, 10*time.Millisecond, "order confirmed by a worker on the cluster", func() bool {
		return decode[struct {
			Status string `json:"status"`
		}](t, c.must(200, "GET", fmt.Sprintf("%s/api/orders/%d/", st.b.url, o.ID), tok, nil)).Status == "confirmed"
	})
	t.Logf("cluster: 3 masters; %d products cached and hit on 2 edges; %d price writes through B seen on A; prefix purge removed %d entries; an order confirmed %s after checkout",
		products, products, purged, time.Since(placed).Round(time.Millisecond))
}

// dbSize asks one node for DBSIZE over raw RESP (":N").
func dbSize(t *testing.T, addr string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("DBSIZE\r\n")); err != nil {
		t.Fatalf("DBSIZE %s: %v", addr, err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("DBSIZE %s: %v", addr, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, ":")))
	if err != nil {
		t.Fatalf("DBSIZE %s answered %q", addr, line)
	}
	return n
}
