package server

import (
	"bytes"
	"strconv"

	"github.com/cespare/xxhash/v2"
	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/origin/api"
)

// conditional gives shared (public) 200 answers a strong validator and
// answers a matching If-None-Match with 304 Not Modified (RFC 9110 §8.8.3,
// §13.1.2). Catalog reads say max-age=0, so browsers and caches revalidate
// often; this makes a revalidation cost headers instead of the full body.
// The tag is a hash of the body, so every origin instance computes the same
// one for the same bytes.
func conditional(ctx *fasthttp.RequestCtx) {
	if ctx.Response.StatusCode() != fasthttp.StatusOK ||
		!bytes.Equal(ctx.Response.Header.Peek(fasthttp.HeaderCacheControl), []byte(api.CacheControlPublic)) {
		return
	}
	m := ctx.Method()
	if !bytes.Equal(m, []byte(fasthttp.MethodGet)) && !bytes.Equal(m, []byte(fasthttp.MethodHead)) {
		return
	}
	var buf [24]byte
	b := append(buf[:0], '"')
	b = strconv.AppendUint(b, xxhash.Sum64(ctx.Response.Body()), 36)
	b = append(b, '"')
	ctx.Response.Header.SetBytesV(fasthttp.HeaderETag, b)
	if inm := ctx.Request.Header.Peek(fasthttp.HeaderIfNoneMatch); len(inm) > 0 && etagMatches(inm, b) {
		ctx.Response.SetStatusCode(fasthttp.StatusNotModified)
		ctx.Response.ResetBody()
	}
}

// etagMatches implements If-None-Match's weak comparison over a list
// (RFC 9110 §13.1.2): "*" matches, W/ prefixes are ignored.
func etagMatches(header, etag []byte) bool {
	for len(header) > 0 {
		var item []byte
		if i := bytes.IndexByte(header, ','); i >= 0 {
			item, header = header[:i], header[i+1:]
		} else {
			item, header = header, nil
		}
		item = bytes.TrimSpace(item)
		item = bytes.TrimPrefix(item, []byte("W/"))
		if bytes.Equal(item, []byte("*")) || bytes.Equal(item, etag) {
			return true
		}
	}
	return false
}
