package proxy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/proxy/cache"
	"github.com/novashop/edge/proxy/config"
)

// On the event-loop core a fresh local hit is answered on the loop (no hand-off),
// with the same answer the goroutine core gives, while a miss, a write and a
// protected route are handed off.
func TestEventLoopInlineHits(t *testing.T) {
	o := newOrigin(t, "o1", func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Cache-Control", "public, s-maxage=60")
		ctx.Response.Header.Set("Cache-Tag", "product:1")
		ctx.SetBodyString("product " + string(ctx.Path()))
	})
	c, err := cache.New(cache.Config{RedisURL: testenv.Redis(t), Namespace: fmt.Sprintf("evloop-%d:", time.Now().UnixNano())}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg := testConfig(o)
	cfg.IO = config.IOEventLoop
	e := startEdge(t, cfg, Options{Cache: c})
	stats := func() (inline, handoffs uint64) {
		st := e.s.loops.Stats()
		return st.Inline, st.Handoffs
	}

	first := e.do(t, "GET", "/api/products/1/", "")
	if first.StatusCode() != 200 || !strings.Contains(header(first, cache.HeaderCacheStatus), "fwd=") {
		t.Fatalf("first: %d %s", first.StatusCode(), header(first, cache.HeaderCacheStatus))
	}
	// The first hit may still read the entry's tag versions from Redis
	// (handed off); from then on everything it needs is local.
	_ = e.do(t, "GET", "/api/products/1/", "")
	in0, h0 := stats()
	for i := 0; i < 5; i++ {
		r := e.do(t, "GET", "/api/products/1/", "")
		if r.StatusCode() != 200 || string(r.Body()) != "product /api/products/1/" || !strings.Contains(header(r, cache.HeaderCacheStatus), "hit") {
			t.Fatalf("hit %d: %d %q %s", i, r.StatusCode(), r.Body(), header(r, cache.HeaderCacheStatus))
		}
		if header(r, "Cache-Tag") != "" || header(r, "X-Request-Id") == "" {
			t.Fatalf("hit %d: edge headers wrong: Cache-Tag %q X-Request-Id %q", i, header(r, "Cache-Tag"), header(r, "X-Request-Id"))
		}
	}
	in1, h1 := stats()
	if in1-in0 != 5 || h1 != h0 {
		t.Fatalf("hits: %d inline, %d handed off; want 5 and 0", in1-in0, h1-h0)
	}
	// A miss (another product) and an uncacheable method go to a goroutine.
	if r := e.do(t, "GET", "/api/products/2/", ""); r.StatusCode() != 200 {
		t.Fatalf("miss: %d", r.StatusCode())
	}
	if r := e.do(t, "POST", "/api/cart/items/", `{"product_id":1}`); r.StatusCode() == 0 {
		t.Fatal("POST got no answer")
	}
	if _, h2 := stats(); h2-h1 != 2 {
		t.Fatalf("miss and POST: %d hand-offs, want 2", h2-h1)
	}
}
