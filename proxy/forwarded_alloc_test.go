//go:build !race

// The race detector makes sync.Pool drop items on purpose (see alloc_test.go).

package proxy

import (
	"bufio"
	"net"
	"testing"

	"github.com/novashop/edge/proxy/config"
	"github.com/valyala/fasthttp"
)

// TestForwardedAllocatesNothing: reading a trusted peer's forwarding headers
// (the client address kept in the exchange, the header parsed in place)
// keeps a forwarded GET at zero allocations, through the handler and from the
// event loop, with either header kind.
func TestForwardedAllocatesNothing(t *testing.T) {
	o := newOrigin(t, "o1", func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hello") })
	o2 := newOrigin(t, "o2", func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hello") })
	for _, header := range []string{config.ForwardedXFF, config.ForwardedRFC7239} {
		t.Run("handler "+header, func(t *testing.T) {
			// handlerLoop's peer is 10.0.0.1, its X-Forwarded-For 203.0.113.9.
			cfg := testConfig(o, o2)
			cfg.Health.Active = false
			cfg.Forwarded = config.Forwarded{Trusted: []string{"10.0.0.0/8"}, Header: header, Recursive: true}
			if allocs := handlerAllocs(t, cfg, Options{}); allocs != 0 {
				t.Fatalf("a forwarded GET from a trusted peer allocates %v times", allocs)
			}
		})
		t.Run("event loop "+header, func(t *testing.T) {
			cfg := testConfig(o, o2)
			cfg.IO = config.IOEventLoop
			cfg.Health.Active = false
			cfg.Balancer.Policy, cfg.Balancer.HashKey = "hash", "ip"
			cfg.Forwarded = config.Forwarded{Trusted: []string{"127.0.0.1"}, Header: header, Recursive: true}
			e := startEdge(t, cfg, Options{})
			c, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			req := []byte("GET /api/products/1/ HTTP/1.1\r\nHost: shop\r\nX-Request-Id: 0123456789abcdef\r\n" +
				"X-Forwarded-For: 192.0.2.1, 203.0.113.9\r\nX-Forwarded-Proto: https\r\n" +
				"Forwarded: for=192.0.2.1, for=\"[2001:db8::9]:443\";proto=https\r\n\r\n")
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
			if allocs := testing.AllocsPerRun(300, once); allocs != 0 {
				t.Fatalf("a GET from a trusted peer forwarded from the loop allocates %v times", allocs)
			}
		})
	}
}
