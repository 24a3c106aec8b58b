package proxy

import (
	"fmt"
	goruntime "runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/proxy/cache"
	"github.com/novashop/edge/proxy/config"
	"github.com/novashop/edge/proxy/evloop"
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
	c, err := cache.New(cache.Config{RedisURL: testenv.Redis(t), RedisTimeout: testRedisTimeout, Namespace: fmt.Sprintf("evloop-%d:", time.Now().UnixNano())}, zap.NewNop())
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

// Without a cache, an uncached GET/HEAD is forwarded from the loop itself (no
// hand-off), with the answer the goroutine core gives: the edge's headers set,
// hop-by-hop fields gone both ways. A POST still goes to a goroutine.
func TestEventLoopForwardInline(t *testing.T) {
	o := newOrigin(t, "o1", func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Keep-Alive", "timeout=5")
		ctx.Response.Header.Set("Cache-Tag", "product:1")
		ctx.SetBodyString("product " + string(ctx.Path()))
	})
	cfg := testConfig(o)
	cfg.IO = config.IOEventLoop
	e := startEdge(t, cfg, Options{})
	stats := func() (forwards, handoffs uint64) {
		st := e.s.loops.Stats()
		return st.Forwards, st.Handoffs
	}
	f0, h0 := stats()
	for i := 0; i < 5; i++ {
		r := e.do(t, "GET", "/api/products/1/?q=%2F", "", "Connection: X-Hop", "X-Hop: 1")
		if r.StatusCode() != 200 || string(r.Body()) != "product /api/products/1/" {
			t.Fatalf("GET %d: %d %q", i, r.StatusCode(), r.Body())
		}
		if header(r, "X-Request-Id") == "" || header(r, "Keep-Alive") != "" || header(r, "Cache-Tag") != "" ||
			header(r, "X-Echo-X-Hop") != "" || header(r, "X-Echo-X-Forwarded-For") != "127.0.0.1" {
			t.Fatalf("GET %d: headers wrong:\n%s", i, r.Header.String())
		}
	}
	if r := e.do(t, "HEAD", "/api/products/1/", ""); r.StatusCode() != 200 || len(r.Body()) != 0 {
		t.Fatalf("HEAD: %d %q", r.StatusCode(), r.Body())
	}
	f1, h1 := stats()
	if f1-f0 != 6 || h1 != h0 {
		t.Fatalf("GET and HEAD: %d forwarded from the loop, %d handed off; want 6 and 0", f1-f0, h1-h0)
	}
	if r := e.do(t, "POST", "/api/login/", `{"username":"u"}`); r.StatusCode() != 200 {
		t.Fatalf("POST: %d", r.StatusCode())
	}
	if f2, h2 := stats(); f2 != f1 || h2-h1 != 1 {
		t.Fatalf("POST: %d forwarded, %d handed off; want 0 and 1", f2-f1, h2-h1)
	}
}

// A dead host costs a retry on the other host, decided on the loop by the
// same tries as the goroutine core's forward: every request is answered, the
// dead host is ejected by passive health, and retries are counted.
func TestEventLoopForwardRetriesOnAnotherHost(t *testing.T) {
	big := strings.Repeat("x", loopMaxAnswer+10)
	var large atomic.Bool
	live := newOrigin(t, "live", func(ctx *fasthttp.RequestCtx) {
		if large.Load() {
			ctx.SetBodyString(big)
			return
		}
		ctx.SetBodyString("hello")
	})
	dead := newOrigin(t, "dead", nil)
	cfg := testConfig(live, dead)
	cfg.IO = config.IOEventLoop
	cfg.Health.Active = false
	cfg.Retries.BudgetRatio = 1
	e := startEdge(t, cfg, Options{})
	dead.kill()
	for i := 0; i < 20; i++ {
		r := e.do(t, "GET", "/api/products/", "")
		if r.StatusCode() != 200 || header(r, "X-Served-By") != "live" {
			t.Fatalf("request %d: %d from %q", i, r.StatusCode(), header(r, "X-Served-By"))
		}
	}
	if st := e.s.loops.Stats(); st.Forwards < 20 || st.Handoffs != 0 {
		t.Fatalf("stats %+v: want 20 forwards from the loop and no hand-off", st)
	}
	if e.s.metrics.Retries.Get() == 0 {
		t.Fatal("no retry counted")
	}
	if u := e.s.rt.Load().pool.Get("dead"); u.Healthy() && u.Failures() == 0 {
		t.Fatal("the dead host took no failure")
	}

	// An answer above the loop's bound is sent again from a goroutine.
	large.Store(true)
	st0 := e.s.loops.Stats()
	if r := e.do(t, "GET", "/api/products/", ""); r.StatusCode() != 200 || len(r.Body()) != len(big) {
		t.Fatalf("large answer: %d, %d bytes", r.StatusCode(), len(r.Body()))
	}
	if st := e.s.loops.Stats(); st.Handoffs-st0.Handoffs != 1 {
		t.Fatalf("large answer: %d hand-offs, want 1", st.Handoffs-st0.Handoffs)
	}
}

// TestEventLoopIOLoops: io_loops sets the loop count (0 keeps one per
// GOMAXPROCS), and the edge serves on however many loops it runs.
func TestEventLoopIOLoops(t *testing.T) {
	o := newOrigin(t, "o1", func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") })
	for _, tt := range []struct{ ioLoops, want int }{
		{0, goruntime.GOMAXPROCS(0)},
		{1, 1},
		{3, 3},
	} {
		t.Run(fmt.Sprint(tt.ioLoops), func(t *testing.T) {
			cfg := testConfig(o)
			cfg.IO = config.IOEventLoop
			cfg.IOLoops = tt.ioLoops
			e := startEdge(t, cfg, Options{})
			if got := e.s.loops.Loops(); got != tt.want {
				t.Fatalf("io_loops %d: %d loops, want %d", tt.ioLoops, got, tt.want)
			}
			for i := 0; i < 4; i++ {
				if r := e.do(t, "GET", "/api/products/1/", ""); r.StatusCode() != 200 || string(r.Body()) != "ok" {
					t.Fatalf("GET %d: %d %q", i, r.StatusCode(), r.Body())
				}
			}
		})
	}
}

// TestBatchWaitBoundsAgree: the config refuses io_batch_wait past the bound
// the loops clamp to, so the two constants must stay one value.
func TestBatchWaitBoundsAgree(t *testing.T) {
	if config.MaxIOBatchWait != evloop.MaxBatchWait {
		t.Fatalf("config.MaxIOBatchWait %s, evloop.MaxBatchWait %s", config.MaxIOBatchWait, evloop.MaxBatchWait)
	}
}
