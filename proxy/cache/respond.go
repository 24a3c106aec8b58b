package cache

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/cachekeys"
)

// edgeCCLower is cachekeys.HeaderEdgeCacheControl in lower case, for eqFold.
var edgeCCLower = strings.ToLower(cachekeys.HeaderEdgeCacheControl)

// Canonical field names writeEntry sets with SetCanonical, which skips the
// key normalisation SetBytesV does on every call.
var (
	keyAge         = []byte(fasthttp.HeaderAge)
	keyCacheStatus = []byte(HeaderCacheStatus)
)

// fieldMode says how writeEntry copies one stored field into an answer.
type fieldMode uint8

const (
	// fieldAdd: AddBytesKV (normalises the key, appends).
	fieldAdd fieldMode = iota
	// fieldSkip: never sent (the edge's own Cache-Control).
	fieldSkip
	// fieldDate: the stored Date (SetDate).
	fieldDate
	// fieldDateFresh: the stored Date into a response that holds no Date
	// and announces no trailers yet (setDateFresh, which skips the checks).
	fieldDateFresh
	// fieldCanonical: the key is in fasthttp's canonical form, the first
	// of its name in the entry and not one whose Set and Add differ
	// (Trailer), so into a response with no fields yet SetCanonical stores
	// exactly what AddBytesKV would, without normalising the key again.
	fieldCanonical
)

// hitPlan returns, per stored field, how a hit copies it: worked out on the
// first hit and kept with the entry (its fields never change once it is
// built), so later hits neither normalise keys nor compare names.
func (e *entry) hitPlan() []fieldMode {
	if p := e.plan.Load(); p != nil {
		return *p
	}
	plan := make([]fieldMode, len(e.header))
	fresh := true // no Date or Trailer copied yet: setDateFresh is enough
	for i := range e.header {
		k := e.header[i].k
		switch {
		case eqFold(k, edgeCCLower):
			plan[i] = fieldSkip
			continue
		case eqFold(k, "date"):
			plan[i] = fieldDateFresh
			if !fresh {
				plan[i] = fieldDate
			}
			fresh = false
			continue
		case eqFold(k, "trailer"):
			fresh = false
			continue
		}
		first := true
		for j := 0; j < i; j++ {
			if bytes.EqualFold(e.header[j].k, k) {
				first = false
				break
			}
		}
		if first && isCanonicalKey(k) {
			plan[i] = fieldCanonical
		}
	}
	e.plan.Store(&plan)
	return plan
}

// isCanonicalKey reports whether k is a name of letters, digits and '-' in
// the form fasthttp's key normalisation gives (upper case at the start and
// after each '-', lower case elsewhere), so normalising it changes nothing.
// Any other byte makes it false: such a key keeps the AddBytesKV path.
func isCanonicalKey(k []byte) bool {
	upper := true
	for _, c := range k {
		switch {
		case 'a' <= c && c <= 'z':
			if upper {
				return false
			}
		case 'A' <= c && c <= 'Z':
			if !upper {
				return false
			}
		case '0' <= c && c <= '9', c == '-':
		default:
			return false
		}
		upper = c == '-'
	}
	return len(k) > 0
}

// writeEntry writes a stored (or just fetched) response into ctx.Response:
// status, stored fields, Age (RFC 9111 section 5.1), Cache-Status, and the
// body, answering the client's own conditional request (section 4.3.2) and
// single byte range (RFC 9110 section 14) from it. On a hit it allocates
// nothing once the response's buffers are warm.
func (c *Cache) writeEntry(ctx *fasthttp.RequestCtx, e *entry, age time.Duration, cacheStatus []byte) {
	r := &ctx.Response
	rh := &ctx.Request.Header
	status := e.status
	var body []byte = e.body
	var rangeStart, rangeEnd int // inclusive, when status is 206
	if status == fasthttp.StatusOK {
		if notModified(rh, e) {
			status, body = fasthttp.StatusNotModified, nil
		} else if rs := rh.Peek(fasthttp.HeaderRange); len(rs) > 0 && ifRangeMatches(rh, e) {
			switch a, b, ok := parseRange(rs, len(e.body)); {
			case ok && a < 0:
				status, body = fasthttp.StatusRequestedRangeNotSatisfiable, nil
			case ok:
				status, body = fasthttp.StatusPartialContent, e.body[a:b+1]
				rangeStart, rangeEnd = a, b
			}
		}
	}
	r.Header.SetNoDefaultContentType(true)
	// A response nothing has written a field into yet takes the stored
	// fields through the cheaper calls the entry's plan allows (hitPlan);
	// otherwise each goes through AddBytesKV, which keeps fields set
	// before (by admit) next to same-named stored ones.
	var plan []fieldMode
	if !c.noHitPlan && r.Header.Len() == 0 {
		plan = e.hitPlan()
	}
	writeFields(r, e, status, plan)
	var buf [64]byte
	secs := int64(age / time.Second)
	if secs < 0 {
		secs = 0
	}
	r.Header.SetCanonical(keyAge, strconv.AppendInt(buf[:0], secs, 10))
	r.Header.SetCanonical(keyCacheStatus, cacheStatus)
	// Only a range cut here from a stored 200 gets a Content-Range of ours; an
	// origin's own 206, relayed, keeps the one it came with.
	switch ranged := e.status == fasthttp.StatusOK; {
	case ranged && status == fasthttp.StatusPartialContent:
		b := append(buf[:0], "bytes "...)
		b = strconv.AppendInt(b, int64(rangeStart), 10)
		b = append(b, '-')
		b = strconv.AppendInt(b, int64(rangeEnd), 10)
		b = append(b, '/')
		b = strconv.AppendInt(b, int64(len(e.body)), 10)
		r.Header.SetBytesV(fasthttp.HeaderContentRange, b)
	case ranged && status == fasthttp.StatusRequestedRangeNotSatisfiable:
		b := append(buf[:0], "bytes */"...)
		b = strconv.AppendInt(b, int64(len(e.body)), 10)
		r.Header.SetBytesV(fasthttp.HeaderContentRange, b)
	}
	if status == fasthttp.StatusNotModified {
		r.ResetBody()
	} else if e.borrowed {
		r.SetBody(body)
	} else {
		// No copy: a stored entry's body is never written after the entry
		// is decoded, and the response drops its reference when fasthttp
		// resets it after the write, so a 13 KB page costs no memmove per
		// hit. The garbage collector keeps an evicted entry's body alive
		// until then.
		r.SetBodyRaw(body)
	}
	if rh.IsHead() {
		r.SkipBody = true
	}
}

// writeFields sets r's status and copies e's stored fields into r.Header:
// by plan (hitPlan) when r held no field before, else (plan nil) each
// through AddBytesKV and SetDate, comparing names on every call.
func writeFields(r *fasthttp.Response, e *entry, status int, plan []fieldMode) {
	r.SetStatusCode(status)
	for i := range e.header {
		h := &e.header[i]
		mode := fieldAdd
		if plan != nil {
			mode = plan[i]
		} else if eqFold(h.k, edgeCCLower) {
			mode = fieldSkip
		} else if eqFold(h.k, "date") {
			mode = fieldDate
		}
		switch mode {
		case fieldSkip:
			// The edge's own Cache-Control is stored (a 304 that omits it
			// must keep it, RFC 9111 section 4.3.4) but never sent.
		case fieldDate:
			// The stored Date goes out unchanged (RFC 9110 section 6.6.1);
			// Age says how long the answer has been stored.
			SetDate(&r.Header, h.v)
		case fieldDateFresh:
			setDateFresh(&r.Header, h.v)
		case fieldCanonical:
			r.Header.SetCanonical(h.k, h.v)
		default:
			r.Header.AddBytesKV(h.k, h.v)
		}
	}
}

// notModified evaluates If-None-Match, else If-Modified-Since, against a
// stored 200 (RFC 9111 section 4.3.2 with RFC 9110 sections 13.1.2, 13.1.3
// and 13.2.2: If-None-Match takes precedence and uses weak comparison).
func notModified(rh *fasthttp.RequestHeader, e *entry) bool {
	return notModifiedBy(rh.Peek(fasthttp.HeaderIfNoneMatch), rh.Peek(fasthttp.HeaderIfModifiedSince), e)
}

// notModifiedBy is notModified on the two fields' values (the first of each).
func notModifiedBy(inm, ims []byte, e *entry) bool {
	if len(inm) > 0 {
		return e.etag != nil && etagListMatches(inm, e.etag, false)
	}
	if len(ims) == 0 {
		return false
	}
	t := httpDate(ims)
	if t == 0 {
		return false // an invalid date is ignored (RFC 9110 section 13.1.3)
	}
	lm := e.lastMod
	if lm == 0 {
		lm = e.date // section 4.3.2: Date when there is no Last-Modified
	}
	if lm == 0 {
		return false
	}
	return lm <= t
}

// ifRangeMatches applies If-Range (RFC 9110 section 13.1.5): a strong
// entity-tag must match exactly, a date must equal Last-Modified.
func ifRangeMatches(rh *fasthttp.RequestHeader, e *entry) bool {
	ir := rh.Peek(fasthttp.HeaderIfRange)
	if len(ir) == 0 {
		return true
	}
	if ir[0] == '"' {
		return e.etag != nil && e.etag[0] == '"' && bytes.Equal(ir, e.etag)
	}
	if bytes.HasPrefix(ir, []byte("W/")) {
		return false
	}
	t := httpDate(ir)
	return t != 0 && e.lastMod != 0 && t == e.lastMod
}

// etagListMatches reports whether the If-None-Match list contains tag
// ("*" matches anything). Weak comparison ignores the W/ prefix.
func etagListMatches(list, tag []byte, strong bool) bool {
	if bytes.Equal(bytes.TrimSpace(list), []byte("*")) {
		return true
	}
	if !strong {
		tag = bytes.TrimPrefix(tag, []byte("W/"))
	}
	for len(list) > 0 {
		i := bytes.IndexByte(list, ',')
		var item []byte
		if i < 0 {
			item, list = list, nil
		} else {
			item, list = list[:i], list[i+1:]
		}
		item = bytes.TrimSpace(item)
		if !strong {
			item = bytes.TrimPrefix(item, []byte("W/"))
		}
		if len(item) > 0 && bytes.Equal(item, tag) {
			return true
		}
	}
	return false
}

// parseRange parses a single-range "bytes=" Range value (RFC 9110 section
// 14.1.2) against a representation of size n. ok false means "ignore the
// Range field" (bad syntax, other unit, several ranges: section 14.2 lets a
// server answer 200 then). ok with a < 0 means unsatisfiable (416).
func parseRange(v []byte, n int) (a, b int, ok bool) {
	const unit = "bytes="
	if len(v) < len(unit) || !eqFold(v[:len(unit)], unit) {
		return 0, 0, false
	}
	v = bytes.TrimSpace(v[len(unit):])
	if bytes.IndexByte(v, ',') >= 0 {
		return 0, 0, false
	}
	dash := bytes.IndexByte(v, '-')
	if dash < 0 {
		return 0, 0, false
	}
	first, last := bytes.TrimSpace(v[:dash]), bytes.TrimSpace(v[dash+1:])
	if len(first) == 0 {
		// Suffix range: the last N bytes.
		suffix, good := parseDigits(last)
		if !good {
			return 0, 0, false
		}
		if suffix == 0 || n == 0 {
			return -1, -1, true
		}
		if suffix > n {
			suffix = n
		}
		return n - suffix, n - 1, true
	}
	start, good := parseDigits(first)
	if !good {
		return 0, 0, false
	}
	end := n - 1
	if len(last) > 0 {
		e, good := parseDigits(last)
		if !good || e < start {
			return 0, 0, false
		}
		if e < end {
			end = e
		}
	}
	if start >= n {
		return -1, -1, true
	}
	return start, end, true
}

func parseDigits(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// SetDate sets a response's Date field to v. fasthttp drops a Date set
// through Set or Add ("managed automatically": it writes the current time
// instead, or nothing when the server has NoDefaultDate), except in the
// trailer section; announcing Date as a trailer, adding the value and
// withdrawing the announcement moves the value into the header section,
// where a server with NoDefaultDate writes it as is. A cache must forward
// the stored Date, so the edge's server runs with NoDefaultDate and sets
// Date itself where an answer has none. It allocates nothing. A response
// that already announces trailers keeps its header unchanged (the trick
// would disturb the announced set; such answers are streamed, never
// stored); so does one reset since the server set NoDefaultDate, which
// gets fasthttp's current Date.
func SetDate(h *fasthttp.ResponseHeader, v []byte) {
	if len(h.Peek(fasthttp.HeaderTrailer)) > 0 {
		return
	}
	h.Del(fasthttp.HeaderDate)
	setDateFresh(h, v)
}

// setDateFresh is SetDate for a response known to hold neither a Date nor
// announced trailers (writeEntry's, when no field was set before it).
func setDateFresh(h *fasthttp.ResponseHeader, v []byte) {
	if h.SetTrailer(fasthttp.HeaderDate) != nil {
		return
	}
	h.AddBytesV(fasthttp.HeaderDate, v)
	_ = h.SetTrailer("")
}
