package cache

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/internal/testenv"
)

// json2K is a 2 KB JSON product list, the size the speed goal names.
var json2K = `{"results":[` + strings.TrimSuffix(strings.Repeat(`{"id":1,"name":"Espresso machine","price":"129.99","stock":7},`, 32), ",") + `],"next":null}`

func warmHit(tb testing.TB) (*Cache, *origin) {
	c := newTestCache(tb, testenv.Redis(tb), randName(tb), nil)
	o := newOrigin(static(200, json2K, "Cache-Control", "public, max-age=3600", "Content-Type", "application/json", "Cache-Tag", "products,product:1"))
	do(c, o, "GET", "/api/products/?limit=20")
	eventually(tb, 2*time.Second, "hit", func() bool { return isHit(do(c, o, "GET", "/api/products/?limit=20")) })
	return c, o
}

func hitCtx() *fasthttp.RequestCtx {
	ctx := &fasthttp.RequestCtx{}
	ctx.Request.Header.SetMethod("GET")
	ctx.Request.SetRequestURI("/api/products/?limit=20")
	ctx.Request.Header.SetHost("shop.test")
	ctx.Request.Header.Set("Accept-Encoding", "gzip")
	return ctx
}

// TestHitAllocatesNothing pins the hot path: a fresh hit answered from the
// decoded table allocates nothing once the response buffers are warm.
func TestHitAllocatesNothing(t *testing.T) {
	c, o := warmHit(t)
	ctx := hitCtx()
	fetch := o.fetch
	c.Serve(ctx, fetch)
	allocs := testing.AllocsPerRun(200, func() {
		ctx.Response.Reset()
		c.Serve(ctx, fetch)
	})
	if !isHitCtx(ctx) || len(ctx.Response.Body()) != len(json2K) {
		t.Fatalf("not a hit: %q", ctx.Response.Header.Peek(HeaderCacheStatus))
	}
	if allocs != 0 && !raceEnabled {
		t.Fatalf("a hit allocates %v times, want 0", allocs)
	}
}

func isHitCtx(ctx *fasthttp.RequestCtx) bool {
	return strings.Contains(string(ctx.Response.Header.Peek(HeaderCacheStatus)), "; hit")
}

// BenchmarkServeHit measures a hit on a 2 KB JSON response.
func BenchmarkServeHit(b *testing.B) {
	c, o := warmHit(b)
	fetch := o.fetch
	b.ReportAllocs()
	b.SetBytes(int64(len(json2K)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := hitCtx()
		for pb.Next() {
			ctx.Response.Reset()
			c.Serve(ctx, fetch)
		}
	})
	b.StopTimer()
	if o.calls.Load() != 1 {
		b.Fatalf("origin saw %d requests during the benchmark", o.calls.Load())
	}
}

// BenchmarkServeMiss measures a miss that is stored: a new URL each time,
// its own never-bumped tag (as a product page's product:N) plus one the
// edge holds, against the real Redis. The round trips a miss makes are
// what it measures; cpu-µs/op is this process' CPU (user+system) per
// miss, as getrusage counts it, without Redis' own.
func BenchmarkServeMiss(b *testing.B) {
	c := newTestCache(b, testenv.Redis(b), randName(b), nil)
	run := randName(b)
	o := newOrigin(func(req *fasthttp.Request, resp *fasthttp.Response) error {
		return static(200, json2K, "Cache-Control", "public, max-age=3600", "Content-Type", "application/json",
			"Cache-Tag", "products,p-"+run+string(req.URI().QueryString()))(req, resp)
	})
	ctx := hitCtx()
	do(c, o, "GET", "/api/products/?warm") // the shared tag is held from here on
	var ru0, ru1 syscall.Rusage
	b.ReportAllocs()
	b.ResetTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	for i := 0; i < b.N; i++ {
		ctx.Request.SetRequestURI("/api/products/?" + strconv.Itoa(i))
		ctx.Response.Reset()
		c.Serve(ctx, o.fetch)
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	b.StopTimer()
	if !strings.Contains(string(ctx.Response.Header.Peek(HeaderCacheStatus)), "; stored") {
		b.Fatalf("not stored: %q", ctx.Response.Header.Peek(HeaderCacheStatus))
	}
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
}
