package proxy

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/netip"
	"strconv"

	"github.com/novashop/edge/proxy/internal/stripe"
	"github.com/valyala/fasthttp"
)

// hopHeaders are the hop-by-hop fields of RFC 9110 §7.6.1 (Connection, and the
// fields it names, are removed separately) plus the legacy ones proxies still meet:
// Keep-Alive (RFC 2068 §19.7.1), Proxy-Connection (non-standard, sent by old
// clients), Proxy-Authenticate/Proxy-Authorization (RFC 9110 §11.7), TE, Trailer,
// Transfer-Encoding and Upgrade (RFC 9110 §7.6.1, §7.8). The same list as Go's
// net/http/httputil.
var hopHeaders = []string{
	"Keep-Alive",
	"Proxy-Connection",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// Header names the edge writes.
const (
	headerRequestID      = "X-Request-ID"
	headerForwardedFor   = "X-Forwarded-For"
	headerForwardedProto = "X-Forwarded-Proto"
	headerUserID         = "X-User-ID"
	headerUserRole       = "X-User-Role"
	headerCacheTag       = "Cache-Tag"
	headerRetryAfter     = "Retry-After"
)

// Header names as fasthttp stores them (it normalises names to this form), for the
// hot path's SetCanonical calls, which skip normalising a constant every request.
var (
	keyRequestID      = []byte("X-Request-Id")
	keyForwardedFor   = []byte("X-Forwarded-For")
	keyForwardedProto = []byte("X-Forwarded-Proto")
	valueHTTP         = []byte("http")
	valueHTTPS        = []byte("https")
)

// inbound is what one pass over a request's headers found.
type inbound struct {
	hop          bool // a hop-by-hop field, or Connection: close, is present
	validID      bool // the first X-Request-ID is one the edge keeps
	userID       bool // a client-sent X-User-ID is present
	userRole     bool // a client-sent X-User-Role is present
	forwardedFor bool // an X-Forwarded-For list is present
	expect       bool // a non-empty Expect is present
}

// scanInbound walks the request headers once. It relies on fasthttp's name
// normalisation (the server keeps it on), as isHopName does.
func scanInbound(h *fasthttp.RequestHeader) inbound {
	in := inbound{hop: h.ConnectionClose()}
	seenID := false
	for k, v := range h.All() {
		switch string(k) {
		case "X-Request-Id":
			if !seenID {
				seenID, in.validID = true, validRequestID(v)
			}
		case "X-User-Id":
			in.userID = true
		case "X-User-Role":
			in.userRole = true
		case "X-Forwarded-For":
			in.forwardedFor = true
		case "Expect":
			in.expect = in.expect || len(v) > 0
		default:
			in.hop = in.hop || isHopName(k)
		}
	}
	return in
}

// stripHopRequest removes hop-by-hop fields from a request: first every field the
// Connection header names (RFC 9110 §7.6.1: "a proxy … MUST parse the Connection
// header field … and remove … any header or trailer field(s) … identified"), then
// Connection itself and the fixed list. scratch is reused to copy the names out
// before deleting, because deleting rewrites the buffer Peek returned.
func stripHopRequest(h *fasthttp.RequestHeader, scratch []byte) []byte {
	// Most requests carry no hop-by-hop field: one pass over the headers is cheaper
	// than a dozen deletions that each scan them.
	hop := h.ConnectionClose()
	for k := range h.All() {
		if hop = hop || isHopName(k); hop {
			break
		}
	}
	if !hop {
		return scratch
	}
	scratch = scratch[:0]
	for _, v := range h.PeekAll(fasthttp.HeaderConnection) {
		scratch = append(scratch, v...)
		scratch = append(scratch, ',')
	}
	for name := range connectionTokens(scratch) {
		h.DelBytes(name)
	}
	h.Del(fasthttp.HeaderConnection)
	for _, name := range hopHeaders {
		h.Del(name)
	}
	return scratch
}

// stripHopResponse is stripHopRequest for an origin's response. It is a copy on
// purpose: a generic version over an interface of the two header types' methods
// made the iterator closures escape, and a forwarded GET went from zero to three
// allocations (TestForwardAllocatesNothing catches it).
func stripHopResponse(h *fasthttp.ResponseHeader, scratch []byte) []byte {
	hop := h.ConnectionClose()
	for k := range h.All() {
		if hop = hop || isHopName(k); hop {
			break
		}
	}
	if !hop {
		return scratch
	}
	scratch = scratch[:0]
	for _, v := range h.PeekAll(fasthttp.HeaderConnection) {
		scratch = append(scratch, v...)
		scratch = append(scratch, ',')
	}
	for name := range connectionTokens(scratch) {
		h.DelBytes(name)
	}
	h.Del(fasthttp.HeaderConnection)
	for _, name := range hopHeaders {
		h.Del(name)
	}
	return scratch
}

// isHopName reports whether a (fasthttp-normalised) header name is hop-by-hop.
func isHopName(k []byte) bool {
	switch string(k) {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// connectionTokens yields the comma-separated, space-trimmed tokens of v. "close" and
// "keep-alive" are options, not field names, and are skipped.
func connectionTokens(v []byte) func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(v) > 0 {
			var tok []byte
			if i := bytes.IndexByte(v, ','); i >= 0 {
				tok, v = v[:i], v[i+1:]
			} else {
				tok, v = v, nil
			}
			tok = bytes.TrimSpace(tok)
			if len(tok) == 0 || bytes.EqualFold(tok, []byte("close")) || bytes.EqualFold(tok, []byte("keep-alive")) {
				continue
			}
			if !yield(tok) {
				return
			}
		}
	}
}

// validRequestID reports whether an incoming X-Request-ID may be kept:
// 1 to 128 characters from [A-Za-z0-9._-], so it is safe in logs and headers.
func validRequestID(id []byte) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// idPrefix makes generated request ids unique across edge processes; the
// sequence makes them unique within one, without a random read per request,
// and numbers each event loop's ids from a counter of its own (one shared
// counter's cache line moved between the loops' cores on every request).
var (
	idPrefix = newIDPrefix()
	idSeq    stripe.Sequence
)

func newIDPrefix() []byte {
	var b [6]byte
	_, _ = rand.Read(b[:])
	out := make([]byte, 0, 13)
	out = hex.AppendEncode(out, b[:])
	return append(out, '-')
}

// appendRequestID appends a fresh id such as "9f3a1c0e2b7d-1a2b" to dst.
func appendRequestID(dst []byte) []byte { return appendRequestIDOn(dst, 0) }

// appendRequestIDOn is appendRequestID for a request with stripe hint h.
func appendRequestIDOn(dst []byte, h uint) []byte {
	dst = append(dst, idPrefix...)
	return strconv.AppendUint(dst, idSeq.Next(h), 16)
}

// appendForwardedFor appends the client IP to an existing X-Forwarded-For list
// (the de-facto format: "client, proxy1, proxy2").
func appendForwardedFor(dst, prior []byte, ip net.IP) []byte {
	if len(prior) > 0 {
		dst = append(dst, prior...)
		dst = append(dst, ", "...)
	}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return append(dst, "unknown"...)
	}
	return addr.Unmap().AppendTo(dst)
}
