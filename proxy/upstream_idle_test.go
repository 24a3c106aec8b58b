package proxy

import (
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestUpstreamIdleBelowCommonOriginTimeouts: with the default
// timeouts.upstream_idle the edge closes an idle origin connection before an
// origin that closes idle keep-alive connections after 5 s does (Node.js's
// default keepAliveTimeout, Apache's KeepAliveTimeout). Found with the
// http-cache-tests suite's Node server (issue 14): with the old 10 s default,
// a POST sent 5–10 s after the previous request went out on a connection
// the origin had just closed, and the edge answered 502 (a POST that may
// have reached the origin is never retried).
func TestUpstreamIdleBelowCommonOriginTimeouts(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a 5 s origin idle timeout")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{IdleTimeout: 5 * time.Second, Logger: quiet{},
		Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = srv.Shutdown() })
	o := &origin{name: "node-like", url: "http://" + ln.Addr().String()}
	cfg := testConfig(o)
	cfg.Health.Active = false // health checks would keep the connection busy
	e := startEdge(t, cfg, Options{})
	if r := e.do(t, "GET", "/", ""); r.StatusCode() != 200 {
		t.Fatalf("first request: %d", r.StatusCode())
	}
	time.Sleep(5*time.Second + 500*time.Millisecond) // the origin has closed its side
	if r := e.do(t, "POST", "/", "x"); r.StatusCode() != 200 {
		t.Fatalf("POST after 5.5 s idle: %d %s (the edge reused a connection the origin closed)", r.StatusCode(), r.Body())
	}
}
