package cache

import (
	"bytes"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/cachekeys"
)

// respInfo is what the storage and freshness rules read from a response.
type respInfo struct {
	status int
	// cc holds the directives in force for this cache: the edge's own
	// targeted field (cachekeys.HeaderEdgeCacheControl), else a valid
	// CDN-Cache-Control (RFC 9213 section 2.1), else Cache-Control. Every
	// field line counts: lines of one field are one comma-separated list
	// (RFC 9110 section 5.3).
	cc     directives
	hasCDN bool
	// Unix seconds; 0 when absent. expiresBad marks an Expires that is
	// present but not one valid HTTP-date (several lines, or a value
	// parseHTTPDate refuses), which means "already expired" (RFC 9111
	// section 5.3).
	expires, date, lastModified int64
	expiresBad                  bool
	// ageValue is the Age field in seconds; ageBad marks one that is not a
	// single delta-seconds (see readAge).
	ageValue     int64
	ageBad       bool
	setCookie    bool
	hasValidator bool
}

// fieldLines calls visit with each line of the field called name (lower
// case), in order.
type fieldLines func(name string, visit func(v []byte))

// respLines reads a fasthttp response header.
func respLines(h *fasthttp.ResponseHeader) fieldLines {
	return func(name string, visit func(v []byte)) {
		for k, v := range h.All() {
			if eqFold(k, name) {
				visit(v)
			}
		}
	}
}

// kvLines reads stored fields.
func kvLines(fields []kv) fieldLines {
	return func(name string, visit func(v []byte)) {
		for i := range fields {
			if eqFold(fields[i].k, name) {
				visit(fields[i].v)
			}
		}
	}
}

// first returns the first line of a field, or nil.
func (f fieldLines) first(name string) []byte {
	var out []byte
	found := false
	f(name, func(v []byte) {
		if !found {
			out, found = v, true
		}
	})
	return out
}

// joined returns all lines of a field joined with ", " (RFC 9110 section
// 5.3) and how many lines there were.
func (f fieldLines) joined(name string) ([]byte, int) {
	var out []byte
	n := 0
	f(name, func(v []byte) {
		if n > 0 {
			out = append(out, ", "...)
		}
		out = append(out, v...)
		n++
	})
	return out, n
}

var (
	edgeCCName = strings.ToLower(cachekeys.HeaderEdgeCacheControl)
	cdnCCName  = strings.ToLower(HeaderCDNCacheControl)
)

// readRespInfo fills ri from a response's status and fields.
func readRespInfo(status int, fields fieldLines, setCookie bool, ri *respInfo) {
	*ri = respInfo{status: status, setCookie: setCookie}
	ri.cc.reset()
	lines := 0
	fields(edgeCCName, func(v []byte) { lines++; parseDirectives(v, &ri.cc) })
	if lines > 0 {
		ri.hasCDN = true
	} else if v, n := fields.joined(cdnCCName); n > 0 && parseTargetedDirectives(v, &ri.cc) {
		ri.hasCDN = true
	} else {
		// Not there, or not a valid Structured Field: ignored entirely
		// (RFC 9213 section 2.1), so start over from Cache-Control.
		ri.cc.reset()
		fields("cache-control", func(v []byte) { parseDirectives(v, &ri.cc) })
	}
	if v, n := fields.joined("expires"); n > 0 {
		if t, ok := parseHTTPDate(trimOWS(v)); ok && n == 1 {
			ri.expires = t
			if t == 0 {
				ri.expiresBad = true // the epoch itself is as good as expired
			}
		} else {
			ri.expiresBad = true
		}
	}
	if v, n := fields.joined("age"); n > 0 {
		ri.ageValue, ri.ageBad = readAge(v)
	}
	ri.date = httpDate(fields.first("date"))
	ri.lastModified = httpDate(fields.first("last-modified"))
	ri.hasValidator = len(fields.first("etag")) > 0 || ri.lastModified != 0
}

// readAge reads an Age value, all its lines joined (RFC 9111 section 5.1).
// The field is a singleton delta-seconds; the section asks for a list's
// first member and for an invalid value to be ignored, but a list or an
// invalid value says some cache on the way is broken, and reading it as 0
// would serve an answer of unknown age as fresh. So anything but one
// delta-seconds reports bad, a list that repeats one value ("0, 0", or two
// "Age: 0" lines) included, and the answer is treated as stale (lifetime
// 0): served only after revalidation. (Until issue 14 a repeated value was
// read as that value; the http-cache-tests suite, and the issue, call any
// list stale.)
func readAge(v []byte) (int64, bool) {
	if bytes.IndexByte(v, ',') >= 0 {
		return 0, true
	}
	first := trimOWS(v)
	if len(first) == 0 {
		return 0, true
	}
	var n int64
	for _, c := range first {
		if c < '0' || c > '9' {
			return 0, true
		}
		if n < maxDelta {
			n = n*10 + int64(c-'0')
		}
	}
	return min(n, maxDelta), false
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// hasSetCookie reports whether any Set-Cookie line is present; fasthttp keeps
// them apart from the other fields.
func hasSetCookie(h *fasthttp.ResponseHeader) bool {
	for range h.Cookies() {
		return true
	}
	return false
}

func httpDate(v []byte) int64 {
	if len(v) == 0 {
		return 0
	}
	t, err := fasthttp.ParseHTTPDate(v)
	if err != nil {
		return 0
	}
	return t.Unix()
}

// heuristicStatus lists the status codes that are heuristically cacheable
// (RFC 9110 section 15.1).
func heuristicStatus(s int) bool {
	switch s {
	case 200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

// understoodStatus lists the final status codes whose caching rules this
// cache implements, for must-understand (RFC 9111 section 5.2.2.3): the
// codes RFC 9110 section 15 defines, whose caching is the generic one,
// except 206 (the cache fills with full requests and answers ranges
// itself) and 304 (it only ever updates a stored response).
func understoodStatus(s int) bool {
	switch {
	case s >= 200 && s <= 205, s >= 300 && s <= 303, s == 305, s == 307, s == 308,
		s >= 400 && s <= 417, s == 421, s == 422, s == 426, s >= 500 && s <= 505:
		return true
	}
	return false
}

// Reasons a response is not stored, reported in Cache-Status detail.
const (
	reasonStatus     = "status"
	reasonNoStore    = "no-store"
	reasonPrivate    = "private"
	reasonAuth       = "authorization"
	reasonSetCookie  = "set-cookie"
	reasonNoFresh    = "no-freshness"
	reasonVaryStar   = "vary-star"
	reasonTooBig     = "too-big"
	reasonReqNoStore = "request-no-store"
)

// storable applies RFC 9111 section 3 for a shared cache to a response to a
// GET. personal is true when the request carried credentials (Authorization
// or the novashop_access cookie). It returns "" when the response may be
// stored, else the reason it may not.
func storable(ri *respInfo, personal, reqNoStore bool) string {
	switch {
	case ri.status < 200 || ri.status > 999:
		return reasonStatus // section 3: final status only; an interim 1xx never
	case ri.status == 206 || ri.status == 304:
		return reasonStatus // section 3: ranges are cut by the cache; 304 only updates
	case ri.cc.mustUnderstand && !understoodStatus(ri.status):
		return reasonStatus // section 5.2.2.3
	case reqNoStore:
		return reasonReqNoStore // section 5.2.1.5
	case ri.cc.noStore && !ri.cc.mustUnderstand:
		// Section 5.2.2.5; section 5.2.2.3 has a cache that understands the
		// status ignore no-store when must-understand is present.
		return reasonNoStore
	case ri.cc.private:
		return reasonPrivate // section 5.2.2.7: shared caches never store private
	case personal && !ri.cc.public && ri.cc.sMaxAge < 0:
		// Section 3.5 also allows must-revalidate; this cache is stricter,
		// since a must-revalidate personal page is still personal.
		return reasonAuth
	case ri.setCookie:
		// Section 7.3 ("privacy"): a Set-Cookie answer is per visitor.
		return reasonSetCookie
	}
	// Section 3: any final status, with at least one of public, s-maxage,
	// max-age, Expires, or a heuristically cacheable status.
	if !ri.cc.public && ri.cc.sMaxAge < 0 && ri.cc.maxAge < 0 && ri.expires == 0 && !ri.expiresBad && !heuristicStatus(ri.status) {
		return reasonNoFresh
	}
	return ""
}

// freshnessLifetime applies RFC 9111 section 4.2.1 (with RFC 9213 section
// 2.1: CDN-Cache-Control replaces Cache-Control and Expires for this cache)
// and section 4.2.2 for heuristic freshness. respTime is when the response
// arrived (unix seconds), used when Date is missing.
func freshnessLifetime(ri *respInfo, respTime int64, heuristicMax time.Duration) (lifetime time.Duration, heuristic bool) {
	switch {
	case ri.cc.sMaxAge >= 0:
		return time.Duration(ri.cc.sMaxAge) * time.Second, false
	case ri.cc.maxAge >= 0:
		return time.Duration(ri.cc.maxAge) * time.Second, false
	case !ri.hasCDN && ri.expiresBad:
		return 0, false
	case !ri.hasCDN && ri.expires != 0:
		date := ri.date
		if date == 0 {
			date = respTime
		}
		if ri.expires <= date {
			return 0, false
		}
		return time.Duration(ri.expires-date) * time.Second, false
	}
	// Section 4.2.2: heuristics only without explicit expiration, and here
	// only for a heuristically cacheable status (RFC 9110 section 15.1).
	// The section would also allow them for any response marked public;
	// this cache does not, so a public 201 or 500 without a lifetime is
	// never served without revalidation.
	if heuristicMax < 0 || ri.lastModified == 0 || !heuristicStatus(ri.status) {
		return 0, false
	}
	date := ri.date
	if date == 0 {
		date = respTime
	}
	if date <= ri.lastModified {
		return 0, true
	}
	h := time.Duration(date-ri.lastModified) * time.Second / 10
	if h > heuristicMax {
		h = heuristicMax
	}
	return h, true
}

// currentAge is RFC 9111 section 4.2.3 in nanoseconds: ageValue and date in
// seconds (date 0 when absent), the request, response and current times in
// unix nanoseconds.
func currentAge(ageValue, date, reqTime, respTime, now int64) time.Duration {
	apparent := int64(0)
	if date != 0 {
		if a := respTime - date*1e9; a > 0 {
			apparent = a
		}
	}
	delay := respTime - reqTime
	if delay < 0 {
		delay = 0
	}
	correctedAgeValue := ageValue*1e9 + delay
	initial := max(apparent, correctedAgeValue)
	resident := now - respTime
	if resident < 0 {
		resident = 0
	}
	return time.Duration(initial + resident)
}
