package cache

import (
	"strings"
	"time"

	"github.com/novashop/edge/cachekeys"
	"github.com/novashop/edge/proxy/internal/stripe"
	"github.com/valyala/fasthttp"
)

// TryServeLocal answers ctx from the local tier alone, when that needs nothing
// that can wait: a GET or HEAD without a read-your-writes token, Redis reachable,
// the entry (and its Vary variant) in the local table, every tag version it
// depends on held locally and current, and the entry fresh for this request. It
// then writes the same answer Serve would (a hit) and reports true. Otherwise it
// writes nothing and reports false, and the caller runs Serve, which may block
// on Redis or the origins. The event-loop core calls it on its loop, where
// nothing may block.
func (c *Cache) TryServeLocal(ctx *fasthttp.RequestCtx) (served bool) {
	defer func() {
		if r := recover(); r != nil {
			// Serve's own recovery answers; here the request just takes the
			// slow path, which will meet the same problem and report it.
			ctx.Response.Reset()
			served = false
		}
	}()
	hr := scanHitRequest(&ctx.Request.Header)
	e, age, ok := c.localHit(ctx, &hr)
	if !ok {
		return false
	}
	c.countHit(ctx)
	c.writeEntry(ctx, e, age, c.statusHit)
	return true
}

// localHit finds the entry TryServeLocal (and TryServeLocalRaw) may answer
// ctx with, and its age; ok false when the local tier alone cannot answer.
func (c *Cache) localHit(ctx *fasthttp.RequestCtx, hr *hitRequest) (e *entry, age time.Duration, ok bool) {
	rh := &ctx.Request.Header
	m := rh.Method()
	if string(m) != fasthttp.MethodGet && string(m) != fasthttp.MethodHead {
		return nil, 0, false
	}
	if len(hr.ryw) > 0 || len(rh.Cookie(CookieReadYourWrites)) > 0 {
		return nil, 0, false
	}
	if !c.t.ok() {
		return nil, 0, false
	}
	var rc directives
	rc.reset()
	if v := hr.cc; len(v) > 0 {
		parseDirectives(v, &rc)
	}
	now := c.hitNow(ctx)
	tick := now >> 30
	bp := c.bufs.Get().(*[]byte)
	kb := append((*bp)[:0], c.cfg.Namespace...)
	defer func() { *bp = kb[:0]; c.bufs.Put(bp) }()
	kb, err := cachekeys.AppendKey(kb, m, rh.Host(), rh.RequestURI())
	if err != nil {
		return nil, 0, false
	}
	// The loops look up one hot entry at once: each reads (and counts,
	// countHit) on its own stripe.
	sh := stripe.Hint(ctx)
	r := c.local.getFor(sh, kb, tick)
	if r == nil {
		return nil, 0, false
	}
	e = r.e
	if r.vary != nil {
		if hr.prep != nil {
			hr.prep.PrepareVary(ctx)
		}
		kb = r.vary.appendVariantKey(kb, rh)
		vr := c.local.getFor(sh, kb, tick)
		if vr == nil {
			return nil, 0, false
		}
		e = vr.e
	}
	if e == nil {
		return nil, 0, false
	}
	for i := range e.tags {
		tv := &e.tags[i]
		tr := c.local.getStringFor(sh, tv.key, tick)
		if tr == nil || tr.version != tv.version {
			return nil, 0, false
		}
	}
	age = e.age(now)
	if judge(e, age, &rc) != useFresh {
		return nil, 0, false
	}
	return e, age, true
}

// hitRequest holds the request fields a local hit reads, each the first of
// its name as Peek would return it, found in one pass over the header: a
// Peek normalises its key into a buffer on every call, and five of them
// were about 4 % of a hit's CPU on the event loop.
type hitRequest struct {
	ryw, cc, inm, ims, rng []byte
	// prep, when set, completes the request before a Vary lookup (see
	// VaryPreparer).
	prep VaryPreparer
}

// Lower-case names for eqFold.
var (
	rywLower = strings.ToLower(HeaderReadYourWrites)
	ccLower  = strings.ToLower(fasthttp.HeaderCacheControl)
	inmLower = strings.ToLower(fasthttp.HeaderIfNoneMatch)
	imsLower = strings.ToLower(fasthttp.HeaderIfModifiedSince)
)

func scanHitRequest(rh *fasthttp.RequestHeader) (r hitRequest) {
	var seen uint8
	take := func(bit uint8, dst *[]byte, v []byte) {
		if seen&bit == 0 {
			seen |= bit
			*dst = v
		}
	}
	for k, v := range rh.All() {
		switch len(k) {
		case len("range"):
			if eqFold(k, "range") {
				take(1, &r.rng, v)
			}
		case len(ccLower): // and If-None-Match, as long
			if eqFold(k, ccLower) {
				take(2, &r.cc, v)
			} else if eqFold(k, inmLower) {
				take(4, &r.inm, v)
			}
		case len(imsLower):
			if eqFold(k, imsLower) {
				take(8, &r.ims, v)
			}
		case len(rywLower):
			if eqFold(k, rywLower) {
				take(16, &r.ryw, v)
			}
		}
	}
	return r
}
