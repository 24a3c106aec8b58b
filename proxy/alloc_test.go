//go:build !race

// The race detector makes sync.Pool drop items on purpose, so allocation counts are
// only meaningful without it (fasthttp's allocation tests do the same).

package proxy

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/proxy/cache"
	"github.com/novashop/edge/proxy/config"
)

// TestForwardAllocatesNothing pins the hot path: once pools are warm, a forwarded
// GET allocates nothing in the edge (headers, request id, balancer, metrics, retries
// bookkeeping included).
func TestForwardAllocatesNothing(t *testing.T) {
	o := newOrigin(t, "o1", func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hello") })
	o2 := newOrigin(t, "o2", func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hello") })
	cfg := testConfig(o, o2)
	cfg.Health.Active = false
	if allocs := handlerAllocs(t, cfg, Options{}); allocs != 0 {
		t.Fatalf("a forwarded GET allocates %v times", allocs)
	}
}

// handlerAllocs builds an edge from cfg and opt and returns the allocations of
// one request through its handler, after a warm-up (pools, keep-alive).
func handlerAllocs(t *testing.T, cfg config.Config, opt Options) float64 {
	t.Helper()
	s, err := New(cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	serve := handlerLoop(s)
	for range 50 {
		serve()
	}
	return testing.AllocsPerRun(200, func() {
		if code := serve(); code != 200 {
			t.Fatalf("status %d", code)
		}
	})
}

// BenchmarkEdgeParallel is the end-to-end view: keep-alive clients → edge → origin,
// all on loopback.
func BenchmarkEdgeParallel(b *testing.B) {
	o := newOrigin(b, "o1", func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hello") })
	o2 := newOrigin(b, "o2", func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hello") })
	cfg := testConfig(o, o2)
	cfg.Health.Active = false
	e := startEdge(b, cfg, Options{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://" + e.addr + "/products/")
		for pb.Next() {
			if err := e.client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				b.Errorf("request failed: %v %d", err, resp.StatusCode())
				return
			}
		}
	})
}

// TestCacheHitAllocatesNothing pins the edge's side of a cache hit: handing the
// request to the Cache (with its fetch function, or for a SplitServer its
// foreground and background ones) allocates nothing unless the balancer hashes
// on the client IP.
func TestCacheHitAllocatesNothing(t *testing.T) {
	body := []byte(`{"id":1}`)
	for _, tt := range []struct {
		name string
		c    Cache
	}{
		{"Serve", &memCache{body: body}},
		{"ServeSplit", &splitMemCache{memCache{body: body}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, "o1", nil)
			cfg := testConfig(o)
			cfg.Health.Active = false
			if allocs := handlerAllocs(t, cfg, Options{Cache: tt.c}); allocs != 0 {
				t.Fatalf("a cache hit allocates %v times in the edge", allocs)
			}
		})
	}
}

// splitMemCache is memCache reached through ServeSplit, as the real cache is.
type splitMemCache struct{ memCache }

func (c *splitMemCache) ServeSplit(ctx *fasthttp.RequestCtx, _, _ func(req *fasthttp.Request, resp *fasthttp.Response) error) {
	c.Serve(ctx, nil)
}

// TestForwardStreamingAllocs pins what limits.stream_response_bytes costs: with it
// on, a forwarded GET with a small body pays only fasthttp's four allocations for a
// streamed response (closures that release the origin connection), none in the edge.
func TestForwardStreamingAllocs(t *testing.T) {
	o := newOrigin(t, "o1", func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hello") })
	cfg := testConfig(o)
	cfg.Health.Active = false
	cfg.Limits.StreamResponseBytes = 4 << 20
	if allocs := handlerAllocs(t, cfg, Options{}); allocs > 4 {
		t.Fatalf("a forwarded GET with response streaming on allocates %v times, want at most 4", allocs)
	}
}

// localCache is memCache that also answers on the event loop (LocalServer).
type localCache struct{ memCache }

func (c *localCache) TryServeLocal(ctx *fasthttp.RequestCtx) bool {
	c.Serve(ctx, nil)
	return true
}

// TestInlineHitAllocatesNothing pins the event loop's inline hit: admit, the
// local cache tier and finish on the loop allocate nothing once warm.
func TestInlineHitAllocatesNothing(t *testing.T) {
	o := newOrigin(t, "o1", nil)
	cfg := testConfig(o)
	cfg.Health.Active = false
	cfg.IO = config.IOEventLoop
	s, err := New(cfg, Options{Cache: &localCache{memCache{body: []byte(`{"id":1}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 4000}, nil)
	serve := func() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.SetRequestURI("/api/products/?limit=20")
		ctx.Request.Header.SetHost("shop.example")
		if done, _ := s.handleInline(&ctx); !done || ctx.Response.StatusCode() != 200 {
			t.Fatalf("inline hit not answered: %v %d", done, ctx.Response.StatusCode())
		}
	}
	for range 50 {
		serve()
	}
	if allocs := testing.AllocsPerRun(200, serve); allocs != 0 {
		t.Fatalf("an inline hit allocates %v times", allocs)
	}
}

// TestLoopForwardAllocatesNothing pins the event loop's forward path: a
// keep-alive GET read on the loop, admitted, forwarded over the loop's own
// upstream connection, framed and answered allocates nothing once warm (edge,
// in-process origin and this client together); with pipelining on too
// (limits.upstream_pipeline_depth: a lone request goes through the loop's
// queue for the round).
func TestLoopForwardAllocatesNothing(t *testing.T) {
	for _, depth := range []int{0, 8} {
		t.Run("pipeline depth "+strconv.Itoa(depth), func(t *testing.T) { loopForwardAllocs(t, depth) })
	}
}

func loopForwardAllocs(t *testing.T, depth int) {
	o := newOrigin(t, "o1", func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hello") })
	o2 := newOrigin(t, "o2", func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hello") })
	cfg := testConfig(o, o2)
	cfg.IO = config.IOEventLoop
	cfg.Health.Active = false
	cfg.Limits.UpstreamPipelineDepth = depth
	e := startEdge(t, cfg, Options{})
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /api/products/1/ HTTP/1.1\r\nHost: shop\r\nX-Request-Id: 0123456789abcdef\r\n\r\n")
	br := bufio.NewReader(c)
	var resp fasthttp.Response
	once := func() {
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		if err := resp.Read(br); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode(), resp.Body())
		}
	}
	for range 100 {
		once()
	}
	before := e.s.loops.Stats()
	if allocs := testing.AllocsPerRun(300, once); allocs != 0 {
		t.Fatalf("a GET forwarded from the loop allocates %v times", allocs)
	}
	if st := e.s.loops.Stats(); st.Forwards-before.Forwards < 300 || st.Handoffs != before.Handoffs {
		t.Fatalf("not forwarded from the loop: %+v", st)
	}
}

// TestLoopRawHitAllocatesNothing pins the event loop's raw hit path (the real
// cache's pre-serialized head copied to the connection, serveRaw): a
// keep-alive GET read on the loop, admitted, answered from the local tier and
// written allocates nothing once warm (edge and this client together).
func TestLoopRawHitAllocatesNothing(t *testing.T) {
	o := newOrigin(t, "o1", func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Cache-Control", "public, s-maxage=600")
		ctx.Response.Header.SetContentType("application/json")
		ctx.SetBodyString(`{"id":1,"name":"tea"}`)
	})
	c, err := cache.New(cache.Config{RedisURL: testenv.Redis(t), RedisTimeout: testRedisTimeout, Namespace: fmt.Sprintf("rawalloc-%d:", time.Now().UnixNano())}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(o)
	cfg.IO = config.IOEventLoop
	cfg.Health.Active = false
	e := startEdge(t, cfg, Options{Cache: c})
	// A loaded machine may take a while to connect the cache to Redis.
	waitUntil(t, "the cache's Redis", 20*time.Second, c.Available)
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := []byte("GET /api/products/1/ HTTP/1.1\r\nHost: shop\r\nX-Request-Id: 0123456789abcdef\r\n\r\n")
	br := bufio.NewReader(conn)
	var resp fasthttp.Response
	once := func() {
		if _, err := conn.Write(req); err != nil {
			t.Fatal(err)
		}
		if err := resp.Read(br); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode(), resp.Body())
		}
	}
	for range 100 {
		once()
	}
	before := e.s.loops.Stats()
	if allocs := testing.AllocsPerRun(300, once); allocs != 0 {
		t.Fatalf("a raw hit on the loop allocates %v times", allocs)
	}
	if st := e.s.loops.Stats(); st.Raw-before.Raw < 300 || st.Handoffs != before.Handoffs {
		t.Fatalf("not answered raw on the loop: %+v", st)
	}
}
