//go:build !race

// The race detector makes sync.Pool drop items on purpose (see alloc_test.go).

package proxy

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/novashop/edge/proxy/config"
	"github.com/valyala/fasthttp"
)

// TestProxyProtocolAllocatesNothing: after the header, a keep-alive GET
// forwarded from the event loop still allocates nothing (the client address
// is read from the connection, not built per request), as
// TestLoopForwardAllocatesNothing pins without the PROXY protocol.
func TestProxyProtocolAllocatesNothing(t *testing.T) {
	o := newOrigin(t, "o1", func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hello") })
	e := ppEdge(t, []string{"127.0.0.1"}, time.Second, func(c *config.Config) {
		c.IO = config.IOEventLoop
		c.Health.Active = false
	}, o)
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(ppV2(1, 0x11, ppTCP4("198.51.100.9", 40000))); err != nil {
		t.Fatal(err)
	}
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
		if resp.StatusCode() != 200 || header(&resp, "X-Echo-X-Forwarded-For") != "198.51.100.9" {
			t.Fatalf("status %d, X-Forwarded-For %q: %s", resp.StatusCode(), header(&resp, "X-Echo-X-Forwarded-For"), resp.Body())
		}
	}
	for range 100 {
		once()
	}
	if allocs := testing.AllocsPerRun(300, once); allocs != 0 {
		t.Fatalf("a GET forwarded from the loop after a PROXY header allocates %v times", allocs)
	}
}
