//lint:file-ignore SA1019 the tests drive x/net http2 (Transport, NewClientConn) as the peer, which net/http Protocols does not offer for one raw connection.

package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/proxy/cache"
	"github.com/novashop/edge/proxy/config"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"golang.org/x/net/http2"
)

// TestH2NativeCacheHitsInline: with tls.http2_server: native and a cache,
// hits are answered on the connection's reading goroutine (the event-loop
// core's inline path: the edge's checks, then the local tier) and carry what
// every HTTPS answer carries (HSTS); misses, purges and protected routes
// still take the worker path; many streams mixing both on one connection
// all get their own answers.
func TestH2NativeCacheHitsInline(t *testing.T) {
	var xffMu sync.Mutex
	var xff []string
	o := newOrigin(t, "o1", func(ctx *fasthttp.RequestCtx) {
		xffMu.Lock()
		xff = append(xff, string(ctx.Request.Header.Peek("X-Forwarded-For")))
		xffMu.Unlock()
		ctx.Response.Header.Set("Cache-Control", "public, max-age=60")
		ctx.Response.Header.Set("Cache-Tag", "p")
		ctx.SetBodyString("page " + string(ctx.Path()))
	})
	ca := newTestCA(t)
	cfg := tlsTestConfig([]config.Certificate{ca.issue("shop", []string{"shop.test"}, leafOpts{})}, o)
	cfg.TLS.HSTS.MaxAge = time.Hour
	cfg.TLS.HTTP2Server = config.H2ServerNative
	c, err := cache.New(cache.Config{RedisURL: testenv.Redis(t), RedisTimeout: testRedisTimeout, Namespace: fmt.Sprintf("h2n-%d:", time.Now().UnixNano())}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	e := startTLSEdge(t, cfg, Options{Cache: c, JWTSecret: []byte(h2cSecret)})
	hc := h2Client(ca)
	base := "https://" + e.tlsAddr
	native := e.s.tls.h2.native
	if native == nil {
		t.Fatal("tls.http2_server: native did not pick the native server")
	}
	fetch := func(path string) (status int, cs, hsts, body string) {
		t.Helper()
		r, err := hc.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if r.ProtoMajor != 2 {
			t.Fatalf("%s: %s, want HTTP/2", path, r.Proto)
		}
		return r.StatusCode, r.Header.Get("Cache-Status"), r.Header.Get("Strict-Transport-Security"), string(b)
	}
	if _, cs, _, _ := fetch("/products/1/"); strings.Contains(cs, "hit") {
		t.Fatalf("first GET: Cache-Status %q, want a miss", cs)
	}
	// The miss went on from the inline path to a worker: admitted once
	// (one X-Forwarded-For entry), not run through the handler again.
	xffMu.Lock()
	if fmt.Sprint(xff) != "[127.0.0.1]" {
		t.Errorf("origin saw X-Forwarded-For %q, want one entry", xff)
	}
	xffMu.Unlock()
	before := native.Inlined.Load()
	st, cs, hsts, body := fetch("/products/1/")
	if st != 200 || !strings.Contains(cs, "hit") || hsts == "" || body != "page /products/1/" {
		t.Errorf("second GET: %d, Cache-Status %q, HSTS %q, body %q; want an inline hit with HSTS", st, cs, hsts, body)
	}
	if native.Inlined.Load() != before+1 {
		t.Errorf("the hit was not answered inline (%d inline answers before, %d after)", before, native.Inlined.Load())
	}
	// Protected routes are not inline: the JWT check may fetch keys.
	if st, _, _, _ := fetch("/api/orders/"); st != 401 {
		t.Errorf("protected route without a token: %d, want 401", st)
	}
	// Hits and misses mixed on one connection.
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			path := fmt.Sprintf("/products/%d/", i%8)
			r, err := hc.Get(base + path)
			if err != nil {
				errs <- err.Error()
				return
			}
			b, _ := io.ReadAll(r.Body)
			_ = r.Body.Close()
			if string(b) != "page "+path {
				errs <- fmt.Sprintf("%s: %q", path, b)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if pr := e.adminDo(t, "POST", "/admin/purge", `{"tags":["p"]}`); pr.StatusCode() != 200 {
		t.Fatalf("purge: %d %s", pr.StatusCode(), pr.Body())
	}
	if _, cs, _, _ := fetch("/products/1/"); strings.Contains(cs, "hit") {
		t.Errorf("GET after purge: Cache-Status %q, want a miss", cs)
	}
}

// TestH2NativeCompressionAndClientAddress: on the native server the encoded
// answer and its headers come through over TLS, and an h2c connection behind
// the PROXY protocol hands the header's client address to the origin.
func TestH2NativeCompressionAndClientAddress(t *testing.T) {
	o := newOrigin(t, "o1", func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/html; charset=utf-8")
		ctx.SetBody(page)
	})
	ca := newTestCA(t)
	cfg := tlsTestConfig([]config.Certificate{ca.issue("shop", []string{"shop.test"}, leafOpts{})}, o)
	cfg.Compression.Encodings = []string{"br", "gzip"}
	cfg.TLS.HTTP2Server = config.H2ServerNative
	e := startTLSEdge(t, cfg, Options{})
	r, body := get(t, h2Client(ca), "https://"+e.tlsAddr+"/", "Accept-Encoding: gzip")
	if r.ProtoMajor != 2 || r.Header.Get("Content-Encoding") != "gzip" || r.Header.Get("Vary") != "Accept-Encoding" || len(body) >= len(page)/2 {
		t.Fatalf("native h2: %s, Content-Encoding %q, Vary %q, %d bytes", r.Proto, r.Header.Get("Content-Encoding"), r.Header.Get("Vary"), len(body))
	}

	xo, xff := xffOrigin(t, "o2")
	pc := testConfig(xo)
	pc.IO = config.IOGoroutine
	pc.H2C = true
	pc.H2CServer = config.H2ServerNative
	pc.ProxyProtocol = config.ProxyProtocol{Enabled: true, Trusted: []string{"127.0.0.0/8"}, Timeout: time.Second}
	h := startEdge(t, pc, Options{})
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("PROXY TCP4 203.0.113.61 10.0.0.1 1 2\r\n")); err != nil {
		t.Fatal(err)
	}
	tr := &http2.Transport{AllowHTTP: true}
	cc, err := tr.NewClientConn(c)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	req, _ := http.NewRequest("GET", "http://"+h.addr+"/products/", nil)
	resp, err := cc.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("native h2c behind the PROXY protocol: %d", resp.StatusCode)
	}
	if got := xff(); fmt.Sprint(got) != "[203.0.113.61]" {
		t.Fatalf("native h2c: origin saw X-Forwarded-For %q", got)
	}
}
