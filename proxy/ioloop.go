package proxy

import (
	"errors"
	"net"
	"net/netip"
	goruntime "runtime"

	"github.com/novashop/edge/cachekeys"
	"github.com/novashop/edge/proxy/cache"
	"github.com/novashop/edge/proxy/config"
	"github.com/novashop/edge/proxy/evloop"
	"github.com/novashop/edge/proxy/h1"
	"github.com/novashop/edge/proxy/upstream"
	"github.com/valyala/fasthttp"
)

// newLoops builds the event-loop core (io: eventloop) over the same handler,
// parse-error answers and limits as the goroutine core. A request the local
// cache tier can answer runs on the loop (handleInline); everything else is
// handed off to a goroutine, since the handler may block on Redis, the origins or
// JWKS. A request whose body streams (limits.stream_request_bytes) detaches its
// connection to the goroutine core, s.public.
func (s *Server) newLoops(cfg config.Config) *evloop.Server {
	s.rest = s.handleRest
	inline := s.handleInline
	if cfg.TLS.RedirectHTTP || len(cfg.TLS.ACME.Domains) > 0 {
		// setupTLS put its own handler (308 to HTTPS, ACME challenges) in front
		// of s.handle; the inline path would bypass it.
		inline = nil
	}
	limits := s.framer
	// io_loops picks the loop count; 0 keeps one loop per GOMAXPROCS. GOMAXPROCS
	// itself is left alone: with fewer loops than Ps, the handed-off handlers,
	// the GC and the timers still use the other cores (docs/io-core.md).
	loops := cfg.IOLoops
	if loops <= 0 {
		loops = goruntime.GOMAXPROCS(0)
	}
	return evloop.New(evloop.Config{
		Loops:        loops,
		BatchWait:    cfg.IOBatchWait,
		Handler:      s.public.Handler,
		Inline:       inline,
		ErrorHandler: s.handleParseError,
		// A protected route's missing or invalid token is answered before
		// 100 Continue, as the goroutine core's expectHandler does.
		Expect: func(ctx *fasthttp.RequestCtx) bool {
			if !s.refuseBeforeBody(ctx) {
				return false
			}
			ensureDateNow(&ctx.Response.Header)
			s.metrics.Request(ctx.Response.StatusCode())
			return true
		},
		// As on the goroutine core: a cache hit keeps its stored Date (date.go).
		NoDefaultDate: true,
		// A detached connection (streamed upload) goes on through the same
		// framer as the goroutine core's connections; one handed over in
		// a request accepted through limits.dangerous_framing: tolerate
		// closes after it (the loop's framer rewrote what it tolerated).
		Fallback: func(c net.Conn) error {
			fc := h1.NewConn(c, limits)
			if m, ok := c.(interface{ MustClose() bool }); ok && m.MustClose() {
				fc.CloseAfterMessage()
			}
			return s.public.ServeConn(fc)
		},
		MaxHeaderBytes: cfg.Limits.MaxHeaderBytes,
		Framer:         limits,
		MaxBodyBytes:   cfg.Limits.MaxBodyBytes,
		StreamAbove:    cfg.Limits.StreamRequestBytes,
		ReadTimeout:    cfg.Timeouts.Read,
		WriteTimeout:   cfg.Timeouts.Write,
		IdleTimeout:    cfg.Timeouts.Idle,
		Logger:         zapPrintf{s.log},
		// Uncached GET/HEAD requests are forwarded from the loops (forwardInline).
		Forwarded: s.forwarded,
		// Ordinary answers pass through without a fasthttp.Response
		// (evloop/answer.go) unless compression may rewrite their bodies.
		// The handler deletes Cache-Tag and the edge's Cache-Control from
		// every answer (finishAnswer) and sets X-Request-Id (finish).
		LightAnswers:        s.comp == nil && lightAnswers,
		DropAnswerFields:    []string{headerCacheTag, cachekeys.HeaderEdgeCacheControl},
		SetAnswerFields:     []string{string(keyRequestID)},
		MaxForwardBytes:     loopForwardBytes(&cfg),
		UpstreamHeaderBytes: max(cfg.Limits.MaxHeaderBytes, 4096),
		UpstreamIdleTimeout: cfg.Timeouts.UpstreamIdle,
		// Each loop's share of the per-origin connection cap (rounded up), so
		// the loops together hold about what one HostClient would.
		MaxUpstreamConns:    (cfg.Limits.MaxConnsPerUpstream + loops - 1) / loops,
		UpstreamDialTimeout: cfg.Timeouts.Dial,
		// Safe requests to one origin share a connection (evloop/pipeline.go);
		// each try gives its host's own depth (tryOnLoop), so this is only
		// the default of Forward.
		PipelineDepth: cfg.Limits.UpstreamPipelineDepth,
		// The PROXY header is read on the loop (nil: proxy_protocol off).
		ProxyProtocol: s.pp,
		// h2c (prior knowledge): a connection that opens with the HTTP/2
		// preface leaves the loop for the same HTTP/2 server the goroutine
		// core gives it (h2c.go).
		H2C: s.loopH2C(),
	})
}

// loopH2C is evloop.Config.H2C: nil without h2c.
func (s *Server) loopH2C() func(net.Conn) error {
	if s.h2c == nil {
		return nil
	}
	f := s.h2c.f
	return func(c net.Conn) error {
		f.serveConn(c, &h2cConn{laddr: c.LocalAddr(), raddr: c.RemoteAddr()})
		return nil
	}
}

// lightAnswers turns the loops' light answers on (tests compare both paths).
var lightAnswers = true

// loopMaxAnswer is the largest answer body a loop buffers (1 MiB); a larger one
// is handed off to fasthttp's client, which streams it (docs/io-core.md).
const loopMaxAnswer = 1 << 20

// loopForwardBytes bounds what a loop buffers of an answer: loopMaxAnswer, or
// limits.max_response_bytes when lower (beyond, the goroutine path applies the
// limit and its error answer).
func loopForwardBytes(cfg *config.Config) int {
	if m := cfg.Limits.MaxResponseBytes; m > 0 && m < loopMaxAnswer {
		return m
	}
	return loopMaxAnswer
}

// loopForwardable reports whether the loops can reach every host themselves:
// plain HTTP to an IP literal (a name would need a resolver that may block,
// TLS a handshake the loop does not do). Otherwise requests are handed off.
func loopForwardable(hosts []*upstream.Upstream) bool {
	for _, u := range hosts {
		if u.Client.IsTLS {
			return false
		}
		if _, err := netip.ParseAddrPort(u.Addr); err != nil {
			return false
		}
	}
	return true
}

// LocalServer is a Cache that can answer a hit from memory without waiting on
// anything (proxy/cache's local tier); the event-loop core asks it on the loop.
type LocalServer interface {
	TryServeLocal(ctx *fasthttp.RequestCtx) bool
}

// exchangeKey is the user value under which handleInline leaves the exchange for
// handleRest.
const exchangeKey = "edge.exchange"

// handleInline runs on an event loop: the edge's checks (admit), then the local
// cache tier. A hit is answered there and then, with no goroutine and no
// wake-up. Otherwise it returns the continuation (handleRest), which a goroutine
// runs, so rate-limit tokens and header rewrites are not taken twice. Requests
// that could block before the cache (a token check, which may fetch JWKS) or
// that carry a body go straight to the goroutine.
func (s *Server) handleInline(ctx *fasthttp.RequestCtx) (bool, fasthttp.RequestHandler) {
	h := &ctx.Request.Header
	m := h.Method()
	if string(m) != fasthttp.MethodGet && string(m) != fasthttp.MethodHead {
		return false, nil
	}
	rt := s.rt.Load()
	lc, local := s.cache.(LocalServer)
	// Without a cache an uncached GET/HEAD without a body goes to the origin
	// from the loop. A cache's misses and fills stay on a goroutine.
	// (fasthttp reports -2, "no length", for a request without a body.)
	cl := h.ContentLength()
	onLoop := s.cache == nil && rt.loopFwd && (cl == 0 || cl == -2) && len(ctx.Request.Body()) == 0 && !ctx.Request.IsBodyStream()
	if !local && !onLoop {
		return false, nil
	}
	acc := routeAccess(m, ctx.Path())
	if acc != accessPublic && !rt.cfg.JWT.Disabled {
		return false, nil
	}
	// The loop's request context was set up for this request a moment ago
	// (evloop's getCtx: RequestCtx.Init2 reads the clock), so its time is
	// the request's start; a second clock read cost 1-2 % of a hit.
	ex := s.acquireExchangeAt(ctx, rt, ctx.Time())
	ex.acc, ex.accSet = acc, true // admit's, without a second walk of the path
	if onLoop {
		return s.forwardInline(ctx, ex)
	}
	answered, raw := s.admitInline(ctx, ex, lc)
	if !answered {
		ctx.SetUserValue(exchangeKey, ex)
		return false, s.rest
	}
	if raw {
		// The answer is on the wire already: only the records are left.
		s.record(ex)
	} else {
		s.finish(ex)
	}
	return true, nil
}

// forwardInline admits the request on the loop and starts its first try there.
// done false means a try is in flight: the loop calls forwarded when it ends.
func (s *Server) forwardInline(ctx *fasthttp.RequestCtx, ex *exchange) (done bool, rest fasthttp.RequestHandler) {
	pending := false
	func() {
		defer func() {
			if r := recover(); r != nil {
				ex.tries.abandon()
				pending = false
				s.recoverPanicValue(ctx, r)
			}
		}()
		if !s.admit(ctx, ex) {
			return
		}
		ctx.SetUserValue(exchangeKey, ex)
		ex.tries.begin(s, ex.rt, &ctx.Request, ex.clientIP(), ex.start, &ex.note)
		pending = s.tryOnLoop(ctx, ex)
	}()
	if pending {
		return false, nil
	}
	s.finish(ex)
	return true, nil
}

// tryOnLoop starts the next try of ex's request from the loop (evloop.Forward).
// It reports false when no try is in flight any more: ctx then holds the answer.
// A try that fails at once (a refused connection) is decided on the spot.
func (s *Server) tryOnLoop(ctx *fasthttp.RequestCtx, ex *exchange) bool {
	t := &ex.tries
	for {
		u, timeout, ok := t.nextTry()
		if !ok {
			s.endOnLoop(ctx, ex, t.result())
			return false
		}
		// The host's pipeline depth from the request's configuration: a
		// reload that changes it applies from the loop's next round.
		err := evloop.ForwardDepth(ctx, u.Addr, timeout, ex.rt.pipeDepth[u])
		if err == nil {
			return true
		}
		if errors.Is(err, evloop.ErrUnsupported) {
			// The client left or the loop stops: no verdict on the host.
			t.abandon()
			s.endOnLoop(ctx, ex, ErrUpstreamFailed)
			return false
		}
		if !t.endTry(err, 0) {
			s.endOnLoop(ctx, ex, t.result())
			return false
		}
	}
}

// endOnLoop makes the answer of a request forwarded from the loop.
func (s *Server) endOnLoop(ctx *fasthttp.RequestCtx, ex *exchange, err error) {
	if err != nil {
		// A failed try may have left part of an answer.
		evloop.DropAnswer(ctx)
		ctx.Response.Reset()
	}
	s.answerForwarded(ctx, ex, err)
}

// forwarded runs on the loop when a try started by tryOnLoop ends. It decides
// as forward does (endTry): another try from the loop, or the answer. An
// answer too large for the loop is sent again from a goroutine (forwardLarge).
func (s *Server) forwarded(ctx *fasthttp.RequestCtx, err error) (handoff fasthttp.RequestHandler) {
	ex, _ := ctx.UserValue(exchangeKey).(*exchange)
	if ex == nil {
		return nil // not ours: cannot happen, answer what is there
	}
	t := &ex.tries
	defer func() {
		if r := recover(); r != nil {
			t.abandon()
			s.recoverPanicValue(ctx, r)
			s.finish(ex)
			handoff = nil
		}
	}()
	switch {
	case errors.Is(err, evloop.ErrTooLarge):
		t.abandon()
		return s.forwardLarge
	case errors.Is(err, evloop.ErrClientGone):
		t.abandon()
		s.endOnLoop(ctx, ex, ErrUpstreamFailed)
		s.finish(ex)
		return nil
	}
	if t.endTry(err, ctx.Response.StatusCode()) {
		if s.tryOnLoop(ctx, ex) {
			return nil // the next try is in flight
		}
	} else {
		s.endOnLoop(ctx, ex, t.result())
	}
	s.finish(ex)
	return nil
}

// admitInline reports whether the request was answered on the loop, and
// whether that answer went straight to the connection's output (raw: a hit
// whose head the cache keeps serialized; see serveRaw).
func (s *Server) admitInline(ctx *fasthttp.RequestCtx, ex *exchange, lc LocalServer) (answered, raw bool) {
	defer func() {
		if r := recover(); r != nil {
			answered, raw = true, false
			s.recoverPanicValue(ctx, r)
		}
	}()
	rs, rawOK := lc.(RawLocalServer)
	rawOK = rawOK && s.comp == nil && !s.noRawHits
	// A raw hit sends nothing on, so admit leaves the X-Forwarded-* rewrite
	// pending; every other outcome sets it before going on (setForwarded).
	ex.lazyFwd = rawOK
	if !s.admit(ctx, ex) {
		return true, false
	}
	if rawOK {
		if dst, ok := evloop.BeginRaw(ctx); ok {
			switch dst, body, res := rs.TryServeLocalRawFor(ctx, dst, ex); res {
			case cache.RawWritten:
				s.serveRaw(ctx, ex, dst, body)
				return true, true
			case cache.RawAnswered:
				ex.setForwarded()
				s.finishAnswer(ctx)
				return true, false
			}
			ex.setForwarded()
			return false, false
		}
	}
	ex.setForwarded()
	if lc.TryServeLocal(ctx) {
		s.finishAnswer(ctx)
		return true, false
	}
	return false, false
}

// firstCanonical returns the first value of the field named key, which must
// be in fasthttp's canonical form, as PeekBytes would: the loop's requests
// keep fasthttp's name normalisation on (scanInbound relies on it too), so
// an exact comparison finds it without normalising key into a buffer on
// every call (which was 2 % of a raw hit's CPU).
func firstCanonical(h *fasthttp.RequestHeader, key []byte) []byte {
	for k, v := range h.All() {
		if string(k) == string(key) {
			return v
		}
	}
	return nil
}

// RawLocalServer is a LocalServer that keeps its hits' heads serialized
// (proxy/cache's TryServeLocalRaw), so the loop can copy them to the
// connection instead of rebuilding and serializing a ResponseHeader per hit.
type RawLocalServer interface {
	// TryServeLocalRawFor is TryServeLocalRaw with prep called before an
	// entry's Vary lookup reads the request's fields.
	TryServeLocalRawFor(ctx *fasthttp.RequestCtx, dst []byte, prep cache.VaryPreparer) (out, body []byte, res cache.RawHit)
}

// serveRaw completes a hit the cache wrote as bytes (cache.RawWritten: the
// head up to Cache-Status in dst) with what finishAnswer and finish add to
// the ResponseHeader path's answer, in the same order: finishAnswer's
// deletions have nothing to delete (such entries are not served raw) and,
// without compression, that is all it does; finish echoes the request id
// and asks for a close while draining; the stored Date stays. EndRaw adds
// the connection's own fields, the blank line and the body.
func (s *Server) serveRaw(ctx *fasthttp.RequestCtx, ex *exchange, dst, body []byte) {
	id := ex.genID // made by admit, not set in the request (idPending)
	if !ex.idPending {
		id = firstCanonical(&ctx.Request.Header, keyRequestID)
	}
	if validRequestID(id) {
		dst = append(dst, keyRequestID...)
		dst = append(dst, ": "...)
		dst = append(dst, id...)
		dst = append(dst, "\r\n"...)
	}
	evloop.EndRaw(ctx, dst, body, s.drainSince.Load() != 0)
}

// handleRest finishes on a goroutine a request handleInline admitted.
func (s *Server) handleRest(ctx *fasthttp.RequestCtx) {
	ex, _ := ctx.UserValue(exchangeKey).(*exchange)
	if ex == nil {
		s.handle(ctx)
		return
	}
	defer s.finish(ex)
	defer s.recoverPanic(ctx)
	s.serveAdmitted(ctx, ex)
}

// forwardLarge sends again, from a goroutine through fasthttp's client, a
// request whose answer was too large for the loop to buffer; that path streams
// it (limits.stream_response_bytes) or applies limits.max_response_bytes. The
// tries go on where the loop left them (the abandoned try does not count).
func (s *Server) forwardLarge(ctx *fasthttp.RequestCtx) {
	ex, _ := ctx.UserValue(exchangeKey).(*exchange)
	if ex == nil {
		s.handle(ctx)
		return
	}
	defer s.finish(ex)
	defer s.recoverPanic(ctx)
	err := s.forwardTries(&ex.tries, &ctx.Response, ex.rt.cfg.Limits.StreamResponseBytes)
	s.answerForwarded(ctx, ex, err)
}
