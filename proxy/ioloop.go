package proxy

import (
	"net"

	"github.com/novashop/edge/proxy/config"
	"github.com/novashop/edge/proxy/evloop"
	"github.com/novashop/edge/proxy/h1"
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
	limits := h1.Limits{MaxHeaderBytes: cfg.Limits.MaxHeaderBytes}
	return evloop.New(evloop.Config{
		Handler:      s.public.Handler,
		Inline:       inline,
		ErrorHandler: s.handleParseError,
		// As on the goroutine core: a cache hit keeps its stored Date (date.go).
		NoDefaultDate: true,
		// A detached connection (streamed upload) goes on through the same
		// framer as the goroutine core's connections.
		Fallback:       func(c net.Conn) error { return s.public.ServeConn(h1.NewConn(c, limits)) },
		MaxHeaderBytes: cfg.Limits.MaxHeaderBytes,
		MaxBodyBytes:   cfg.Limits.MaxBodyBytes,
		StreamAbove:    cfg.Limits.StreamRequestBytes,
		ReadTimeout:    cfg.Timeouts.Read,
		WriteTimeout:   cfg.Timeouts.Write,
		IdleTimeout:    cfg.Timeouts.Idle,
		Logger:         zapPrintf{s.log},
	})
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
	lc, ok := s.cache.(LocalServer)
	if !ok {
		return false, nil
	}
	h := &ctx.Request.Header
	m := h.Method()
	if string(m) != fasthttp.MethodGet && string(m) != fasthttp.MethodHead {
		return false, nil
	}
	rt := s.rt.Load()
	if acc := routeAccess(m, ctx.Path()); acc != accessPublic && !rt.cfg.JWT.Disabled {
		return false, nil
	}
	ex := s.acquireExchange(ctx, rt)
	if !s.admitInline(ctx, ex, lc) {
		ctx.SetUserValue(exchangeKey, ex)
		return false, s.rest
	}
	s.finish(ex)
	return true, nil
}

// admitInline reports whether the request was answered on the loop.
func (s *Server) admitInline(ctx *fasthttp.RequestCtx, ex *exchange, lc LocalServer) (answered bool) {
	defer func() {
		if r := recover(); r != nil {
			answered = true
			s.recoverPanicValue(ctx, r)
		}
	}()
	if !s.admit(ctx, ex) {
		return true
	}
	if lc.TryServeLocal(ctx) {
		s.finishAnswer(ctx)
		return true
	}
	return false
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
