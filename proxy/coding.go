package proxy

import (
	"github.com/novashop/edge/proxy/evloop"
	"github.com/novashop/edge/proxy/upstream"
	"github.com/valyala/fasthttp"
)

// Transfer codings besides chunked (RFC 9112 §6.1, §7).
//
// A request whose Transfer-Encoding names other codings before a final
// chunked ("gzip, chunked") is valid, and a proxy need not understand a
// transfer coding to forward it. The strict framer (package h1) reads such a
// request as chunked and takes the codings out of the bytes fasthttp reads,
// as it does identity, so the request reaches the handler as plain chunked;
// the codings travel beside it, where only the framer writes them:
// h1.Conn.TransferCodings by request number (the goroutine core, and the
// event-loop core's detached connections), or the loop's user value
// evloop.TransferCodingsKey. codedBody puts them back on the body, and the
// upstream's transport sends "Transfer-Encoding: <codings>, chunked" with the
// body's bytes untouched (upstream.CodedBody). The edge never decodes the
// inner coding, and never forwards such a body as if it were not coded.

// codingsConn is the connection of a request read through h1.Conn (plain, or
// under TLS: framedTLSConn).
type codingsConn interface {
	TransferCodings(n uint64) string
}

// closingConn is a connection read through h1.Conn, which ends after a
// message accepted only through limits.dangerous_framing: tolerate.
type closingConn interface {
	ClosesAfter(n uint64) bool
}

// announceClose sets Connection: close on the answer to the request after
// which h1.Conn ends the connection (h1.Conn.ClosesAfter), so the client is
// told rather than finding the connection closed.
func announceClose(ctx *fasthttp.RequestCtx) {
	if c, ok := ctx.Conn().(closingConn); ok && c.ClosesAfter(ctx.ConnRequestNum()) {
		ctx.SetConnectionClose()
	}
}

// transferCodings returns the codings the request in ctx named before chunked,
// "" for none. Only a chunked request can have any.
func transferCodings(ctx *fasthttp.RequestCtx) string {
	if ctx.Request.Header.ContentLength() != -1 {
		return ""
	}
	if v, ok := ctx.UserValue(evloop.TransferCodingsKey).(string); ok {
		return v
	}
	if c, ok := ctx.Conn().(codingsConn); ok {
		return c.TransferCodings(ctx.ConnRequestNum())
	}
	return ""
}

// codedBody makes the request's body, whole or streamed, an
// upstream.CodedBody when the client sent it in transfer codings besides
// chunked, so that it goes to the origin still coded.
func codedBody(ctx *fasthttp.RequestCtx) {
	codings := transferCodings(ctx)
	if codings == "" {
		return
	}
	req := &ctx.Request
	cb := &upstream.CodedBody{Codings: codings}
	if req.IsBodyStream() {
		cb.R = req.BodyStream()
	} else {
		// Read whole (the event-loop core, limits.stream_request_bytes 0):
		// a copy, since SetBodyStream gives the body's buffer back to
		// fasthttp's pool. Rare, so not pooled.
		cb.R = bytesReader(append([]byte(nil), req.Body()...))
	}
	// SetBodyStream resets the body but not a server's request stream under
	// cb, which fasthttp's server still owns and drains after the handler.
	req.SetBodyStream(cb, -1)
}

// codedUpload is the upload of a request forwarded with a coded body, nil
// for any other.
func codedUpload(req *fasthttp.Request) *upstream.CodedBody {
	cb, _ := req.BodyStream().(*upstream.CodedBody)
	return cb
}
