package cache

import (
	"time"

	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/cachekeys"
)

// respInfo is what the storage and freshness rules read from a response.
type respInfo struct {
	status int
	// cc holds the directives in force for this cache: the edge's own
	// targeted field (cachekeys.HeaderEdgeCacheControl), else
	// CDN-Cache-Control (RFC 9213 section 2.1), else Cache-Control.
	cc     directives
	hasCDN bool
	// Unix seconds; 0 when absent. expiresBad marks an Expires that is
	// present but not an HTTP-date, which means "already expired" (RFC 9111
	// section 5.3).
	expires, date, lastModified int64
	expiresBad                  bool
	setCookie                   bool
	hasValidator                bool
}

// readRespInfo fills ri from a response's status and fields; peek returns a
// field's first value (nil when absent).
func readRespInfo(status int, peek func(name string) []byte, setCookie bool, ri *respInfo) {
	*ri = respInfo{status: status, setCookie: setCookie}
	ri.cc.reset()
	if v := peek(cachekeys.HeaderEdgeCacheControl); len(v) > 0 {
		ri.hasCDN = true
		parseDirectives(v, &ri.cc)
	} else if v := peek(HeaderCDNCacheControl); len(v) > 0 {
		ri.hasCDN = true
		parseDirectives(v, &ri.cc)
	} else {
		parseDirectives(peek(fasthttp.HeaderCacheControl), &ri.cc)
	}
	if v := peek(fasthttp.HeaderExpires); len(v) > 0 {
		if t, err := fasthttp.ParseHTTPDate(v); err == nil {
			ri.expires = t.Unix()
		} else {
			ri.expiresBad = true
		}
	}
	ri.date = httpDate(peek(fasthttp.HeaderDate))
	ri.lastModified = httpDate(peek(fasthttp.HeaderLastModified))
	ri.hasValidator = len(peek(fasthttp.HeaderETag)) > 0 || ri.lastModified != 0
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

// understoodStatus lists what this cache stores at all (RFC 9111 section 3:
// "the response status code is final and understood"). 206 is excluded
// because the cache fills with full requests and answers ranges itself; 304
// only ever updates a stored response.
func understoodStatus(s int) bool {
	return heuristicStatus(s) && s != 206 || s == 302 || s == 307
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
	case !understoodStatus(ri.status):
		return reasonStatus // section 3: final and understood status
	case reqNoStore:
		return reasonReqNoStore // section 5.2.1.5
	case ri.cc.noStore:
		return reasonNoStore // section 5.2.2.5
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
	// Section 3: at least one of public, s-maxage, max-age, Expires, or a
	// heuristically cacheable status.
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
	// Section 4.2.2: heuristics only without explicit expiration, for a
	// heuristically cacheable status or a response marked public.
	if heuristicMax < 0 || ri.lastModified == 0 || !(heuristicStatus(ri.status) || ri.cc.public) {
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
