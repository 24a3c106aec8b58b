package proxy

import (
	"errors"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/novashop/edge/cachekeys"
	"github.com/novashop/edge/proxy/auth"
	"github.com/novashop/edge/proxy/balancer"
	"github.com/novashop/edge/proxy/config"
	"github.com/novashop/edge/proxy/internal/stripe"
	"github.com/novashop/edge/proxy/upstream"
	"github.com/valyala/fasthttp"
)

// maxTries bounds the hosts remembered per request; config allows at most 10 tries.
const maxTries = 10

// exchange is the per-request state, pooled so the hot path allocates nothing. It
// holds the RequestCtx only while the handler runs; release clears it.
type exchange struct {
	ctx   *fasthttp.RequestCtx
	rt    *runtime
	start time.Time
	// stripe is the request's stripe hint (stripe.Hint): what it counts and
	// numbers goes to its event loop's own cache lines.
	stripe  uint
	note    tryNote
	scratch []byte
	// body holds a small request body read from a streaming listener (see
	// settleRequestBody), so reading it allocates nothing once warm.
	body []byte
	// limit guards a streamed request body (nil when the body is whole).
	limit *bodyLimiter
	// tries is the forwarding state of a request forwarded from an event loop.
	tries tries
	// clientBuf[:clientLen] is the client a trusted forwarding header named
	// (see clientIP); clientLen 0: the peer is the client.
	clientBuf [net.IPv6len]byte
	clientLen int
	// fwd holds the X-Forwarded-For list made from a trusted Forwarded header.
	fwd []byte
	// fetch is the cache's foreground fetch for this exchange (see
	// noteFetch), made once per pooled exchange so a hit allocates nothing.
	fetch func(req *fasthttp.Request, resp *fasthttp.Response) error
	// lazyFwd asks admit to leave the X-Forwarded-For/-Proto rewrite for
	// later (setForwarded), for a request the loop may answer as a raw hit,
	// which never sends them anywhere; fwdPending says it is still to do,
	// with fwdScheme and fwdPrior (the client sent X-Forwarded-For) as admit
	// found them.
	lazyFwd, fwdPending, fwdPrior bool
	fwdScheme                     int
	// genID is a request id admit made and left for setForwarded to set
	// (idPending), under lazyFwd.
	genID     []byte
	idPending bool
	// acc is routeAccess's answer when handleInline already had it (accSet).
	acc    access
	accSet bool
}

// newExchange makes a pooled exchange with its foreground cache fetch.
func (s *Server) newExchange() any {
	ex := new(exchange)
	ex.fetch = func(req *fasthttp.Request, resp *fasthttp.Response) error { return s.noteFetch(ex, req, resp) }
	return ex
}

// tryNote records, for the access log, the last host a request went to and how many
// tries it took.
type tryNote struct {
	upstream string
	tries    int
}

func (s *Server) acquireExchange(ctx *fasthttp.RequestCtx, rt *runtime) *exchange {
	return s.acquireExchangeAt(ctx, rt, time.Now())
}

// acquireExchangeAt is acquireExchange with the request's start time given.
func (s *Server) acquireExchangeAt(ctx *fasthttp.RequestCtx, rt *runtime, start time.Time) *exchange {
	ex := s.exchanges.Get().(*exchange)
	ex.ctx, ex.rt, ex.start, ex.stripe = ctx, rt, start, stripe.Hint(ctx)
	return ex
}

func (s *Server) releaseExchange(ex *exchange) {
	ex.ctx, ex.rt, ex.note, ex.limit, ex.clientLen = nil, nil, tryNote{}, nil, 0
	ex.lazyFwd, ex.fwdPending, ex.accSet, ex.idPending = false, false, false, false
	if ex.tries.s != nil {
		ex.tries = tries{}
	}
	if cap(ex.scratch) > 4096 {
		ex.scratch = nil
	}
	if cap(ex.body) > maxPooledBody {
		ex.body = nil
	}
	ex.fwd = ex.fwd[:0]
	if cap(ex.fwd) > 4096 {
		ex.fwd = nil
	}
	s.exchanges.Put(ex)
}

// cacheFetch returns the Cache's way back to the origins for one request. The cache
// may call it after the handler returned (background revalidation), so it holds its
// own copy of the client IP (for hash balancing), loads the current runtime at call
// time and touches neither the RequestCtx nor the pooled exchange. On error it fills
// resp with the edge's JSON error answer.
func (s *Server) cacheFetch(clientIP net.IP) func(req *fasthttp.Request, resp *fasthttp.Response) error {
	var ip [net.IPv6len]byte
	n := copy(ip[:], clientIP)
	return func(req *fasthttp.Request, resp *fasthttp.Response) error {
		return s.cacheForward(req, resp, ip[:n], nil)
	}
}

// noteFetch is the cache's foreground fetch for ex (ServeSplit calls it only
// before it returns, while the handler still owns ex), so it may note the
// host and tries in ex.note for the access log. A fill that fetches twice
// (a 304 the cache could not use, then the full answer) logs the last host
// and the tries of both.
func (s *Server) noteFetch(ex *exchange, req *fasthttp.Request, resp *fasthttp.Response) error {
	var n tryNote
	err := s.cacheForward(req, resp, ex.clientIP(), &n)
	if n.tries > 0 {
		ex.note.upstream = n.upstream
		ex.note.tries += n.tries
	}
	return err
}

// cacheForward forwards one cache fetch at the current runtime; note, when
// not nil, receives the host and try count. On error it fills resp with the
// edge's JSON error answer.
func (s *Server) cacheForward(req *fasthttp.Request, resp *fasthttp.Response, clientIP net.IP, note *tryNote) error {
	rt := s.rt.Load()
	err := s.forward(rt, req, resp, clientIP, time.Now(), note, cacheStreamAbove(&rt.cfg))
	if err != nil {
		resp.Reset()
		status, msg := errorStatus(err)
		resp.SetStatusCode(status)
		resp.Header.SetContentType("application/json")
		resp.SetBodyString(`{"error":"` + msg + `"}`)
		return err
	}
	stripHopResponse(&resp.Header, nil)
	return nil
}

// cacheStreamAbove is the body size above which a cache fetch streams: never
// when limits.stream_response_bytes is 0, else above both it and the largest
// entry the cache stores, so streaming never makes a storable response
// uncacheable. A streamed answer is handed to the client, not stored.
func cacheStreamAbove(cfg *config.Config) int {
	if cfg.Limits.StreamResponseBytes <= 0 {
		return 0
	}
	return max(cfg.Limits.StreamResponseBytes, cfg.Cache.MaxEntryBytes)
}

// fetchFor returns the Cache's fetch function for the request in ctx. Only the hash
// policy on the client IP reads the client address, so every other request shares
// the one function New built and a cache hit allocates nothing (a closure per
// request was the only allocation on the hit path). Should the policy switch to
// hash-by-IP while a background revalidation holds the shared function, that one
// fetch goes to a random host, as any request without the hash key does.
func (s *Server) fetchFor(ex *exchange) func(req *fasthttp.Request, resp *fasthttp.Response) error {
	if h, ok := s.policy.Load().p.(*balancer.Hash); ok && h.Key().Kind == balancer.HashClientIP {
		return s.cacheFetch(ex.clientIP())
	}
	return s.sharedFetch
}

// handle is the public request handler.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	rt := s.rt.Load()
	ex := s.acquireExchange(ctx, rt)
	// Last, over whatever answer was copied in (an origin's resets the
	// Connection flag).
	defer announceClose(ctx)
	defer s.finish(ex)
	defer s.recoverPanic(ctx)
	if s.admit(ctx, ex) {
		s.serveAdmitted(ctx, ex)
	}
}

// admit runs the edge's own checks and header rewrites (limits, rate limits,
// tokens, X-Forwarded-*, X-Request-ID) and reports false when it already answered.
// Nothing in it waits on the network except a JWKS fetch on a protected route,
// which the event-loop core never runs on a loop (see handleInline).
func (s *Server) admit(ctx *fasthttp.RequestCtx, ex *exchange) bool {
	rt := ex.rt
	req := &ctx.Request
	h := &req.Header
	lim := &rt.cfg.Limits
	// A trusted balancer's forwarding headers name the client first, so
	// every answer below, refusals included, is logged and limited as the
	// client's.
	scheme := schemeNone
	if rt.fwd != nil {
		if scheme = s.resolveClient(ctx, ex); scheme == schemeBad {
			writeError(ctx, fasthttp.StatusBadRequest, "contradicting or invalid forwarded scheme headers")
			return false
		}
	}
	if len(h.RequestURI()) > lim.MaxURIBytes {
		writeError(ctx, fasthttp.StatusRequestURITooLong, "request URI too long")
		return false
	}
	// CONNECT is forwarded as an ordinary request, so hold it to RFC 9110
	// §9.3.6 and RFC 9112 §3.2.3: a host:port target and no content (bytes
	// after a CONNECT header section are tunnel data to a tunnelling hop and
	// a body to the origin: two readings of one stream). -1 is chunked; the
	// event-loop core reports -2 (no length) for a CONNECT the framer found
	// bodiless.
	if cl := h.ContentLength(); h.IsConnect() && (!connectTarget(h.RequestURI()) || cl > 0 || cl == -1) {
		writeError(ctx, fasthttp.StatusBadRequest, "invalid CONNECT request")
		ctx.SetConnectionClose()
		return false
	}
	if t := h.RequestURI(); len(t) > 0 && t[0] != '/' && t[0] != '*' && !h.IsConnect() && !absoluteTarget(t) {
		writeError(ctx, fasthttp.StatusBadRequest, "invalid request target")
		ctx.SetConnectionClose()
		return false
	}
	limit, ok := s.settleRequestBody(ctx, ex, lim.MaxBodyBytes)
	if !ok {
		return false
	}
	ex.limit = limit
	// A body in transfer codings besides chunked goes on still coded
	// (coding.go).
	codedBody(ctx)

	// One pass over the headers finds what the steps below must change, so a
	// common request pays one scan instead of a dozen normalising look-ups.
	in := scanInbound(h)
	if in.hop {
		// Hop-by-hop fields go first (RFC 9110 §7.6.1), so a Connection header
		// cannot name, and so remove, a field the edge sets or checks below.
		ex.scratch = stripHopRequest(h, ex.scratch)
		in = scanInbound(h)
	}

	// X-Request-ID: keep a valid incoming one, else make one; echo it to the
	// client. A possible raw hit keeps a made one in genID until something
	// reads the request's field (setForwarded); serveRaw echoes it from there.
	if !in.validID {
		if ex.lazyFwd {
			ex.genID, ex.idPending = appendRequestIDOn(ex.genID[:0], ex.stripe), true
		} else {
			ex.scratch = appendRequestIDOn(ex.scratch[:0], ex.stripe)
			h.SetCanonical(keyRequestID, ex.scratch)
		}
	}

	// Identity headers come only from a token the edge verified.
	if in.userID {
		h.Del(headerUserID)
	}
	if in.userRole {
		h.Del(headerUserRole)
	}

	method, path := h.Method(), ctx.Path()
	nowT := ex.start
	r := rt.matchRule(method, path)
	if r != nil && r.perIP != nil {
		if ok, wait := r.perIP.Allow(ex.clientIP(), nowT); !ok {
			s.metrics.RateLimited(r.name, false)
			tooMany(ctx, wait)
			return false
		}
	}

	acc := ex.acc
	if !ex.accSet {
		acc = routeAccess(method, path)
	}
	if acc != accessPublic && !rt.cfg.JWT.Disabled {
		if s.verifier == nil {
			// No key to check with: fail closed rather than pass a token
			// the edge cannot vouch for.
			s.metrics.jwtInvalid.Inc()
			s.deny(ctx, acc, "the edge has no token key configured", false)
			return false
		}
		token := auth.TokenFromRequest(req, rt.cfg.JWT.CookieName)
		if len(token) == 0 {
			s.metrics.jwtMissing.Inc()
			s.deny(ctx, acc, "missing access token", false)
			return false
		}
		id, err := s.verifier.Verify(token, nowT)
		if err != nil {
			s.refuseToken(ctx, acc, err)
			return false
		}
		if acc == accessStaffAPI && !id.IsStaff() {
			s.refuseStaffOnly(ctx)
			return false
		}
		h.Set(headerUserID, id.UserID)
		h.Set(headerUserRole, id.Role)
		if r != nil && r.perUser != nil {
			if ok, wait := r.perUser.Allow([]byte(id.UserID), nowT); !ok {
				s.metrics.RateLimited(r.name, true)
				tooMany(ctx, wait)
				return false
			}
		}
	}

	// Outbound headers: X-Forwarded-*, now or, for a request that may be
	// answered as a raw hit, when something needs them (setForwarded).
	ex.fwdScheme, ex.fwdPrior, ex.fwdPending = scheme, in.forwardedFor, true
	if !ex.lazyFwd {
		ex.setForwarded()
	}
	// The client already got its 100 Continue from fasthttp and the body is read or
	// streaming, so the origin must not be asked to send another (RFC 9110 §10.1.1
	// lets a proxy drop Expect once it has taken the body on).
	if in.expect {
		h.Del(fasthttp.HeaderExpect)
	}
	// Send the Host header as received; an HTTP/1.0 request without one gets the
	// origin's address (nginx's default) instead of failing as an origin error.
	req.UseHostHeader = true

	return true
}

// setForwarded sets the X-Request-Id (a made one), X-Forwarded-For and
// X-Forwarded-Proto fields admit left pending. The chain sent on is the received one (from a trusted
// Forwarded header, its for= chain) plus the peer. A raw hit (see
// admitInline) skips it, 2-4 % of a hit's CPU for fields only an origin
// reads; a miss sets them before anything forwards or stores the request,
// and a cached entry's Vary lookup (cache.VaryPreparer) before it reads
// them, so the origin and the variant key see what they always saw. The
// fields are added after the ones admit set, as before; admit's deletions
// (Expect) touch no field of theirs.
func (ex *exchange) setForwarded() {
	ctx := ex.ctx
	h := &ctx.Request.Header
	if ex.idPending {
		// First, where admit set it before the forwarding fields.
		ex.idPending = false
		h.SetCanonical(keyRequestID, ex.genID)
	}
	if !ex.fwdPending {
		return
	}
	ex.fwdPending = false
	var prior []byte
	if len(ex.fwd) > 0 {
		prior = ex.fwd
	} else if ex.fwdPrior {
		prior = h.Peek(headerForwardedFor)
	}
	ex.scratch = appendForwardedFor(ex.scratch[:0], prior, ctx.RemoteIP())
	h.SetCanonical(keyForwardedFor, ex.scratch)
	if https := ctx.IsTLS(); ex.fwdScheme == schemeHTTPS || (ex.fwdScheme == schemeNone && https) {
		h.SetCanonical(keyForwardedProto, valueHTTPS)
	} else {
		h.SetCanonical(keyForwardedProto, valueHTTP)
	}
}

// PrepareVary is cache.VaryPreparer: the pending forwarding fields, set
// before a Vary lookup on the raw hit path reads the request's fields.
func (ex *exchange) PrepareVary(*fasthttp.RequestCtx) { ex.setForwarded() }

// serveAdmitted answers an admitted request from the cache or the origins.
func (s *Server) serveAdmitted(ctx *fasthttp.RequestCtx, ex *exchange) {
	req, lim, limit := &ctx.Request, &ex.rt.cfg.Limits, ex.limit
	// A GET or HEAD with a coded body (coding.go) is neither looked up nor
	// stored: a cache fill sends a copy of the request without its body
	// stream. Other methods pass the cache with the request as it is.
	if s.cache != nil && !(codedUpload(req) != nil && (req.Header.IsGet() || req.Header.IsHead())) {
		if sc, ok := s.cache.(SplitServer); ok && ex.fetch != nil {
			// The foreground fetch notes the origin for the access log; the
			// background one (revalidation after the answer) must not, since
			// ex may by then serve another request.
			sc.ServeSplit(ctx, ex.fetch, s.fetchFor(ex))
		} else {
			s.cache.Serve(ctx, s.fetchFor(ex))
		}
		if limit != nil && limit.exceeded {
			ctx.SetConnectionClose()
			writeError(ctx, fasthttp.StatusRequestEntityTooLarge, "request body too large")
		}
		s.finishAnswer(ctx)
		return
	}
	err := s.forward(ex.rt, req, &ctx.Response, ex.clientIP(), ex.start, &ex.note, lim.StreamResponseBytes)
	if err != nil && limit != nil && limit.exceeded {
		ctx.SetConnectionClose()
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, "request body too large")
		return
	}
	s.answerForwarded(ctx, ex, err)
}

// answerForwarded makes the client's answer of a forwarded request, on either
// core: the origin's answer without hop-by-hop fields, or the edge's error.
func (s *Server) answerForwarded(ctx *fasthttp.RequestCtx, ex *exchange, err error) {
	if err != nil {
		status, msg := errorStatus(err)
		writeError(ctx, status, msg)
		if status == fasthttp.StatusServiceUnavailable {
			// Health checks run every few seconds; a client may try again soon.
			ctx.Response.Header.Set(headerRetryAfter, "1")
		}
	} else {
		ex.scratch = stripHopResponse(&ctx.Response.Header, ex.scratch)
	}
	s.finishAnswer(ctx)
}

// finishAnswer removes Cache-Tag and the edge's own Cache-Control, which are
// for the edge only (DESIGN.md "Headers"), with or without a cache, then
// compresses the answer when compression is configured (after the cache, so it
// stores one identity copy).
func (s *Server) finishAnswer(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Del(headerCacheTag)
	ctx.Response.Header.Del(cachekeys.HeaderEdgeCacheControl)
	if s.comp != nil {
		s.comp.apply(ctx)
	}
}

// deny answers a failed token check: JSON 401 with WWW-Authenticate on the API
// (RFC 6750 §3; error="invalid_token" when a token was sent), a 303 to the login
// page on storefront pages.
func (s *Server) deny(ctx *fasthttp.RequestCtx, acc access, msg string, hadToken bool) {
	if acc == accessUserPage {
		ctx.Response.Header.Set("Location", "/login/?next="+url.QueryEscape(string(ctx.Path())))
		ctx.SetStatusCode(fasthttp.StatusSeeOther)
		return
	}
	if hadToken {
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	} else {
		ctx.Response.Header.Set("WWW-Authenticate", "Bearer")
	}
	writeError(ctx, fasthttp.StatusUnauthorized, msg)
}

// refuseToken answers a request whose access token failed verification.
func (s *Server) refuseToken(ctx *fasthttp.RequestCtx, acc access, err error) {
	s.metrics.jwtInvalid.Inc()
	msg := "invalid access token"
	if errors.Is(err, auth.ErrExpired) {
		msg = "access token expired"
	} else if errors.Is(err, auth.ErrKeysUnavailable) {
		msg = "token keys unavailable"
	}
	s.deny(ctx, acc, msg, true)
}

// refuseStaffOnly answers a shopper's valid token on a staff route.
func (s *Server) refuseStaffOnly(ctx *fasthttp.RequestCtx) {
	s.metrics.jwtForbidden.Inc()
	writeError(ctx, fasthttp.StatusForbidden, "staff only")
}

// refuseBeforeBody answers, from the header section alone, a request whose
// token the handler would refuse whatever its body: a protected route with
// no token, an invalid or expired one, or a shopper's on a staff route. It
// runs where a client waits for 100 Continue (RFC 9110 §10.1.1), so a client
// is not asked to send a body only to be told 401. It neither waits (a token
// the edge could only judge after fetching the JWKS is left to the handler)
// nor takes rate-limit tokens; the handler repeats every check once the body
// is in. It reports whether it answered.
func (s *Server) refuseBeforeBody(ctx *fasthttp.RequestCtx) bool {
	rt := s.rt.Load()
	if rt.cfg.JWT.Disabled {
		return false
	}
	acc := routeAccess(ctx.Request.Header.Method(), ctx.Path())
	if acc == accessPublic {
		return false
	}
	if s.verifier == nil {
		s.metrics.jwtInvalid.Inc()
		s.deny(ctx, acc, "the edge has no token key configured", false)
		return true
	}
	token := auth.TokenFromRequest(&ctx.Request, rt.cfg.JWT.CookieName)
	if len(token) == 0 {
		s.metrics.jwtMissing.Inc()
		s.deny(ctx, acc, "missing access token", false)
		return true
	}
	id, err := s.verifier.VerifyOffline(token, time.Now())
	switch {
	case errors.Is(err, auth.ErrKeysUnavailable), errors.Is(err, auth.ErrUnknownKey):
		return false // needs the JWKS: the handler fetches and decides
	case err != nil:
		s.refuseToken(ctx, acc, err)
		return true
	case acc == accessStaffAPI && !id.IsStaff():
		s.refuseStaffOnly(ctx)
		return true
	}
	return false
}

// tooMany answers 429 with Retry-After in whole seconds, at least 1 (RFC 9110 §10.2.3).
func tooMany(ctx *fasthttp.RequestCtx, wait time.Duration) {
	secs := int64((wait + time.Second - 1) / time.Second)
	ctx.Response.Header.Set(headerRetryAfter, strconv.FormatInt(max(secs, 1), 10))
	writeError(ctx, fasthttp.StatusTooManyRequests, "rate limit exceeded")
}

// idempotent reports the methods the edge retries after the origin may have seen
// them. PUT and DELETE are idempotent by RFC 9110 §9.2.2 but the shop's handlers are
// not all written that way, so the edge stays conservative.
func idempotent(m []byte) bool {
	return string(m) == fasthttp.MethodGet || string(m) == fasthttp.MethodHead || string(m) == fasthttp.MethodOptions
}

func retryableStatus(code int) bool {
	return code == fasthttp.StatusBadGateway || code == fasthttp.StatusServiceUnavailable || code == fasthttp.StatusGatewayTimeout
}

// forward sends req to a host chosen by the balancer and fills resp, retrying on
// another host after a connection error or a 502/503/504 when that is safe
// (idempotent method, or a connection that never opened) and the retry budget
// allows. An origin's own 502/503/504 is passed through when no retry is possible.
//
// It must not touch a RequestCtx: the cache calls it through cacheFetch, possibly
// after the handler returned. start is when the request began: the handler passes
// the time it already read, because a forwarded request reads the clock about
// fifteen times (deadlines included) and each read costs 70–200 ns on the
// benchmark VM. note, when not nil, receives the host and try count.
//
// streamAbove, when above zero, lets a response body larger than it pass through
// without being held in memory (see settleStream); only a caller that hands resp
// to fasthttp's writer (directly, or as the cache does, through a reader that
// owns resp) may set it, because the body then belongs to the origin's
// connection until the writer has read it.
func (s *Server) forward(rt *runtime, req *fasthttp.Request, resp *fasthttp.Response, clientIP net.IP, start time.Time, note *tryNote, streamAbove int) error {
	var t tries
	t.begin(s, rt, req, clientIP, start, note)
	return s.forwardTries(&t, resp, streamAbove)
}

// forwardTries runs t's tries through fasthttp's HostClient (see forward).
func (s *Server) forwardTries(t *tries, resp *fasthttp.Response, streamAbove int) error {
	req := t.req
	// fasthttp drops the body stream once it has sent it, so keep the limiter
	// to ask afterwards whether the client's side of the upload failed.
	var upload *bodyLimiter
	coded := codedUpload(req)
	if coded != nil {
		upload, _ = coded.R.(*bodyLimiter)
	} else if t.streamed {
		upload, _ = req.BodyStream().(*bodyLimiter)
	}
	for {
		u, timeout, ok := t.nextTry()
		if !ok {
			return t.result()
		}
		resp.Reset()
		// Reset clears StreamBody; HostClient.Do keeps a value set afterwards.
		resp.StreamBody = streamAbove > 0
		// Do with a request timeout is DoDeadline without its extra clock read
		// (fasthttp turns a deadline back into a timeout anyway).
		req.SetTimeout(timeout)
		if coded != nil {
			// The HostClient's timeout is not visible to the transport
			// that writes a coded request.
			coded.Deadline = time.Now().Add(timeout)
		}
		err := u.Client.Do(req, resp)
		req.SetTimeout(0)
		if errors.Is(err, upstream.ErrHTTP10) {
			// Not sent: the host answered in HTTP/1.0 and cannot take a
			// transfer coding (RFC 9112 §6.1). Not the host's failure.
			t.abandon()
			return err
		}
		if err == nil && resp.StreamBody {
			err = settleStream(resp, streamAbove, t.rt.cfg.Limits.MaxResponseBytes)
		}
		if err != nil && upload.clientFault() {
			// The client's upload broke (bad framing, reset, over the limit), not
			// the origin: no health verdict, no latency sample, and no retry, since
			// the body is gone. Counting it would let any client eject origins.
			t.abandon()
			return errors.Join(ErrClientBody, err)
		}
		if !t.endTry(err, resp.StatusCode()) {
			return t.result()
		}
	}
}

// pickUntried asks the policy for a host and, if it was tried already on this
// request, takes the next untried host of the set instead, so a retry goes elsewhere.
//
// When every host of the set was tried, a retry goes to an untried host of the
// whole pool that is not drained (one that health holds out), else to the
// policy's pick again. Both were found under load with an origin SIGKILLed
// (issue 14, failover tail): with one host ejected a moment earlier (a blip) and
// the other just killed, the set held only the dead host until its health checks
// failed, and every request failed on it although the ejected host could answer;
// and a try that timed out on the only live host is worth one more go. Either
// stays within the attempts and the retry budget.
func pickUntried(p balancer.Policy, set *upstream.Set, all []*upstream.Upstream, req *fasthttp.Request, clientIP net.IP, tried []*upstream.Upstream) *upstream.Upstream {
	u := p.Pick(set, req, clientIP)
	if u == nil || !contains(tried, u) {
		return u
	}
	n := len(set.Hosts)
	start := 0
	for i, h := range set.Hosts {
		if h == u {
			start = i
			break
		}
	}
	for k := 1; k < n; k++ {
		if c := set.Hosts[(start+k)%n]; !contains(tried, c) {
			return c
		}
	}
	for _, c := range all {
		if !c.Drained() && !contains(tried, c) {
			return c
		}
	}
	return u
}

func contains(list []*upstream.Upstream, u *upstream.Upstream) bool {
	for _, x := range list {
		if x == u {
			return true
		}
	}
	return false
}

// finish records metrics and the access log, then recycles the exchange.
func (s *Server) finish(ex *exchange) {
	ctx := ex.ctx
	ex.setForwarded() // a request id admit left pending (a panic on the raw path)
	// Echo the request id to the client (after forwarding, which resets the response).
	if id := ctx.Request.Header.PeekBytes(keyRequestID); validRequestID(id) {
		ctx.Response.Header.SetCanonical(keyRequestID, id)
	}
	ex.scratch = ensureDate(&ctx.Response.Header, ex.start, ex.scratch)
	if s.drainSince.Load() != 0 {
		// Draining: keep-alive clients reconnect elsewhere (HTTP/2 and 3 drop
		// the header; their connections end with GOAWAY at shutdown).
		ctx.Response.SetConnectionClose()
	}
	s.record(ex)
}

// record counts the answer in the metrics, writes its access log line and
// recycles the exchange: finish's second half, all an answer the loop wrote
// itself (serveRaw) still needs.
func (s *Server) record(ex *exchange) {
	ctx := ex.ctx
	code := ctx.Response.StatusCode()
	s.metrics.RequestOn(code, ex.stripe)
	if rt := ex.rt; rt.logEvery > 0 {
		if n := s.logCount.Add(1); code >= 500 || n%rt.logEvery == 0 {
			ex.setForwarded() // the request id of a raw hit, for the line
			s.logAccess(ex, code)
		}
	}
	s.releaseExchange(ex)
}
