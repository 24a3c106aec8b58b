package server_test

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/novashop/edge/origin/origintest"
	"github.com/novashop/edge/origin/server"
)

// keep drops cleanups: the benchmark fixtures below are built once per
// test binary (the testing package calls a benchmark function several
// times, running cleanups after each) and die with it.
type keep struct{ testing.TB }

func (keep) Cleanup(func()) {}

var (
	benchOnce    sync.Once
	benchHandler fasthttp.RequestHandler
	httpOnce     sync.Once
	httpBase     string
)

func benchServer(b *testing.B) fasthttp.RequestHandler {
	b.Helper()
	benchOnce.Do(func() {
		_, pool := origintest.DB(keep{b})
		origintest.Seed(b, pool, 10, 5000, 0)
		srv, err := server.New(server.Deps{Name: "bench", Pool: pool, Keys: origintest.Keys(b), Log: zap.NewNop()})
		if err != nil {
			b.Fatal(err)
		}
		benchHandler = srv.Handler()
	})
	if benchHandler == nil {
		b.Fatal("bench server unavailable")
	}
	return benchHandler
}

func benchGet(b *testing.B, h fasthttp.RequestHandler, uri string) {
	b.Helper()
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI(uri)
	h(&ctx)
	if ctx.Response.StatusCode() != 200 {
		b.Fatalf("%s: %d %s", uri, ctx.Response.StatusCode(), ctx.Response.Body())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ctx.Response.Reset()
		h(&ctx)
	}
}

// BenchmarkProductPage is GET /api/products/{id}/ through the full
// middleware chain and a real PostgreSQL round trip.
func BenchmarkProductPage(b *testing.B) {
	benchGet(b, benchServer(b), "/api/products/123/")
}

// BenchmarkProductList is a 20-product page of one category by price.
func BenchmarkProductList(b *testing.B) {
	benchGet(b, benchServer(b), "/api/products/?category=3&ordering=price&limit=20")
}

// BenchmarkProductPageHTTP measures the origin's direct throughput on the
// product page over real loopback HTTP with a 100,000-product catalog,
// many product ids, and parallel keep-alive clients. It reports req/s.
func BenchmarkProductPageHTTP(b *testing.B) {
	httpOnce.Do(func() {
		_, pool := origintest.DB(keep{b})
		origintest.Seed(b, pool, 20, 100_000, 0)
		httpBase, _ = origintest.Start(keep{b}, server.Deps{Name: "bench", Pool: pool})
	})
	if httpBase == "" {
		b.Fatal("bench server unavailable")
	}
	base := httpBase
	hc := &fasthttp.HostClient{Addr: strings.TrimPrefix(base, "http://"), MaxConns: 64}
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		for pb.Next() {
			id := next.Add(7919)%100_000 + 1
			req.SetRequestURI(base + "/api/products/" + strconv.FormatInt(id, 10) + "/")
			if err := hc.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				b.Errorf("product %d: %v %d", id, err, resp.StatusCode())
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
