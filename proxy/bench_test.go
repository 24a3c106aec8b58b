package proxy

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkHandlerForward measures the edge's own cost per forwarded GET: the
// handler is called directly (no client socket), the origin is a real keep-alive
// connection on 127.0.0.1. Allocations reported are the edge's plus fasthttp's
// client.
func BenchmarkHandlerForward(b *testing.B) {
	o := newOrigin(b, "o1", func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hello") })
	cfg := testConfig(o)
	cfg.Health.Active = false
	s, err := New(cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	serve := handlerLoop(s)
	b.ReportAllocs()
	for b.Loop() {
		if code := serve(); code != 200 {
			b.Fatalf("status %d (edge retries %d, denied %d)", code, s.metrics.Retries.Get(), s.metrics.RetriesDenied.Get())
		}
	}
}

// handlerLoop returns a function that sends one GET through s's handler on a reused
// RequestCtx, as fasthttp's server does for each request on a connection.
func handlerLoop(s *Server) func() int {
	h := s.Handler()
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 4000}, nil)
	return func() int {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.SetRequestURI("/api/products/?limit=20")
		ctx.Request.Header.SetHost("shop.example")
		ctx.Request.Header.Set("X-Forwarded-For", "203.0.113.9")
		h(&ctx)
		return ctx.Response.StatusCode()
	}
}

// BenchmarkHandlerCacheHit measures the edge's own work around a cache hit: the
// handler runs on a reused RequestCtx and the Cache answers from memory, so what
// remains is request id, identity and forwarding headers, metrics and the
// exchange bookkeeping (no sockets).
func BenchmarkHandlerCacheHit(b *testing.B) {
	o := newOrigin(b, "o1", nil)
	cfg := testConfig(o)
	cfg.Health.Active = false
	s, err := New(cfg, Options{Cache: &memCache{body: make([]byte, 2048)}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	serve := handlerLoop(s)
	b.ReportAllocs()
	for b.Loop() {
		if code := serve(); code != 200 {
			b.Fatalf("status %d", code)
		}
	}
}
