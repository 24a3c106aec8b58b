package cache

import (
	"bytes"
	"io"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/novashop/edge/cachekeys"
)

// fillReq describes a fetch the cache makes for a GET or HEAD.
type fillReq struct {
	head, personal, reqNoStore bool
	// vary is the vary index found for the primary key, if any.
	vary *varyIndex
	// stale is the stored entry being revalidated (nil on a miss), under
	// staleKey; staleServable is false when its tags were invalidated.
	stale         *entry
	staleKey      string
	staleServable bool
	// fwd is the RFC 9211 fwd reason, detail an extra Cache-Status detail.
	fwd, detail string
	// strict is set for a request with a live read-your-writes token: it
	// never takes a coalesced answer, since a fetch it would wait for may
	// have begun before the client's write was committed.
	strict bool
}

// outcome is how to answer after a fetch.
type outcome struct {
	e      *entry // answer from this entry, else from resp
	status string
	err    error // no origin answered
	// stream: resp's body is still a stream from the origin (larger than
	// the fetch holds, so never stored); it is handed to the client.
	stream bool
}

// fill fetches for a miss or revalidation, coalescing concurrent fetches of
// the same primary key into one.
func (c *Cache) fill(ctx *fasthttp.RequestCtx, fetch FetchFunc, f *fillReq, kb []byte, primary int) {
	pk := string(kb[:primary])
	if f.stale != nil {
		f.staleKey = string(kb)
	}
	cl, leader := c.flights.join(pk)
	if !leader {
		if !f.strict && c.waitForLeader(ctx, cl, kb[:primary]) {
			return
		}
		cl = nil
	} else {
		defer c.flights.finish(pk, cl)
	}
	c.m.miss.Inc()
	resp := fasthttp.AcquireResponse()
	handedOver := false
	defer func() {
		if !handedOver {
			fasthttp.ReleaseResponse(resp)
		}
	}()
	o := c.fetchAndStore(&ctx.Request, resp, fetch, f, kb[:primary], cl)
	switch {
	case o.err != nil:
		c.originError(ctx, o.status, o.err, resp)
	case o.stream:
		c.streamAnswer(ctx, resp, o.status)
		handedOver = true
	case o.e != nil:
		c.writeEntry(ctx, o.e, o.e.age(c.now()), c.status(o.status))
	default:
		resp.CopyTo(&ctx.Response)
		stripCacheHeaders(&ctx.Response.Header)
		if len(ctx.Response.Header.Peek(fasthttp.HeaderAge)) == 0 {
			ctx.Response.Header.Set(fasthttp.HeaderAge, "0")
		}
		ctx.Response.Header.Set(HeaderCacheStatus, c.cfg.Name+"; "+o.status)
	}
}

// streamAnswer hands resp, whose body is still streaming from the origin, to
// the client's answer: fasthttp's writer copies the stream after the handler
// returns and then closes it, which releases resp and the origin connection.
// fasthttp cannot move a body stream from one Response to another without
// closing it, hence the reader that owns resp.
func (c *Cache) streamAnswer(ctx *fasthttp.RequestCtx, resp *fasthttp.Response, status string) {
	r := &ctx.Response
	r.Reset()
	resp.Header.CopyTo(&r.Header)
	r.SetBodyStream(&ownedStream{resp: resp}, resp.Header.ContentLength())
	stripCacheHeaders(&r.Header)
	if len(r.Header.Peek(fasthttp.HeaderAge)) == 0 {
		r.Header.Set(fasthttp.HeaderAge, "0")
	}
	r.Header.Set(HeaderCacheStatus, c.cfg.Name+"; "+status)
	if ctx.Request.Header.IsHead() {
		r.SkipBody = true
	}
}

// ownedStream reads a pooled Response's body stream and, when fasthttp closes
// it after the write (or resets the answer unwritten), closes that stream and
// releases the Response.
type ownedStream struct {
	resp *fasthttp.Response
}

func (s *ownedStream) Read(p []byte) (int, error) {
	if s.resp == nil {
		return 0, io.EOF
	}
	return s.resp.BodyStream().Read(p)
}

func (s *ownedStream) Close() error {
	if s.resp == nil {
		return nil
	}
	err := s.resp.CloseBodyStream()
	fasthttp.ReleaseResponse(s.resp)
	s.resp = nil
	return err
}

// waitForLeader waits for another request's fetch of the same primary key
// and answers with what it stored when that is this request's variant;
// false means this request must fetch for itself.
func (c *Cache) waitForLeader(ctx *fasthttp.RequestCtx, cl *call, primary []byte) bool {
	t := time.NewTimer(c.cfg.CoalesceWait)
	defer t.Stop()
	select {
	case <-cl.done:
	case <-t.C:
		return false
	}
	if cl.e == nil || !sameVariant(cl, primary, &ctx.Request.Header) {
		return false
	}
	c.m.hit.Inc()
	c.writeEntry(ctx, cl.e, cl.e.age(c.now()), c.status("hit; detail=coalesced"))
	return true
}

// sameVariant reports whether the leader's stored entry is the variant this
// follower asked for.
func sameVariant(cl *call, primary []byte, rh *fasthttp.RequestHeader) bool {
	if cl.vary == nil {
		return cl.key == string(primary)
	}
	k := cl.vary.appendVariantKey(append([]byte(nil), primary...), rh)
	return cl.key == string(k)
}

// revalidateInBackground refreshes a stale entry that was just served
// (stale-while-revalidate, soft purge): at most one refresh per key at a
// time, on a copy of the request, since ctx is gone once Serve returns.
func (c *Cache) revalidateInBackground(in *fasthttp.Request, fetch FetchFunc, primary []byte, e *entry, vary *varyIndex, key []byte) {
	pk := string(primary)
	if c.revalidatedSince(pk, e.respTime) {
		// A refresh finished after this copy was fetched: the request
		// that read it raced with that refresh's store.
		return
	}
	cl, ok := c.revals.tryLead(pk)
	if !ok {
		return
	}
	select {
	case <-c.bgDone:
		c.revals.finish(pk, cl)
		return
	default:
	}
	req := fasthttp.AcquireRequest()
	in.CopyTo(req)
	f := fillReq{stale: e, staleKey: string(key), staleServable: true, vary: vary, fwd: "stale",
		head: req.Header.IsHead(), reqNoStore: false,
		personal: len(req.Header.Peek(fasthttp.HeaderAuthorization)) > 0 || len(req.Header.Cookie(CookieAccess)) > 0}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		defer c.revals.finish(pk, cl)
		defer fasthttp.ReleaseRequest(req)
		defer func() {
			if r := recover(); r != nil {
				c.log.Error("cache: background revalidation panicked", zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
			}
		}()
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseResponse(resp)
		if o := c.fetchAndStore(req, resp, fetch, &f, []byte(pk), nil); o.e != nil && strings.HasSuffix(o.status, "; stored") {
			c.markRevalidated(pk, o.e.respTime)
		}
	}()
}

// maxRevalidated bounds the map of recent background refreshes; when full
// it is cleared, which at worst allows one redundant refresh per key.
const maxRevalidated = 10000

// markRevalidated records that a background refresh of key stored a
// response received at t.
func (c *Cache) markRevalidated(key string, t int64) {
	c.revalMu.Lock()
	defer c.revalMu.Unlock()
	if c.revalDone == nil || len(c.revalDone) >= maxRevalidated {
		c.revalDone = make(map[string]int64)
	}
	c.revalDone[key] = t
}

// revalidatedSince reports whether a background refresh of key stored a
// response newer than one received at respTime. The refreshed entry itself
// (same respTime) may be revalidated again, e.g. after a new soft purge.
func (c *Cache) revalidatedSince(key string, respTime int64) bool {
	c.revalMu.Lock()
	defer c.revalMu.Unlock()
	return c.revalDone[key] > respTime
}

// fetchAndStore forwards in (adjusted for filling) through fetch into resp,
// stores what may be stored, and says how to answer. It publishes what it
// stored to cl's waiters.
func (c *Cache) fetchAndStore(in *fasthttp.Request, resp *fasthttp.Response, fetch FetchFunc, f *fillReq, primary []byte, cl *call) outcome {
	fwd := "fwd=" + f.fwd
	if f.detail != "" {
		fwd += "; detail=" + f.detail
	}
	ticket := c.t.fillTicket()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	in.CopyTo(req)
	conditional := false
	if !f.personal {
		// Fill with a full GET: the cache answers HEAD, Range and the
		// client's conditionals itself from the full response.
		req.Header.SetMethod(fasthttp.MethodGet)
		req.Header.Del(fasthttp.HeaderRange)
		req.Header.Del(fasthttp.HeaderIfRange)
		req.Header.Del(fasthttp.HeaderIfNoneMatch)
		req.Header.Del(fasthttp.HeaderIfModifiedSince)
		if s := f.stale; s != nil && s.status == fasthttp.StatusOK {
			// RFC 9111 section 4.3.1: validate with the stored validators.
			if s.etag != nil {
				req.Header.SetBytesV(fasthttp.HeaderIfNoneMatch, s.etag)
				conditional = true
			}
			if lm := s.field("last-modified"); lm != nil {
				req.Header.SetBytesV(fasthttp.HeaderIfModifiedSince, lm)
				conditional = true
			}
		}
	}
	reqTime := c.now()
	err := fetch(req, resp)
	respTime := c.now()
	if err != nil || resp.StatusCode() >= 500 {
		// RFC 5861 section 4 (stale-if-error) and RFC 9111 section 4.2.4
		// (stale-on-error when no origin could be reached).
		if s := f.stale; s != nil && f.staleServable {
			if detail := c.servableOnError(s, s.age(respTime), err != nil); detail != "" {
				// fwd-status is what the forward produced: the origin's 5xx,
				// or the edge's own 502/503/504 when none answered.
				st := resp.StatusCode()
				if err != nil && st < 500 {
					st = fasthttp.StatusBadGateway
				}
				return outcome{e: s, status: "fwd=" + f.fwd + "; fwd-status=" + strconv.Itoa(st) + "; detail=" + detail}
			}
		}
		if err != nil {
			return outcome{status: fwd, err: err}
		}
	}
	if conditional && resp.StatusCode() == fasthttp.StatusNotModified {
		if ne, tags, ok := c.refreshed(f.stale, resp, reqTime, respTime); ne != nil {
			if !ok {
				c.dropSuperseded(f)
				return outcome{e: ne, status: fwd + "; fwd-status=304; detail=not-storable"}
			}
			se, detail := c.store(ne, tags, primary, f, ticket, &in.Header, cl)
			if se == nil {
				se = ne
			}
			return outcome{e: se, status: fwd + "; fwd-status=304" + detail}
		}
		// The 304 validated some other stored response (section 4.3.4);
		// ours is not confirmed, so fetch it in full.
		req.Header.Del(fasthttp.HeaderIfNoneMatch)
		req.Header.Del(fasthttp.HeaderIfModifiedSince)
		resp.Reset()
		reqTime = c.now()
		if err := fetch(req, resp); err != nil {
			return outcome{status: fwd, err: err}
		}
		respTime = c.now()
	}
	fwd += "; fwd-status=" + strconv.Itoa(resp.StatusCode())
	if resp.IsBodyStream() {
		// Larger than the fetch holds (above max_entry_bytes): never stored,
		// passed to the client as it arrives.
		c.dropSuperseded(f)
		return outcome{status: fwd + "; detail=" + reasonTooBig, stream: true}
	}
	st := resp.StatusCode()
	var ri respInfo
	lines := respLines(&resp.Header)
	readRespInfo(st, lines, hasSetCookie(&resp.Header), &ri)
	reason := storable(&ri, f.personal, f.reqNoStore)
	// All Vary lines are one list (RFC 9110 section 5.3): "Accept-Language"
	// on one line and "*" on the next never match.
	vary, _ := lines.joined("vary")
	varyNames, varyOK := cachekeys.ParseVary(string(vary), nil)
	if reason == "" && !varyOK {
		reason = reasonVaryStar // RFC 9111 section 4.1: Vary "*" never matches
	}
	if reason == "" && req.Header.IsHead() {
		// A personal HEAD went upstream as HEAD: its empty body must never
		// become the stored GET.
		reason = reasonStatus
	}
	if reason == "" && len(resp.Body()) > c.cfg.MaxEntryBytes {
		reason = reasonTooBig
	}
	if f.personal && reason != "" {
		// The client's own conditionals and Range went to the origin.
		c.dropSuperseded(f)
		return outcome{status: fwd + "; detail=" + reason}
	}
	e := newEntry(st, &resp.Header, resp.Body(), reqTime, respTime, &ri, c.cfg.HeuristicMax)
	e.vary = varyNames
	if reason != "" {
		c.dropSuperseded(f)
		return outcome{e: e, status: fwd + "; detail=" + reason}
	}
	tags := cachekeys.ParseTags(string(resp.Header.Peek(cachekeys.HeaderCacheTag)))
	se, detail := c.store(e, tags, primary, f, ticket, &in.Header, cl)
	if se == nil {
		if f.personal {
			return outcome{status: fwd + detail}
		}
		return outcome{e: e, status: fwd + detail}
	}
	if f.personal {
		return outcome{status: fwd + detail}
	}
	return outcome{e: se, status: fwd + detail}
}

// dropSuperseded deletes a stored entry whose refetch produced a response
// that may not be stored: the new answer supersedes it, so it must not be
// served stale any more.
func (c *Cache) dropSuperseded(f *fillReq) {
	if f.stale == nil || f.staleKey == "" {
		return
	}
	if cli, err := c.t.cli(); err == nil {
		_, _ = c.t.do(cli.B().Del().Key(f.staleKey).Build())
	}
	c.local.invalidate(f.staleKey)
}

// store records e's tag versions, refuses a fill that raced with a write
// to any of its tags, and writes the entry (and its vary index and tag
// index) to Redis. It returns the stored entry decoded from its own copy
// of the bytes (so it outlives resp) and the Cache-Status suffix.
//
// Tag versions and the SET share one round trip. A version this edge
// holds is used as before: it is current up to the pushes seen, and the
// fill's ticket refuses it if a push for it came after the fetch began. A
// version it does not hold is recorded as 0 and read in the same pipeline
// as the SET. Versions only grow, and the read comes after the origin
// answered, so a read of 0 proves the tag was never bumped before the
// answer was made: the entry is exact. A read above 0 means the stored
// entry carries a version that is too low, which only makes it look
// stale, never fresh (every edge compares for equality with the current
// version); the fill then does what it did before this pipeline, with the
// version it read: the ticket check, then a second SET with that version.
// So a miss costs one Redis round trip after the fetch instead of two,
// except for a tag that was bumped and has dropped out of this edge's
// table.
func (c *Cache) store(e *entry, tags []string, primary []byte, f *fillReq, fillTicket uint64, rh *fasthttp.RequestHeader, cl *call) (*entry, string) {
	tick := c.now() >> 30
	tv, unknown := c.localTagVersions(tags, tick)
	keys := make([]string, len(tv))
	for i := range tv {
		keys[i] = tv[i].key
	}
	if c.t.raced(keys, fillTicket) {
		// A tag this response depends on was bumped while it was being
		// fetched: the response may predate the write, so it is not kept.
		return nil, "; detail=raced-with-write"
	}
	e.tags = tv
	ttl := max(e.lifetime-e.age(e.respTime), 0) + max(e.swr, c.errorGrace(e))
	if e.etag != nil || e.lastMod != 0 {
		ttl += c.cfg.Retention
	}
	ttl = min(ttl, c.cfg.MaxTTL)
	if ttl < time.Second {
		return nil, "; detail=" + reasonNoFresh
	}
	cli, err := c.t.cli()
	if err != nil {
		return nil, "; detail=redis-unavailable"
	}
	enc := encodeEntry(e)
	se, _, err := decodeRecord(enc)
	if err != nil {
		return nil, "; detail=encode-error"
	}
	cmds := make([]rueidis.Completed, 0, len(unknown)+2+2*len(tags))
	// The unknown tags' GETs come first: their replies are res[:len(unknown)].
	tkTags := make([]ticket, len(unknown))
	for j, i := range unknown {
		tkTags[j] = c.local.begin(tv[i].key)
		cmds = append(cmds, cli.B().Get().Key(tv[i].key).Build())
	}
	key := primary
	var idx *varyIndex
	// newIdx: this fill writes a vary index. Only then is the index put in
	// the local table below: an index the lookup found may since have been
	// deleted from Redis (a write or purge of the primary key), and
	// inserting it again would keep serving its old variants here with no
	// push ever coming to remove it.
	newIdx := false
	if len(e.vary) > 0 {
		idx = f.vary
		if idx == nil || !equalStrings(idx.names, e.vary) {
			newIdx = true
			idx = &varyIndex{gen: newGen(), names: e.vary}
			cmds = append(cmds, cli.B().Set().Key(string(primary)).Value(rueidis.BinaryString(encodeVaryIndex(idx))).Px(c.cfg.MaxTTL).Build())
		}
		key = idx.appendVariantKey(append([]byte(nil), primary...), rh)
	}
	ks := string(key)
	cmds = append(cmds, cli.B().Set().Key(ks).Value(rueidis.BinaryString(enc)).Px(ttl).Build())
	for _, t := range tags {
		ik := c.cfg.TagIndexNamespace + t
		cmds = append(cmds, cli.B().Sadd().Key(ik).Member(ks).Build(), cli.B().Expire().Key(ik).Seconds(int64(c.cfg.MaxTTL/time.Second)).Build())
	}
	// Tickets taken before the write: if a purge or another edge's fill
	// touches these keys before we insert, the insert is refused. Our own
	// SET is not pushed back to us (NOLOOP), so the inserted entry stays
	// until someone else changes the key.
	tkEntry := c.local.beginWrite(ks)
	var tkIdx ticket
	if newIdx {
		tkIdx = c.local.beginWrite(string(primary))
	}
	res, err := c.t.do(cmds...)
	if err != nil {
		return nil, "; detail=redis-error"
	}
	guessLow := false
	for j, i := range unknown {
		v, err := tagVersionReply(res[j])
		if err != nil {
			// Stored with version 0 beside a version nobody can compare:
			// not fresh anywhere (tagsCurrent fails the same way).
			return nil, "; detail=tag-versions-unreadable"
		}
		c.local.insert(tv[i].key, &record{isTag: true, version: v, size: int64(len(tv[i].key)) + 96}, tkTags[j], tick)
		if v != tv[i].version {
			tv[i].version = v
			guessLow = true
		}
	}
	if guessLow {
		// Redis holds the entry with a version that is too low (it looks
		// stale everywhere). Record the version read, as a read after the
		// fetch always did, unless a push for it came after the ticket.
		if c.t.raced(keys, fillTicket) {
			return nil, "; detail=raced-with-write"
		}
		enc = encodeEntry(e)
		if se, _, err = decodeRecord(enc); err != nil {
			return nil, "; detail=encode-error"
		}
		if _, err := c.t.do(cli.B().Set().Key(ks).Value(rueidis.BinaryString(enc)).Px(ttl).Build()); err != nil {
			return nil, "; detail=redis-error"
		}
	}
	if newIdx {
		c.local.insert(string(primary), &record{vary: idx, size: int64(len(primary)) + 128}, tkIdx, tick)
	}
	c.local.insert(ks, &record{e: se, size: se.size + int64(len(ks))}, tkEntry, tick)
	if f.staleKey != "" && f.staleKey != ks {
		// The variant key changed (new vary index): drop the old one,
		// here too (our own DEL is not pushed back to us: NOLOOP).
		_, _ = c.t.do(cli.B().Del().Key(f.staleKey).Build())
		c.local.invalidate(f.staleKey)
	}
	if cl != nil {
		cl.e, cl.key, cl.vary = se, ks, idx
	}
	c.m.stored.Inc()
	return se, "; stored"
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// field returns a stored field's value (name in lower case), or nil.
func (e *entry) field(name string) []byte {
	for i := range e.header {
		if eqFold(e.header[i].k, name) {
			return e.header[i].v
		}
	}
	return nil
}

// newEntry builds an entry from a response; its body aliases body.
func newEntry(status int, h *fasthttp.ResponseHeader, body []byte, reqTime, respTime int64, ri *respInfo, heuristicMax time.Duration) *entry {
	e := &entry{status: status, reqTime: reqTime, respTime: respTime, body: body, borrowed: true}
	conn := h.Peek(fasthttp.HeaderConnection)
	for k, v := range h.All() {
		if !excludedField(k, conn) {
			// Copied: fasthttp renders some fields (Set-Cookie) into a
			// buffer it reuses for the next one.
			e.header = append(e.header, kv{append([]byte(nil), k...), append([]byte(nil), v...)})
		}
	}
	if t := h.Peek(fasthttp.HeaderETag); len(t) > 0 {
		e.etag = t
	}
	if ri.date == 0 {
		// RFC 9110 section 6.6.1: a recipient with a clock that stores or
		// forwards a response without Date adds the time it was received;
		// the stored answer keeps that Date from then on.
		// An unreadable Date is replaced, so exactly one goes out.
		ri.date = respTime / 1e9
		e.header = setField(e.header, fasthttp.HeaderDate, fasthttp.AppendHTTPDate(nil, time.Unix(ri.date, 0)))
	}
	derive(e, ri, respTime, heuristicMax)
	return e
}

// derive sets e's freshness and validation fields from ri.
func derive(e *entry, ri *respInfo, respTime int64, heuristicMax time.Duration) {
	e.date, e.lastMod = ri.date, ri.lastModified
	e.lifetime, _ = freshnessLifetime(ri, respTime/1e9, heuristicMax)
	e.ageValue = ri.ageValue
	if ri.ageBad {
		e.lifetime = 0 // see readAge
	}
	e.swr, e.sie = 0, 0
	if ri.cc.swr > 0 {
		e.swr = secs(ri.cc.swr)
	}
	if ri.cc.sie > 0 {
		e.sie = secs(ri.cc.sie)
	}
	e.opts = 0
	if ri.cc.mustRevalidate || ri.cc.proxyRevalidate {
		e.opts |= optMustRevalidate
	}
	if ri.cc.noCache {
		e.opts |= optNoCache
	}
	if ri.cc.sMaxAge >= 0 {
		e.opts |= optSMaxAge
	}
	if ri.cc.sie >= 0 {
		e.opts |= optHasSIE
	}
}

// excludedField lists what a cache does not store (RFC 9111 section 3.1:
// hop-by-hop fields and those named by Connection), what it recomputes
// (Content-Length, Age), what is meant for it alone, and the per-request
// X-Request-ID. Date is kept: a cache forwards the origin's Date, and Age
// tells how long the answer was stored.
func excludedField(k, connection []byte) bool {
	switch {
	case eqFold(k, "connection"), eqFold(k, "keep-alive"), eqFold(k, "proxy-connection"), eqFold(k, "te"),
		eqFold(k, "trailer"), eqFold(k, "transfer-encoding"), eqFold(k, "upgrade"),
		eqFold(k, "proxy-authenticate"), eqFold(k, "proxy-authorization"),
		eqFold(k, "content-length"), eqFold(k, "age"),
		eqFold(k, "cache-tag"), eqFold(k, "cache-invalidate"),
		// One request's id must never be replayed to other clients.
		eqFold(k, "x-request-id"):
		return true
	}
	for len(connection) > 0 {
		i := bytes.IndexByte(connection, ',')
		var tok []byte
		if i < 0 {
			tok, connection = connection, nil
		} else {
			tok, connection = connection[:i], connection[i+1:]
		}
		if bytes.EqualFold(bytes.TrimSpace(tok), k) {
			return true
		}
	}
	return false
}

// refreshed applies a 304 to a stored entry (RFC 9111 sections 4.3.3 and
// 4.3.4, updating fields per section 3.2): the stored body stays, stored
// fields are replaced by the 304's, except those the stored body depends
// on. It returns nil when the 304 carries a different validator, i.e. it
// does not select this entry; the tags are the 304's Cache-Tag, else the
// entry's own; ok is false when the updated response may not be stored.
func (c *Cache) refreshed(old *entry, resp *fasthttp.Response, reqTime, respTime int64) (ne *entry, tags []string, ok bool) {
	if t := resp.Header.Peek(fasthttp.HeaderETag); len(t) > 0 && old.etag != nil &&
		!bytes.Equal(bytes.TrimPrefix(t, []byte("W/")), bytes.TrimPrefix(old.etag, []byte("W/"))) {
		return nil, nil, false
	}
	conn := resp.Header.Peek(fasthttp.HeaderConnection)
	var upd []kv
	for k, v := range resp.Header.All() {
		// Fields that describe the stored bytes stay (the body does); so
		// does Content-Type unless the 304 really carries one (below), since
		// fasthttp reports a default for a response that has none.
		if excludedField(k, conn) || eqFold(k, "content-type") || eqFold(k, "content-encoding") || eqFold(k, "content-range") ||
			eqFold(k, "content-md5") || eqFold(k, "digest") || eqFold(k, "content-digest") || eqFold(k, "repr-digest") {
			continue
		}
		upd = append(upd, kv{append([]byte(nil), k...), append([]byte(nil), v...)})
	}
	resp.Header.SetNoDefaultContentType(true)
	if ct := resp.Header.ContentType(); len(ct) > 0 {
		upd = append(upd, kv{[]byte(fasthttp.HeaderContentType), append([]byte(nil), ct...)})
	}
	resp.Header.SetNoDefaultContentType(false)
	ne = &entry{status: old.status, reqTime: reqTime, respTime: respTime, body: old.body, vary: old.vary, borrowed: old.borrowed}
	for _, h := range old.header {
		replaced := false
		for _, u := range upd {
			if bytes.EqualFold(u.k, h.k) {
				replaced = true
				break
			}
		}
		if !replaced {
			ne.header = append(ne.header, h)
		}
	}
	ne.header = append(ne.header, upd...)
	if len(resp.Header.Peek(fasthttp.HeaderDate)) == 0 {
		// The refreshed answer is as old as the 304 (RFC 9110 section
		// 6.6.1): the stored Date would make it look older.
		d := fasthttp.AppendHTTPDate(nil, time.Unix(respTime/1e9, 0))
		ne.header = setField(ne.header, fasthttp.HeaderDate, d)
	}
	// The 304's own Age, not the stored one (Age is never stored).
	var ri respInfo
	readRespInfo(old.status, kvLines(append(ne.header[:len(ne.header):len(ne.header)], ageFields(resp)...)), false, &ri)
	if t := kvLines(ne.header).first("etag"); len(t) > 0 {
		ne.etag = t
	}
	derive(ne, &ri, respTime, c.cfg.HeuristicMax)
	tags = cachekeys.ParseTags(string(resp.Header.Peek(cachekeys.HeaderCacheTag)))
	if len(resp.Header.Peek(cachekeys.HeaderCacheTag)) == 0 {
		for _, t := range old.tags {
			tags = append(tags, t.tag)
		}
	}
	// When the origin no longer allows storing (e.g. it now says private)
	// the refreshed entry may answer this request but is not kept.
	ok = storable(&ri, false, false) == "" && !hasSetCookie(&resp.Header)
	return ne, tags, ok
}

// setField replaces every line of the field name in fields with one line.
func setField(fields []kv, name string, v []byte) []kv {
	out := fields[:0:0]
	for _, f := range fields {
		if !bytes.EqualFold(f.k, []byte(name)) {
			out = append(out, f)
		}
	}
	return append(out, kv{[]byte(name), v})
}

// ageFields returns a response's Age lines as fields.
func ageFields(resp *fasthttp.Response) []kv {
	var out []kv
	respLines(&resp.Header)("age", func(v []byte) { out = append(out, kv{[]byte(fasthttp.HeaderAge), append([]byte(nil), v...)}) })
	return out
}
