package proxy

import (
	"time"

	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/proxy/cache"
)

// ensureDate gives an answer without Date one for now (RFC 9110 section
// 6.6.1). The public server runs with NoDefaultDate, so that a cached answer
// keeps the Date it was stored with (fasthttp would otherwise write the
// current time over it); answers the edge makes itself get theirs here. A
// response that was reset on the way (fasthttp's client resets the one it
// fills) has fasthttp's default Date again, and the value set here is then
// not written. scratch is reused for the value, so
// nothing is allocated; it returns scratch for the next use.
func ensureDate(h *fasthttp.ResponseHeader, now time.Time, scratch []byte) []byte {
	if len(h.Peek(fasthttp.HeaderDate)) > 0 {
		return scratch
	}
	scratch = fasthttp.AppendHTTPDate(scratch[:0], now)
	cache.SetDate(h, scratch)
	return scratch
}

// ensureDateNow is ensureDate for paths without a request clock (fasthttp's
// parse-error handler).
func ensureDateNow(h *fasthttp.ResponseHeader) { ensureDate(h, time.Now(), nil) }
