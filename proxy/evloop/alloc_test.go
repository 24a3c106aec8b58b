//go:build linux && !race

// The race detector makes sync.Pool drop items on purpose, so allocation counts
// are only meaningful without it.

package evloop

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestInlineRequestAllocatesNothing pins the loop's own hot path: reading,
// parsing, answering inline, serializing and writing a keep-alive request
// allocate nothing once warm (the client side here allocates nothing either).
func TestInlineRequestAllocatesNothing(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 2048)
	_, addr := startLoops(t, Config{Loops: 1, ReadTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, WriteTimeout: 30 * time.Second,
		Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBody(body) },
		Inline: func(ctx *fasthttp.RequestCtx) (bool, fasthttp.RequestHandler) {
			ctx.SetBody(body)
			return true, nil
		}})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	// Learn the answer's length (Date has a fixed width).
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 4096)
	n, err := c.Read(first)
	if err != nil {
		t.Fatal(err)
	}
	for !bytes.HasSuffix(first[:n], body) {
		m, err := c.Read(first[n:])
		if err != nil {
			t.Fatal(err)
		}
		n += m
	}
	buf := make([]byte, n)
	once := func() {
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}
	for range 50 {
		once()
	}
	if allocs := testing.AllocsPerRun(500, once); allocs != 0 {
		t.Fatalf("an inline keep-alive request allocates %v times", allocs)
	}
}
