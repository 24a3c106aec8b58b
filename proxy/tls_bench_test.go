package proxy

import (
	"crypto/tls"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/novashop/edge/proxy/config"
	"github.com/valyala/fasthttp"
)

// BenchmarkTLSHandshake: one connection per op, handshake plus one request
// with Connection: close, full against resumed (TLS 1.3 ticket), ECDSA P-256.
// Client and edge share the process, so ns/op is both sides' CPU.
func BenchmarkTLSHandshake(b *testing.B) {
	ca := newTestCA(b)
	o := newOrigin(b, "o1", nil)
	cfg := tlsTestConfig([]config.Certificate{ca.issue("s", []string{"shop.test"}, leafOpts{})}, o)
	cfg.Health.Active = false
	e := startTLSEdge(b, cfg, Options{Cache: &memCache{body: []byte("ok")}})
	req := []byte("GET / HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n")
	for _, resumed := range []bool{false, true} {
		name := "full"
		if resumed {
			name = "resumed"
		}
		b.Run(name, func(b *testing.B) {
			cc := &tls.Config{RootCAs: ca.pool, ServerName: "shop.test", NextProtos: []string{"http/1.1"}}
			if resumed {
				cc.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			}
			one := func() bool {
				c, err := tls.Dial("tcp", e.tlsAddr, cc)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = c.Write(req)
				_, _ = io.Copy(io.Discard, c)
				_ = c.Close()
				return c.ConnectionState().DidResume
			}
			one()
			cpu := cpuMeter(b)
			for b.Loop() {
				if got := one(); got != resumed {
					b.Fatalf("resumed = %v", got)
				}
			}
			cpu()
		})
	}
}

// BenchmarkProtocolHit: one keep-alive connection, a 2 KB cache hit per op,
// plaintext HTTP/1.1, HTTP/1.1 over TLS 1.3 and HTTP/2 (the bridge); client
// and edge in one process.
func BenchmarkProtocolHit(b *testing.B) {
	ca := newTestCA(b)
	o := newOrigin(b, "o1", nil)
	cfg := tlsTestConfig([]config.Certificate{ca.issue("s", []string{"shop.test", "127.0.0.1"}, leafOpts{})}, o)
	cfg.Health.Active = false
	e := startTLSEdge(b, cfg, Options{Cache: &memCache{body: make([]byte, 2048)}})
	fh := func(c *fasthttp.HostClient, url string) func() {
		return func() {
			var req fasthttp.Request
			var resp fasthttp.Response
			req.SetRequestURI(url)
			if err := c.DoTimeout(&req, &resp, 5*time.Second); err != nil || resp.StatusCode() != 200 {
				b.Fatalf("%v %d", err, resp.StatusCode())
			}
		}
	}
	h2 := h2Client(ca)
	cases := []struct {
		name string
		do   func()
	}{
		{"h1-plain", fh(&fasthttp.HostClient{Addr: e.addr, MaxConns: 1}, "http://"+e.addr+"/")},
		{"h1-tls", fh(&fasthttp.HostClient{Addr: e.tlsAddr, IsTLS: true, MaxConns: 1,
			TLSConfig: &tls.Config{RootCAs: ca.pool, ServerName: "shop.test"}}, "https://"+e.tlsAddr+"/")},
		{"h2", func() {
			r, err := h2.Get("https://" + e.tlsAddr + "/")
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, r.Body)
			_ = r.Body.Close()
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			tc.do()
			b.ReportAllocs()
			cpu := cpuMeter(b)
			for b.Loop() {
				tc.do()
			}
			cpu()
		})
	}
}

// cpuMeter reports the process's CPU time (user+system) per op from now to
// the returned function's call: ns/op is wall time on a shared machine.
func cpuMeter(b *testing.B) func() {
	var start syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &start)
	return func() {
		var end syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &end)
		ns := func(r syscall.Rusage) int64 { return r.Utime.Nano() + r.Stime.Nano() }
		b.ReportMetric(float64(ns(end)-ns(start))/float64(b.N), "cpu-ns/op")
	}
}
