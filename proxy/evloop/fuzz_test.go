//go:build linux

package evloop

import (
	"bytes"
	"io"
	"net"
	"regexp"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

var dateLine = regexp.MustCompile(`Date: [^\r]*\r\n`)

// exchangeSplit sends raw to addr in two writes split at k (with a pause, so the
// loop sees two reads), half-closes, and returns everything the server wrote.
func exchangeSplit(t *testing.T, addr string, raw []byte, k int) []byte {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if k > 0 && k < len(raw) {
		_, _ = c.Write(raw[:k])
		time.Sleep(2 * time.Millisecond)
		_, _ = c.Write(raw[k:])
	} else {
		_, _ = c.Write(raw)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading answers: %v", err)
	}
	return dateLine.ReplaceAll(out, nil)
}

// FuzzFraming: whatever bytes arrive, and however they are split across reads,
// the loop answers the same sequence (framing does not depend on packet
// boundaries), never panics and always ends the connection.
func FuzzFraming(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /n HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"\r\nGET / HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET /x HTTP/1.1\nHost: x\n\n",
		// Trailer fields the framer discards (taken out of the loop's buffer
		// before fasthttp reads the request), then Host there (refused).
		"POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nVary: *\r\nContent-Type: a\r\nCookie: b\r\nX-Sum: 1\r\n\r\nGET /n HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Forwarded-For: a\r\nHost: y\r\n\r\n",
	} {
		f.Add([]byte(s), uint16(7))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	s := New(Config{Loops: 1, MaxHeaderBytes: 4096, MaxBodyBytes: 4096, ReadTimeout: 2 * time.Second,
		Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.Response.Header.Set("X-Path", string(ctx.Path()))
			ctx.SetBody(ctx.Request.Body())
		},
		ErrorHandler: func(ctx *fasthttp.RequestCtx, err error) { ctx.SetStatusCode(400) },
	})
	go s.Serve(ln) //nolint:errcheck
	f.Cleanup(func() { s.Close(); ln.Close() })
	addr := ln.Addr().String()
	f.Fuzz(func(t *testing.T, raw []byte, split uint16) {
		if len(raw) > 8192 {
			return
		}
		whole := exchangeSplit(t, addr, raw, 0)
		parts := exchangeSplit(t, addr, raw, int(split)%(len(raw)+1))
		if !bytes.Equal(whole, parts) {
			t.Fatalf("split at %d changed the answers:\nwhole: %q\nsplit: %q", int(split)%(len(raw)+1), whole, parts)
		}
	})
}
