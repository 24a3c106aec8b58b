package cache

import (
	"encoding/binary"
	"strconv"
	"time"

	"github.com/redis/rueidis"
	"github.com/valyala/fasthttp"
)

// Read-your-writes tokens.
//
// The edge that relays a write applies its own tag bumps and deletions to
// its local table at once, but every other edge learns of them only from
// Redis' asynchronous invalidation push, a fraction of a millisecond to a
// few milliseconds later. A client that wrote through edge A and reads
// through edge B inside that gap would see the old entry. So the write's
// answer carries a short-lived token, and a request that carries it back
// makes the edge check what it is about to serve against Redis itself
// (one round trip, bypassing the client-side cache) instead of trusting
// its local copies. Requests without a token keep the zero-round-trip
// local path, and the token never reaches a cache key, a Vary variant, a
// stored entry or the origin.
const (
	// CookieReadYourWrites carries the token for browsers: the deadline in
	// unix milliseconds, set on every successful write's answer.
	CookieReadYourWrites = "novashop_rv"
	// HeaderReadYourWrites carries the same token for API clients, which
	// copy it from the write's answer into their next requests.
	HeaderReadYourWrites = "Novashop-RV"

	// maxTokenDigits bounds a token: unix milliseconds need 13 digits
	// until the year 2286; anything longer is garbage.
	maxTokenDigits = 15
	// entryIdentityLen is the prefix of an encoded entry that identifies
	// one fill: kind, format, flags, options, status, reqTime and
	// respTime (see encodeEntry).
	entryIdentityLen = 4 + 2 + 8 + 8
	// varyIdentityLen is the prefix of an encoded vary index up to and
	// including its generation (see encodeVaryIndex).
	varyIdentityLen = 4 + 8
)

// parseToken reads a token value: 1 to maxTokenDigits ASCII digits and
// nothing else (no sign, space or quotes), the deadline in unix
// milliseconds. Anything else is not a token and is ignored.
func parseToken(b []byte) (deadlineMs int64, ok bool) {
	if len(b) == 0 || len(b) > maxTokenDigits {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		deadlineMs = deadlineMs*10 + int64(c-'0')
	}
	return deadlineMs, true
}

// tokenLive reports whether v is a token whose deadline is still ahead of
// now (unix ns). A deadline further ahead than twice the window is not one
// this edge's peers issued (their clocks may differ by up to one window)
// and is ignored, so a forged token cannot buy a client a permanent
// Redis round trip per request.
func (c *Cache) tokenLive(v []byte, now int64) bool {
	w := c.cfg.ReadYourWritesWindow
	if w <= 0 {
		return false
	}
	d, ok := parseToken(v)
	if !ok {
		return false
	}
	nowMs := now / int64(time.Millisecond)
	return d > nowMs && d-nowMs <= 2*w.Milliseconds()
}

// takeToken reports whether the request carries a live token (header or
// cookie) and removes both from it, so the token changes neither the
// request's Vary variant nor what the origin sees. For requests without a
// token it allocates nothing.
func (c *Cache) takeToken(rh *fasthttp.RequestHeader, now int64) bool {
	hv := rh.Peek(HeaderReadYourWrites)
	cv := rh.Cookie(CookieReadYourWrites)
	if len(hv) == 0 && len(cv) == 0 {
		return false
	}
	live := c.tokenLive(hv, now) || c.tokenLive(cv, now)
	if len(hv) > 0 {
		rh.Del(HeaderReadYourWrites)
	}
	if len(cv) > 0 {
		rh.DelCookie(CookieReadYourWrites)
	}
	return live
}

// issueToken adds the token to the answer of a write that changed what
// the cache may serve: Set-Cookie (RFC 6265 section 4.1; HttpOnly since
// scripts have no use for it, SameSite=Lax like the access cookie) and the
// Novashop-RV header with the same value. Writes are never stored, so the
// cookie never reaches an entry.
func (c *Cache) issueToken(ctx *fasthttp.RequestCtx) {
	w := c.cfg.ReadYourWritesWindow
	if w <= 0 {
		return
	}
	var buf [24]byte
	v := strconv.AppendInt(buf[:0], c.cfg.Now().Add(w).UnixMilli(), 10)
	ck := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(ck)
	ck.SetKey(CookieReadYourWrites)
	ck.SetValueBytes(v)
	ck.SetPath("/")
	ck.SetMaxAge(int((w + time.Second - 1) / time.Second))
	ck.SetHTTPOnly(true)
	ck.SetSameSite(fasthttp.CookieSameSiteLaxMode)
	ctx.Response.Header.SetCookie(ck)
	ctx.Response.Header.SetBytesV(HeaderReadYourWrites, v)
}

// verifyInRedis is tagsCurrent for a request with a live token: instead of
// the locally held tag versions (which another edge's bump reaches only
// with Redis' push), it reads from Redis itself, in one round trip without
// the client-side cache, the identity of the entry under key (so a
// deletion or replacement by another edge's write counts), of the vary
// index under the primary key when there is one, and the current version
// of every tag the entry recorded. It reports whether all of them still
// match. Versions it read are offered to the local table (under tickets,
// so a concurrent push wins), which makes this edge stop serving a bumped
// entry to everyone, not just to the token's holder. When the vary index
// changed it clears lk.vary.
func (c *Cache) verifyInRedis(key []byte, primary int, lk *lookupResult, tick int64) (bool, error) {
	e := lk.e
	cli, err := c.t.cli()
	if err != nil {
		return false, err
	}
	entryKey := string(key)
	cmds := make([]rueidis.Completed, 0, 2+len(e.tags))
	cmds = append(cmds, cli.B().Getrange().Key(entryKey).Start(0).End(entryIdentityLen-1).Build())
	if lk.vary != nil {
		cmds = append(cmds, cli.B().Getrange().Key(string(key[:primary])).Start(0).End(varyIdentityLen-1).Build())
	}
	tagsAt := len(cmds)
	tks := make([]ticket, len(e.tags))
	for i := range e.tags {
		tks[i] = c.local.begin(e.tags[i].key)
		cmds = append(cmds, cli.B().Get().Key(e.tags[i].key).Build())
	}
	res, err := c.t.do(cmds...)
	if err != nil {
		return false, err
	}
	current := true
	if b, err := res[0].AsBytes(); err != nil || !sameEntry(b, e) {
		current = false
		c.local.invalidate(entryKey)
	}
	if lk.vary != nil {
		if b, err := res[1].AsBytes(); err != nil || !sameVaryIndex(b, lk.vary) {
			current = false
			c.local.invalidate(string(key[:primary]))
			lk.vary = nil // a fill must write a new index, not reuse this one
		}
	}
	for i := range e.tags {
		tv := &e.tags[i]
		v, err := versionOf(res[tagsAt+i])
		if err != nil {
			current = false
			continue
		}
		if v != tv.version {
			current = false
		}
		if r := c.local.getString(tv.key, tick); r == nil || r.version != v {
			c.local.insert(tv.key, &record{isTag: true, version: v, size: int64(len(tv.key)) + 96}, tks[i], tick)
		}
	}
	if current {
		c.m.rvCurrent.Inc()
	} else {
		c.m.rvChanged.Inc()
	}
	return current, nil
}

// versionOf reads a tag version reply: missing is 0, anything but an
// integer is an error.
func versionOf(r rueidis.RedisResult) (int64, error) {
	s, err := r.ToString()
	if rueidis.IsRedisNil(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(s, 10, 64)
}

// sameEntry reports whether b, the first entryIdentityLen bytes of the
// value stored under an entry's key, is that same fill of e. The flags
// byte is left out: a soft purge flips it in place without replacing the
// response.
func sameEntry(b []byte, e *entry) bool {
	if len(b) != entryIdentityLen || b[0] != kindEntry || b[1] != formatVersion || b[3] != e.opts {
		return false
	}
	return binary.BigEndian.Uint16(b[4:]) == uint16(e.status) &&
		int64(binary.BigEndian.Uint64(b[6:])) == e.reqTime &&
		int64(binary.BigEndian.Uint64(b[14:])) == e.respTime
}

// sameVaryIndex reports whether b, the first varyIdentityLen bytes under a
// primary key, is a vary index of v's generation.
func sameVaryIndex(b []byte, v *varyIndex) bool {
	return len(b) == varyIdentityLen && b[0] == kindVaryIndex && b[1] == formatVersion &&
		binary.BigEndian.Uint64(b[4:]) == v.gen
}
