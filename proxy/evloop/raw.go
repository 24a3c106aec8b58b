//go:build linux

package evloop

import "github.com/valyala/fasthttp"

// Raw answers: an Inline handler that has an answer's header section ready
// as bytes (the cache's pre-serialized hits) appends it straight to the
// connection's output instead of filling ctx.Response for fasthttp to
// serialize. BeginRaw hands out the output, the handler appends its status
// line and fields (each ending in CRLF), and EndRaw adds what the loop
// decides per connection (Connection), the blank line and the body, as
// respond would have. A handler that starts and then decides otherwise just
// drops the slice and answers through ctx.Response: nothing was committed.

// BeginRaw returns the output to append ctx's answer to, and true, when ctx
// is a request an Inline handler is serving on its loop (the output is then
// empty: the loop answers in order and parses no request while an answer is
// pending). Otherwise (the goroutine core, a hand-off) it returns false.
func BeginRaw(ctx *fasthttp.RequestCtx) ([]byte, bool) {
	c, ok := ctx.Conn().(*conn)
	if !ok || c.state != stateOpen || c.rawDone {
		return nil, false
	}
	if c.out == nil {
		c.out = getBuf()
	}
	return *c.out, true
}

// EndRaw completes and commits an answer begun by BeginRaw: dst is the
// output BeginRaw returned with the status line and header fields appended,
// body the answer's body (not sent for HEAD). The connection closes after it
// when closeConn, the client asked so, or the server stops, with
// "Connection: close" as the last field; an HTTP/1.0 client that keeps the
// connection gets "Connection: keep-alive". That is where and how
// fasthttp's serializer puts them (prepare), so the bytes are respond's.
// The Inline handler must then report the request done.
func EndRaw(ctx *fasthttp.RequestCtx, dst, body []byte, closeConn bool) {
	c := ctx.Conn().(*conn)
	if closeConn || c.reqClose || c.l.stopping {
		dst = append(dst, "Connection: close\r\n"...)
		c.closeAfter = true
	} else if c.http10 {
		dst = append(dst, "Connection: keep-alive\r\n"...)
	}
	dst = append(dst, '\r', '\n')
	if !c.reqHead {
		dst = append(dst, body...)
	}
	*c.out = dst
	c.rawDone = true
}
