package proxy

import (
	"errors"
	"io"

	"github.com/valyala/fasthttp"
)

// maxPooledBody is the largest small-body buffer a pooled exchange keeps.
const maxPooledBody = 64 << 10

// errBodyLimit ends a streamed request body that grew past max_body_bytes.
var errBodyLimit = errors.New("proxy: request body too large")

// settleRequestBody readies the request body for forwarding when the listener
// streams bodies (limits.stream_request_bytes). A body whose declared length is at
// most the listener's threshold is read whole into the pooled exchange, so the
// request keeps today's shape: retries can resend it and the cache sees it whole. A
// longer one, or a chunked one, stays a stream that forward sends once, behind a
// limiter that stops it at maxBytes. A declared length above maxBytes is refused
// with 413 before anything is read. It reports false when it has already answered;
// the limiter it returns (nil when the body is whole) says afterwards whether the
// body was cut.
//
// The limiter wraps fasthttp's request stream, which the server owns and drains
// after the handler returns; nothing here outlives the handler.
func (s *Server) settleRequestBody(ctx *fasthttp.RequestCtx, ex *exchange, maxBytes int) (*bodyLimiter, bool) {
	req := &ctx.Request
	if !req.IsBodyStream() {
		if len(req.Body()) > maxBytes {
			writeError(ctx, fasthttp.StatusRequestEntityTooLarge, "request body too large")
			return nil, false
		}
		return nil, true
	}
	n := req.Header.ContentLength()
	if n > maxBytes {
		// The unread body would have to be drained to keep the connection.
		ctx.SetConnectionClose()
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, "request body too large")
		return nil, false
	}
	if n >= 0 && n <= s.streamRequestAbove {
		if cap(ex.body) < n {
			ex.body = make([]byte, n, max(n, 4096))
		}
		ex.body = ex.body[:n]
		if _, err := io.ReadFull(req.BodyStream(), ex.body); err != nil {
			ctx.SetConnectionClose()
			writeError(ctx, fasthttp.StatusBadRequest, "incomplete request body")
			return nil, false
		}
		req.SetBody(ex.body)
		return nil, true
	}
	l := &bodyLimiter{r: req.BodyStream(), left: int64(maxBytes)}
	req.SetBodyStream(l, n)
	return l, true
}

// bodyLimiter passes a streamed request body on until it exceeds the limit, then
// fails the read, which aborts the upload to the origin.
type bodyLimiter struct {
	r        io.Reader
	left     int64
	exceeded bool
	// clientErr is set when reading the client's body failed (a framing error, a
	// reset, a timeout): the try that carried it failed because of the client, so
	// forward must not count it against the origin's health.
	clientErr bool
}

// clientFault reports whether the streamed request body failed on the client's
// side; a nil limiter (no streamed body) never did.
func (l *bodyLimiter) clientFault() bool { return l != nil && (l.exceeded || l.clientErr) }

func (l *bodyLimiter) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// At the limit: the body is fine only if nothing follows.
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			l.exceeded = true
			return 0, errBodyLimit
		}
		if err == nil {
			err = io.EOF
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if err != nil && err != io.EOF {
		l.clientErr = true
	}
	return n, err
}

// settleStream decides what happens to a response read with StreamBody. A body of
// known length up to above is read whole now, so the small answers that make up
// nearly all traffic are handled as when nothing streams and the origin connection
// goes back to the pool at once. A larger one, or a chunked one of unknown length,
// stays a stream: fasthttp's writer copies it to the client after the handler
// returned and then closes it, which releases the origin connection, so memory is
// bounded by buffer sizes instead of body sizes. A declared length above maxBytes
// is refused as before. A stream of unknown length is not cut at maxBytes: it costs
// no memory, and cutting it would only turn a valid answer into a truncated one.
func settleStream(resp *fasthttp.Response, above, maxBytes int) error {
	if !resp.IsBodyStream() {
		return nil
	}
	n := resp.Header.ContentLength()
	switch {
	case n >= 0 && n > maxBytes:
		_ = resp.CloseBodyStream()
		return fasthttp.ErrBodyTooLarge
	case n >= 0 && n <= above:
		// Body drains the stream and closes it; on a read error it stores the
		// error text instead, so a length mismatch is how a cut body shows.
		if len(resp.Body()) != n {
			resp.ResetBody()
			return ErrResponseTruncated
		}
	}
	return nil
}
