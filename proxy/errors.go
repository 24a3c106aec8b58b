package proxy

import (
	"bytes"
	"errors"
	"net"
	"syscall"

	"github.com/novashop/edge/proxy/h1"
	"github.com/novashop/edge/proxy/upstream"
	"github.com/valyala/fasthttp"
)

var (
	// ErrNoUpstream means no host may take the request (empty pool, all down or
	// drained); the client gets 503.
	ErrNoUpstream = errors.New("proxy: no upstream available")
	// ErrUpstreamTimeout means no host answered within the request timeout; 504.
	ErrUpstreamTimeout = errors.New("proxy: upstream timed out")
	// ErrUpstreamFailed means every try failed to get an answer; 502.
	ErrUpstreamFailed = errors.New("proxy: upstream failed")
	// ErrResponseTruncated means an origin's body ended before its Content-Length;
	// the try counts as failed (502, retried when safe).
	ErrResponseTruncated = errors.New("proxy: upstream response truncated")
	// ErrClientBody means the client's streamed request body failed mid-upload
	// (not the origin's fault); the client gets 400 unless a more precise status
	// applies (a framing error's own, or 413 over the body limit).
	ErrClientBody = errors.New("proxy: client request body failed")
	// ErrNoCache means the admin API was asked to purge an edge started without a cache.
	ErrNoCache = errors.New("proxy: no cache configured (start the edge with --redis-url)")
	// ErrInvalidOptions reports an unusable Options or Config given to New or Reload.
	ErrInvalidOptions = errors.New("proxy: invalid options")
)

// errorStatus maps a forwarding error to the status the client sees. It is the one
// place errors become statuses.
func errorStatus(err error) (int, string) {
	// A streamed request body that broke the framing rules (package h1) ended
	// the upload: the client's fault, not the origin's.
	var bad *h1.Error
	switch {
	case errors.As(err, &bad):
		return bad.Status(), bad.Message()
	case errors.Is(err, ErrClientBody):
		return fasthttp.StatusBadRequest, "incomplete request body"
	case errors.Is(err, ErrNoUpstream):
		return fasthttp.StatusServiceUnavailable, "no upstream available"
	case errors.Is(err, ErrUpstreamTimeout), errors.Is(err, fasthttp.ErrTimeout):
		return fasthttp.StatusGatewayTimeout, "upstream timed out"
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return fasthttp.StatusBadGateway, "upstream response too large"
	case errors.Is(err, upstream.ErrHTTP10):
		// RFC 9112 §6.1: the request's transfer coding cannot be forwarded.
		return fasthttp.StatusNotImplemented, "unsupported transfer coding"
	}
	return fasthttp.StatusBadGateway, "no upstream could answer"
}

// neverReached reports whether err proves the request never reached the origin
// (the connection could not be opened), which makes any method safe to retry.
func neverReached(err error) bool {
	if errors.Is(err, fasthttp.ErrDialTimeout) || errors.Is(err, fasthttp.ErrNoFreeConns) ||
		errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// writeError answers status with {"error": msg}; msg must be JSON-safe ASCII without
// quotes or backslashes (every caller passes a constant).
func writeError(ctx *fasthttp.RequestCtx, status int, msg string) {
	ctx.Response.ResetBody()
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	b := ctx.Response.BodyWriter()
	_, _ = b.Write([]byte(`{"error":"`))
	_, _ = b.Write([]byte(msg))
	_, _ = b.Write([]byte(`"}`))
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
