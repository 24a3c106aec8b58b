package cache

import (
	"errors"
	"math/rand/v2"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/redis/rueidis"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/novashop/edge/cachekeys"
)

// Header and cookie names this package reads or writes.
const (
	// HeaderCacheStatus is RFC 9211's Cache-Status, set on every answer.
	HeaderCacheStatus = "Cache-Status"
	// HeaderCDNCacheControl is RFC 9213's targeted field; when present it
	// replaces Cache-Control and Expires for this cache.
	HeaderCDNCacheControl = "CDN-Cache-Control"
	// CookieAccess is the storefront's access-token cookie; like
	// Authorization it marks a request as personal.
	CookieAccess = "novashop_access"
)

// FetchFunc is the shape of the function Serve is given: it forwards req to
// an origin and fills resp; an error means no origin answered.
type FetchFunc = func(req *fasthttp.Request, resp *fasthttp.Response) error

// Cache is the edge's shared HTTP cache. It is safe for concurrent use.
type Cache struct {
	cfg Config
	// noHitPlan makes writeEntry copy stored fields the old way only
	// (AddBytesKV), for tests that compare it with the hit plan.
	noHitPlan bool
	// realClock: Config.Now was not set, so a local hit may take the
	// request's start time for its clock (hitNow).
	realClock bool
	log       *zap.Logger
	t         *tier
	local     *localTable

	flights flight // origin fetches, by primary key
	revals  flight // background revalidations, by primary key
	// revalDone remembers when recent background refreshes ended, so a
	// request that read the old copy just before a refresh stored the new
	// one does not start a second refresh.
	revalMu   sync.Mutex
	revalDone map[string]int64

	m           *cacheMetrics
	bufs        sync.Pool // *[]byte key buffers
	statusHit   []byte
	statusHitRV []byte
	bg          sync.WaitGroup
	bgDone      chan struct{}
	closeOnce   sync.Once
}

// New builds a Cache. It fails only on an invalid configuration: when Redis
// is unreachable it logs once, returns a Cache that passes every request
// straight through, and starts caching by itself once Redis answers.
func New(cfg Config, log *zap.Logger) (*Cache, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	realClock := cfg.Now == nil
	cfg = cfg.withDefaults()
	if _, err := clientOption(cfg); err != nil {
		return nil, err
	}
	localBytes := max(cfg.MaxMemoryBytes-rueidisCacheBytes, 1<<19)
	c := &Cache{
		cfg:       cfg,
		realClock: realClock,
		log:       log,
		local:     newLocalTable(localBytes),
		statusHit: []byte(cfg.Name + "; hit"),
		// A hit checked against Redis for a read-your-writes token.
		statusHitRV: []byte(cfg.Name + "; hit; detail=rv-checked"),
		bgDone:      make(chan struct{}),
	}
	c.bufs.New = func() any { b := make([]byte, 0, 512); return &b }
	c.m = newCacheMetrics(c)
	c.t = newTier(cfg, log, c.local)
	return c, nil
}

// Close stops background work and closes the Redis client. Serve must not
// be called afterwards.
func (c *Cache) Close() {
	c.closeOnce.Do(func() {
		close(c.bgDone)
		c.bg.Wait()
		c.t.close()
	})
}

// Available reports whether Redis is reachable (false: pass-through mode).
func (c *Cache) Available() bool { return c.t.ok() }

// LocalBytes reports the memory the decoded entry table accounts for.
func (c *Cache) LocalBytes() int64 { return c.local.bytes() }

func (c *Cache) now() int64 { return c.cfg.Now().UnixNano() }

// hitNow is the clock a local hit reads: the request's start time, which
// the server read a moment before (fasthttp sets it per request; the event
// loop's RequestCtx.Init2 just did), unless a test set Config.Now or the
// server keeps no request time. A second clock read was ~1 % of a raw
// hit's CPU; the Age it gives is the same to the second but at a boundary.
func (c *Cache) hitNow(ctx *fasthttp.RequestCtx) int64 {
	if c.realClock {
		if t := ctx.Time(); !t.IsZero() {
			return t.UnixNano()
		}
	}
	return c.now()
}

// Serve answers ctx from the cache when it may; otherwise it calls fetch,
// stores the answer if a shared cache may, and writes the final answer into
// ctx.Response with Cache-Status and Age and without Cache-Tag. Unsafe
// methods are forwarded, then invalidate the target URI, Location and
// Content-Location and bump the tags listed in Cache-Invalidate; their
// successful answers carry a read-your-writes token (token.go), and a
// request that brings a live one back has its entry checked against Redis
// before it is served.
//
// fetch may be called after Serve returned (background revalidation for
// stale-while-revalidate and soft purges), so it must use only its
// arguments, never ctx.
func (c *Cache) Serve(ctx *fasthttp.RequestCtx, fetch func(req *fasthttp.Request, resp *fasthttp.Response) error) {
	c.ServeSplit(ctx, fetch, fetch)
}

// ServeSplit is Serve with two fetch functions: fetch serves the request in
// hand and is called only before ServeSplit returns, on the caller's
// goroutine, so it may write into per-request state the caller pools (the
// edge notes there which origin answered, for its access log); background is
// the one a background revalidation takes, which may run after ServeSplit
// returned and the caller reused that state, so it must use only its
// arguments. A hit calls neither; a request answered by another request's
// fill (coalesced) calls neither either.
func (c *Cache) ServeSplit(ctx *fasthttp.RequestCtx, fetch, background FetchFunc) {
	defer c.recoverServe(ctx)
	now := c.now()
	// A live read-your-writes token (token.go) makes this request check
	// its entry against Redis itself instead of the local copies.
	strict := c.takeToken(&ctx.Request.Header, now)
	m := ctx.Request.Header.Method()
	head := string(m) == fasthttp.MethodHead
	if !head && string(m) != fasthttp.MethodGet {
		c.serveOther(ctx, fetch)
		return
	}
	if !c.t.ok() {
		c.pass(ctx, fetch, "fwd=bypass; detail=redis-unavailable")
		return
	}
	var rc directives
	rc.reset()
	if v := ctx.Request.Header.Peek(fasthttp.HeaderCacheControl); len(v) > 0 {
		parseDirectives(v, &rc)
	}
	personal := len(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)) > 0 ||
		len(ctx.Request.Header.Cookie(CookieAccess)) > 0

	bp := c.bufs.Get().(*[]byte)
	kb := append((*bp)[:0], c.cfg.Namespace...)
	kb, err := cachekeys.AppendKey(kb, m, ctx.Request.Header.Host(), ctx.Request.Header.RequestURI())
	defer func() { *bp = kb[:0]; c.bufs.Put(bp) }()
	if err != nil {
		c.pass(ctx, fetch, "fwd=bypass; detail=bad-key")
		return
	}
	primary := len(kb)
	tick := now >> 30

	lk := c.lookup(kb, &ctx.Request.Header, tick)
	kb = lk.key
	if lk.err != nil {
		c.pass(ctx, fetch, "fwd=bypass; detail=redis-unavailable")
		return
	}
	f := fillReq{head: head, personal: personal, reqNoStore: rc.noStore, vary: lk.vary, fwd: lk.fwd, strict: strict}
	if e := lk.e; e != nil {
		var tagsOK bool
		if strict {
			tagsOK, err = c.verifyInRedis(kb, primary, &lk, tick)
			f.vary = lk.vary // nil when Redis no longer holds that index
		} else {
			tagsOK, err = c.tagsCurrent(e, tick)
		}
		if err != nil && !c.t.ok() {
			c.pass(ctx, fetch, "fwd=bypass; detail=redis-unavailable")
			return
		}
		f.stale, f.fwd = e, "stale"
		if !tagsOK {
			// RFC 9111 section 4.4 spirit: an invalidated entry is never
			// served, not even stale; it may still validate a 304.
			f.detail = "invalidated"
		} else {
			f.staleServable = true
			age := e.age(now)
			switch judge(e, age, &rc) {
			case useFresh:
				c.m.hit.Inc()
				st := c.statusHit
				if strict {
					st = c.statusHitRV
				}
				c.writeEntry(ctx, e, age, st)
				return
			case useMaxStale:
				c.m.stale.Inc()
				c.writeEntry(ctx, e, age, c.status("hit; detail=max-stale"))
				return
			case useStaleRevalidate:
				c.m.stale.Inc()
				detail := "hit; detail=stale-while-revalidate"
				if e.softPurged() {
					detail = "hit; detail=soft-purged"
				}
				c.writeEntry(ctx, e, age, c.status(detail))
				c.revalidateInBackground(&ctx.Request, background, kb[:primary], e, lk.vary, kb)
				return
			case revalidateForRequest:
				f.fwd = "request"
			}
		}
	}
	if rc.onlyIfCached {
		// RFC 9111 section 5.2.1.7: nothing usable, so 504.
		writeError(ctx, fasthttp.StatusGatewayTimeout, "only-if-cached: no usable stored response")
		ctx.Response.Header.Set(HeaderCacheStatus, c.cfg.Name+"; fwd="+f.fwd+"; detail=only-if-cached")
		return
	}
	c.fill(ctx, fetch, &f, kb, primary)
}

// verdict is what judge decides for a stored, uninvalidated entry.
type verdict int

const (
	useFresh verdict = iota
	useMaxStale
	useStaleRevalidate
	revalidateForRequest
	revalidateStale
)

func secs(n int64) time.Duration { return time.Duration(n) * time.Second }

// judge applies the request's and the stored response's directives to an
// entry of the given current age.
func judge(e *entry, age time.Duration, rc *directives) verdict {
	if rc.noCache {
		return revalidateForRequest // RFC 9111 section 5.2.1.4
	}
	if rc.maxAge >= 0 && age > secs(rc.maxAge) {
		return revalidateForRequest // section 5.2.1.1
	}
	fresh := age < e.lifetime && !e.noCache() && !e.softPurged()
	if fresh {
		if rc.minFresh >= 0 && e.lifetime-age < secs(rc.minFresh) {
			return revalidateForRequest // section 5.2.1.3
		}
		return useFresh // section 4.2
	}
	if e.noCache() || e.mustRevalidate() {
		// Sections 5.2.2.4 (no-cache), 5.2.2.2 (must-revalidate) and
		// 5.2.2.8 (proxy-revalidate): never serve stale.
		return revalidateStale
	}
	staleFor := age - e.lifetime
	if rc.maxStaleAny || (rc.maxStale >= 0 && staleFor <= secs(rc.maxStale)) {
		return useMaxStale // sections 5.2.1.2 and 4.2.4
	}
	if e.softPurged() || staleFor < e.swr {
		return useStaleRevalidate // RFC 5861 section 3; soft purge
	}
	return revalidateStale
}

// servableOnError decides whether the stale entry e, of the given age, may
// answer a request whose forward failed, and returns the Cache-Status detail
// ("" when it may not). unreachable means no origin answered (the fetch
// failed: refused, reset, timed out, or no upstream available); an origin's
// own 5xx is an answer. RFC 9111 section 4.2.4 never allows it for
// must-revalidate, proxy-revalidate or no-cache answers (sections 5.2.2.2,
// 5.2.2.8, 5.2.2.4). The answer's stale-if-error (RFC 5861 section 4), when
// present, is the bound in both cases; otherwise, when no origin answered,
// Config.StaleOnError is, unless s-maxage forbids serving stale (section
// 5.2.2.10).
func (c *Cache) servableOnError(e *entry, age time.Duration, unreachable bool) string {
	if e.mustRevalidate() || e.noCache() {
		return ""
	}
	staleFor := age - e.lifetime
	switch {
	case e.softPurged() || (e.hasSIE() || e.sie > 0) && staleFor < e.sie:
		return "stale-if-error"
	case e.hasSIE() || e.sie > 0:
		return ""
	case unreachable && staleFor < c.onErrorGrace(e):
		return "stale-on-error"
	}
	return ""
}

// onErrorGrace is how long past expiry e may be served when no origin can
// be reached and e has no stale-if-error of its own: Config.StaleOnError,
// or 0 when e forbids serving stale.
func (c *Cache) onErrorGrace(e *entry) time.Duration {
	if c.cfg.StaleOnError <= 0 || e.mustRevalidate() || e.noCache() || e.sMaxAge() {
		return 0
	}
	return c.cfg.StaleOnError
}

// errorGrace is how long past expiry e may be served on an error, which
// the stored copy must outlive: its stale-if-error, else the stale-on-error
// grace. An answer that was never fresh (lifetime 0) gets no grace: keeping
// every max-age=0 answer for a minute only for outages would cost a Redis
// write per request for pages that are never reused.
func (c *Cache) errorGrace(e *entry) time.Duration {
	if e.hasSIE() || e.sie > 0 {
		return e.sie
	}
	if e.lifetime <= 0 {
		return 0
	}
	return c.onErrorGrace(e)
}

// lookupResult is what lookup found: an entry, or which kind of miss.
type lookupResult struct {
	e    *entry
	vary *varyIndex
	key  []byte
	fwd  string
	err  error
}

// lookup finds the entry for the primary key in kb, following a vary
// index to the request's variant (kb grows by the variant suffix).
func (c *Cache) lookup(kb []byte, rh *fasthttp.RequestHeader, tick int64) lookupResult {
	r, err := c.record(kb, tick)
	if err != nil {
		return lookupResult{key: kb, err: err}
	}
	if r == nil {
		return lookupResult{key: kb, fwd: "uri-miss"}
	}
	if r.vary == nil {
		return lookupResult{key: kb, e: r.e}
	}
	kb = r.vary.appendVariantKey(kb, rh)
	vr, err := c.record(kb, tick)
	if err != nil {
		return lookupResult{key: kb, err: err}
	}
	if vr == nil || vr.e == nil {
		return lookupResult{key: kb, vary: r.vary, fwd: "vary-miss"}
	}
	return lookupResult{key: kb, vary: r.vary, e: vr.e}
}

// record reads key from the local table, then Redis.
func (c *Cache) record(kb []byte, tick int64) (*record, error) {
	if r := c.local.get(kb, tick); r != nil {
		return r, nil
	}
	key := string(kb)
	tk := c.local.begin(key)
	b, err := c.t.get(key)
	if err != nil || b == nil {
		return nil, err
	}
	e, v, err := decodeRecord(b)
	if err != nil {
		if ce := c.log.Check(zap.DebugLevel, "cache: ignoring undecodable value"); ce != nil {
			ce.Write(zap.ByteString("key", kb), zap.Error(err))
		}
		return nil, nil
	}
	r := &record{e: e, vary: v, size: int64(len(b)) + int64(len(key)) + 128}
	c.local.insert(key, r, tk, tick)
	return r, nil
}

// tagsCurrent reports whether every tag version e recorded is still the
// current one. A version that cannot be read counts as changed.
func (c *Cache) tagsCurrent(e *entry, tick int64) (bool, error) {
	var missing []string
	for i := range e.tags {
		tv := &e.tags[i]
		r := c.local.getString(tv.key, tick)
		if r == nil {
			missing = append(missing, tv.key)
			continue
		}
		if r.version != tv.version {
			return false, nil
		}
	}
	if len(missing) == 0 {
		return true, nil
	}
	cur, err := c.readTagVersions(missing, tick)
	if err != nil {
		return false, err
	}
	for i, k := range missing {
		for j := range e.tags {
			if e.tags[j].key == k && e.tags[j].version != cur[i] {
				return false, nil
			}
		}
	}
	return true, nil
}

// readTagVersions reads versions from Redis and keeps them locally.
func (c *Cache) readTagVersions(keys []string, tick int64) ([]int64, error) {
	tks := make([]ticket, len(keys))
	for i, k := range keys {
		tks[i] = c.local.begin(k)
	}
	cur, err := c.t.tagVersions(keys, make([]int64, 0, len(keys)))
	if err != nil {
		return nil, err
	}
	for i, k := range keys {
		c.local.insert(k, &record{isTag: true, version: cur[i], size: int64(len(k)) + 96}, tks[i], tick)
	}
	return cur, nil
}

// localTagVersions returns the versions of tags as this edge holds them,
// and the indexes of the tags it does not hold: those are given version 0,
// a guess that store checks in the same Redis round trip as its SET (see
// store for why a guess is safe).
func (c *Cache) localTagVersions(tags []string, tick int64) (tv []tagVersion, unknown []int) {
	tv = make([]tagVersion, len(tags))
	for i, tag := range tags {
		tv[i] = tagVersion{tag: tag, key: cachekeys.TagVersionKey(tag)}
		if r := c.local.getString(tv[i].key, tick); r != nil {
			tv[i].version = r.version
		} else {
			unknown = append(unknown, i)
		}
	}
	return tv, unknown
}

// status renders a Cache-Status value for this cache.
func (c *Cache) status(params string) []byte {
	return []byte(c.cfg.Name + "; " + params)
}

// recoverServe turns a panic into a 500 with a JSON body and a log line,
// since fasthttp handlers get no recovery of their own.
func (c *Cache) recoverServe(ctx *fasthttp.RequestCtx) {
	if r := recover(); r != nil {
		c.log.Error("cache: panic while serving", zap.Any("panic", r), zap.ByteString("uri", ctx.Request.RequestURI()),
			zap.ByteString("stack", debug.Stack()))
		ctx.Response.Reset()
		writeError(ctx, fasthttp.StatusInternalServerError, "internal cache error")
		ctx.Response.Header.Set(HeaderCacheStatus, c.cfg.Name+"; fwd=bypass; detail=internal-error")
	}
}

// pass forwards the request untouched (Redis down, bad key): the answer is
// the origin's, minus the headers meant for this cache.
func (c *Cache) pass(ctx *fasthttp.RequestCtx, fetch FetchFunc, params string) {
	c.m.bypass.Inc()
	if err := fetch(&ctx.Request, &ctx.Response); err != nil {
		c.originError(ctx, params, err, &ctx.Response)
		return
	}
	stripCacheHeaders(&ctx.Response.Header)
	ctx.Response.Header.Set(HeaderCacheStatus, c.cfg.Name+"; "+params)
}

// originError answers when no origin answered: with the error answer fetch
// left in resp (the edge's JSON 502/503/504), else a JSON 502 of our own.
func (c *Cache) originError(ctx *fasthttp.RequestCtx, params string, err error, resp *fasthttp.Response) {
	if ce := c.log.Check(zap.DebugLevel, "cache: no origin answered"); ce != nil {
		ce.Write(zap.ByteString("uri", ctx.Request.RequestURI()), zap.Error(err))
	}
	if resp != nil && resp.StatusCode() >= 500 && len(resp.Body()) > 0 {
		if resp != &ctx.Response {
			resp.CopyTo(&ctx.Response)
		}
	} else {
		ctx.Response.Reset()
		writeError(ctx, fasthttp.StatusBadGateway, "no origin answered")
	}
	stripCacheHeaders(&ctx.Response.Header)
	ctx.Response.Header.Set(HeaderCacheStatus, c.cfg.Name+"; "+params+"; detail=origin-unreachable")
}

// stripCacheHeaders removes what only this cache may see.
func stripCacheHeaders(h *fasthttp.ResponseHeader) {
	h.Del(cachekeys.HeaderCacheTag)
	h.Del(cachekeys.HeaderInvalidate)
	h.Del(cachekeys.HeaderEdgeCacheControl)
}

// writeError writes a JSON error body.
func writeError(ctx *fasthttp.RequestCtx, status int, msg string) {
	ctx.Response.SetStatusCode(status)
	ctx.Response.Header.SetContentType("application/json")
	ctx.Response.SetBodyString(`{"error":` + strconv.Quote(msg) + `}`)
}

// serveOther forwards a request whose method the cache does not answer
// (RFC 9211 fwd=method) and, for unsafe methods that succeeded, invalidates
// what they changed (RFC 9111 section 4.4).
func (c *Cache) serveOther(ctx *fasthttp.RequestCtx, fetch FetchFunc) {
	if err := fetch(&ctx.Request, &ctx.Response); err != nil {
		c.originError(ctx, "fwd=method", err, &ctx.Response)
		return
	}
	m := string(ctx.Request.Header.Method())
	st := ctx.Response.StatusCode()
	safe := m == fasthttp.MethodOptions || m == fasthttp.MethodTrace
	if !safe && st >= 200 && st < 400 && c.invalidateAfterWrite(ctx) {
		c.issueToken(ctx)
	}
	stripCacheHeaders(&ctx.Response.Header)
	ctx.Response.Header.Set(HeaderCacheStatus, c.cfg.Name+"; fwd=method")
}

// invalidateAfterWrite deletes the entries for the target URI and for
// Location and Content-Location when they name the same host (section 4.4
// forbids trusting other hosts), and bumps the Cache-Invalidate tags. Our
// own bumps are applied to the local table at once, so the next request
// through this edge reads its own write even before Redis' push arrives.
// It reports whether the write changed what an edge may serve: Redis took
// our deletions and bumps, or the origin named tags (which it bumps
// itself), so the client gets a read-your-writes token for other edges.
func (c *Cache) invalidateAfterWrite(ctx *fasthttp.RequestCtx) bool {
	tags := cachekeys.ParseTags(string(ctx.Response.Header.Peek(cachekeys.HeaderInvalidate)))
	if !c.t.ok() {
		// The outage itself was logged once; the origin's own bump (kept
		// in its outbox until Redis has it) still applies.
		if ce := c.log.Check(zap.DebugLevel, "cache: cannot bump invalidation tags, Redis unavailable"); ce != nil && len(tags) > 0 {
			ce.Write(zap.Strings("tags", tags))
		}
		return len(tags) > 0
	}
	host := ctx.Request.Header.Host()
	var keys []string
	add := func(uri []byte) {
		if k, err := cachekeys.AppendKey([]byte(c.cfg.Namespace), []byte(fasthttp.MethodGet), host, uri); err == nil {
			keys = append(keys, string(k))
		}
	}
	add(ctx.Request.Header.RequestURI())
	for _, h := range []string{fasthttp.HeaderLocation, fasthttp.HeaderContentLocation} {
		v := ctx.Response.Header.Peek(h)
		if len(v) == 0 {
			continue
		}
		if v[0] == '/' {
			add(v)
			continue
		}
		var u fasthttp.URI
		if err := u.Parse(nil, v); err == nil && string(u.Host()) == string(host) {
			add(u.RequestURI())
		}
	}
	cli, err := c.t.cli()
	if err != nil {
		return len(tags) > 0
	}
	cmds := make([]rueidis.Completed, 0, len(keys)+len(tags))
	for _, k := range keys {
		cmds = append(cmds, cli.B().Del().Key(k).Build())
	}
	for _, t := range tags {
		cmds = append(cmds, cli.B().Incr().Key(cachekeys.TagVersionKey(t)).Build())
	}
	// Tickets before the INCRs: a push for another bump that lands before
	// our insert makes the insert fail instead of keeping an older version.
	tks := make([]ticket, len(tags))
	for i, t := range tags {
		tks[i] = c.local.begin(cachekeys.TagVersionKey(t))
	}
	res, err := c.t.do(cmds...)
	if err != nil {
		c.log.Warn("cache: invalidation after write failed", zap.Error(err), zap.Strings("tags", tags))
	}
	for _, k := range keys {
		c.local.invalidate(k)
	}
	tick := c.now() >> 30
	for i, t := range tags {
		k := cachekeys.TagVersionKey(t)
		inserted := false
		if err == nil && len(keys)+i < len(res) {
			if v, verr := res[len(keys)+i].AsInt64(); verr == nil {
				inserted = c.local.insert(k, &record{isTag: true, version: v, size: int64(len(k)) + 96}, tks[i], tick)
			}
		}
		if !inserted {
			c.local.invalidate(k)
		}
	}
	return len(tags) > 0 || (err == nil && len(cmds) > 0)
}

// ErrBadPurge is wrapped by Purge errors caused by the request itself
// (map it to HTTP 400).
var ErrBadPurge = errors.New("cache: invalid purge request")

// newGen returns a random vary-index generation.
func newGen() uint64 { return rand.Uint64() }
