package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/novashop/edge/internal/testenv"
)

// TestOrderConfirmedThroughEdge: with the order worker running, an order
// placed through the edge moves from pending to confirmed, as seen through
// the edge (issue #6: "an order placed through the edge is confirmed by the
// worker within a second"). Several orders are timed from the checkout's
// 201 to the first GET /api/orders/{id}/ that shows "confirmed"; the median
// must be within a second and every order within 5 s (one slow order on two
// loaded shared cores is not the claim; a slow pipeline is).
func TestOrderConfirmedThroughEdge(t *testing.T) {
	redis := testenv.FreshRedis(t)
	s := newShop(t)
	o1 := s.startOrigin("origin-1", redis.URL)
	o2 := s.startOrigin("origin-2", redis.URL)
	s.startWorker(redis.URL)
	e := s.startEdge("edge", redis.URL, o1, o2)
	c := newClient(t)
	tok := c.login(e.url, "user3", "shopper123")

	orders := 5
	if testing.Short() {
		orders = 2
	}
	ids := c.inStock(e.url, orders, 1)
	var waits []time.Duration
	for i := range orders {
		c.must(201, "POST", e.url+"/api/cart/items/", tok, map[string]any{"product_id": ids[i], "quantity": 1})
		r := c.must(201, "POST", e.url+"/api/orders/", tok, nil)
		placed := time.Now()
		o := decode[struct {
			ID     int64  `json:"id"`
			Status string `json:"status"`
		}](t, r)
		if o.ID == 0 || (o.Status != "pending" && o.Status != "confirmed") {
			t.Fatalf("checkout answered %s", r)
		}
		url := fmt.Sprintf("%s/api/orders/%d/", e.url, o.ID)
		var status string
		for {
			status = decode[struct {
				Status string `json:"status"`
			}](t, c.must(200, "GET", url, tok, nil)).Status
			if status == "confirmed" || time.Since(placed) > 5*time.Second {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if status != "confirmed" {
			t.Fatalf("order %d still %q 5 s after checkout", o.ID, status)
		}
		waits = append(waits, time.Since(placed))
	}
	sorted := slices.Clone(waits)
	slices.Sort(sorted)
	median := sorted[len(sorted)/2]
	t.Logf("orders: %d orders placed through the edge confirmed after %v (median %s)", orders, waits, median)
	if median > time.Second {
		t.Fatalf("median time to confirmed is %s, want within 1 s", median)
	}
}
