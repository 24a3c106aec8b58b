package cache

import (
	"bytes"
	"strconv"
	"time"

	"github.com/novashop/edge/proxy/internal/nodate"
	"github.com/valyala/fasthttp"
)

// A hit served by the event-loop core can skip fasthttp's ResponseHeader
// altogether: the stored answer's header section up to its per-hit fields is
// the same bytes on every hit, so it is serialized once per entry (wirePlan)
// and copied straight into the connection's output, followed by Age and
// Cache-Status (TryServeLocalRaw) and the fields the edge and the loop add
// per request (X-Request-Id, Connection). Copying the stored fields into a
// ResponseHeader and serializing it again was about a sixth of the CPU of a
// hit (docs/io-core.md).
//
// The block is made by the very calls the ResponseHeader path makes
// (writeFields, then fasthttp's own serializer), so its bytes are that path's
// by construction; per hit only fields that fasthttp writes after every stored
// field are appended, in the order the ResponseHeader path sets them.
// TestRawHitMatchesResponsePath (here) and TestEventLoopRawHitsMatch (in
// package proxy, over the socket) compare the two byte for byte.

// RawHit says what TryServeLocalRaw did.
type RawHit uint8

const (
	// RawMiss: not answerable from the local tier; nothing was written.
	RawMiss RawHit = iota
	// RawAnswered: a hit written into ctx.Response, as TryServeLocal does
	// (an answer the raw path does not cover: a range, a stored 404, ...).
	RawAnswered
	// RawWritten: a hit whose head, up to and including Cache-Status, was
	// appended to dst; ctx.Response holds only its status code.
	RawWritten
)

// wirePlan is an entry's pre-serialized header block, made on its first raw
// hit and kept with it (an entry's fields never change once it is built).
type wirePlan struct {
	// ok is false for an entry the raw path does not serve (see
	// makeWirePlan); its hits take the ResponseHeader path.
	ok bool
	// ok200 and ok304 are the status line and stored fields of the full
	// answer (with its Content-Length) and of a 304 to a conditional
	// request, each without the blank line that ends the header section.
	ok200, ok304 []byte
}

// wirePlan returns e's header blocks, made on the first call.
func (e *entry) wirePlan() *wirePlan {
	if p := e.wire.Load(); p != nil {
		return p
	}
	p := makeWirePlan(e)
	e.wire.Store(p)
	return p
}

// makeWirePlan serializes e's head as the ResponseHeader path would: the
// stored fields copied by writeFields into an empty response, then
// fasthttp's serializer with the flags the edge's servers set (no default
// Content-Type, no default Date). Entries whose serialization would put
// something after the stored fields (cookies, trailers, Connection), that
// carry a field the hit sets itself (Age, Cache-Status, X-Request-Id,
// Content-Range) or one the edge drops later (Cache-Tag), that have no Date
// (the edge would add one per hit) or no body (HEAD's Content-Length would
// differ), or whose status is not 200, are left to that path.
func makeWirePlan(e *entry) *wirePlan {
	p := &wirePlan{}
	if e.status != fasthttp.StatusOK || len(e.body) == 0 {
		return p
	}
	var r fasthttp.Response
	r.Header.SetNoDefaultContentType(true)
	setNoDefaultDate(&r.Header)
	writeFields(&r, e, fasthttp.StatusOK, e.hitPlan())
	h := &r.Header
	if h.ConnectionClose() || len(h.Peek(fasthttp.HeaderDate)) == 0 {
		return p
	}
	for _, k := range [...]string{fasthttp.HeaderAge, HeaderCacheStatus, "X-Request-Id", fasthttp.HeaderContentRange,
		fasthttp.HeaderConnection, fasthttp.HeaderTrailer, fasthttp.HeaderTransferEncoding, "Cache-Tag", fasthttp.HeaderSetCookie} {
		if h.Peek(k) != nil {
			return p
		}
	}
	for range h.Cookies() {
		return p
	}
	h.SetContentLength(len(e.body))
	ok200 := h.AppendBytes(nil)
	// The ResponseHeader path never sets a 304's Content-Length (there is no
	// body to measure): a fresh header for it.
	var r304 fasthttp.Response
	r304.Header.SetNoDefaultContentType(true)
	setNoDefaultDate(&r304.Header)
	writeFields(&r304, e, fasthttp.StatusNotModified, e.hitPlan())
	ok304 := r304.Header.AppendBytes(nil)
	// Both end with the blank line, which the caller writes after its own
	// fields.
	if !bytes.HasSuffix(ok200, crlfCRLF) || !bytes.HasSuffix(ok304, crlfCRLF) {
		return p
	}
	p.ok200, p.ok304 = ok200[:len(ok200)-2], ok304[:len(ok304)-2]
	p.ok = true
	return p
}

var crlfCRLF = []byte("\r\n\r\n")

// TryServeLocalRaw is TryServeLocal for a core that writes answers itself
// (the event loop). On a hit the raw path covers it appends to dst the
// answer's status line and every field up to Cache-Status, each ending in
// CRLF, sets ctx.Response's status code (for metrics and the access log) and
// returns the body to send after the caller's own fields and the blank line:
// RawWritten. A HEAD request gets the same head (the caller sends no body);
// a conditional request that the entry satisfies gets the 304's, and a nil
// body. Any other hit is written into ctx.Response as TryServeLocal does
// (RawAnswered); a request the local tier cannot answer writes nothing
// (RawMiss). It allocates nothing once the entry's plan is made.
func (c *Cache) TryServeLocalRaw(ctx *fasthttp.RequestCtx, dst []byte) (out, body []byte, res RawHit) {
	return c.TryServeLocalRawFor(ctx, dst, nil)
}

// VaryPreparer completes a request's fields before a Vary lookup reads
// them. The edge leaves X-Forwarded-For and X-Forwarded-Proto unset on a
// request it may answer as a raw hit (a hit never sends them on); an entry
// that varies on one of them must still be looked up with the value the
// origin saw, so the raw path asks for them first.
type VaryPreparer interface {
	PrepareVary(ctx *fasthttp.RequestCtx)
}

// TryServeLocalRawFor is TryServeLocalRaw with prep (nil: none) called
// before an entry's Vary lookup.
func (c *Cache) TryServeLocalRawFor(ctx *fasthttp.RequestCtx, dst []byte, prep VaryPreparer) (out, body []byte, res RawHit) {
	defer func() {
		if r := recover(); r != nil {
			ctx.Response.Reset()
			out, body, res = dst, nil, RawMiss
		}
	}()
	hr := scanHitRequest(&ctx.Request.Header)
	hr.prep = prep
	e, age, ok := c.localHit(ctx, &hr)
	if !ok {
		return dst, nil, RawMiss
	}
	c.countHit(ctx)
	return c.writeRaw(ctx, e, age, &hr, dst)
}

// writeRaw is TryServeLocalRaw once the entry is found: the raw head when
// the entry's plan and the request allow it, else writeEntry.
func (c *Cache) writeRaw(ctx *fasthttp.RequestCtx, e *entry, age time.Duration, hr *hitRequest, dst []byte) (out, body []byte, res RawHit) {
	var p *wirePlan
	if !c.noHitPlan && e.status == fasthttp.StatusOK && len(hr.rng) == 0 {
		p = e.wirePlan()
	}
	if p == nil || !p.ok {
		c.writeEntry(ctx, e, age, c.statusHit)
		return dst, nil, RawAnswered
	}
	status, block, body := fasthttp.StatusOK, p.ok200, e.body
	if notModifiedBy(hr.inm, hr.ims, e) {
		status, block, body = fasthttp.StatusNotModified, p.ok304, nil
	}
	out = appendHitFields(append(dst, block...), age, c.statusHit)
	ctx.Response.SetStatusCode(status)
	return out, body, RawWritten
}

// appendHitFields appends Age and Cache-Status as writeEntry sets them
// (after every stored field, which never holds either: see makeWirePlan).
func appendHitFields(dst []byte, age time.Duration, cacheStatus []byte) []byte {
	secs := int64(age / time.Second)
	if secs < 0 {
		secs = 0
	}
	dst = append(dst, "Age: "...)
	dst = strconv.AppendInt(dst, secs, 10)
	dst = append(dst, "\r\n"...)
	dst = append(dst, HeaderCacheStatus...)
	dst = append(dst, ": "...)
	dst = append(dst, cacheStatus...)
	return append(dst, "\r\n"...)
}

// setNoDefaultDate: see proxy/internal/nodate.
func setNoDefaultDate(h *fasthttp.ResponseHeader) { nodate.Set(h) }
