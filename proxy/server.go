package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/novashop/edge/proxy/accesslog"
	"github.com/novashop/edge/proxy/auth"
	"github.com/novashop/edge/proxy/balancer"
	"github.com/novashop/edge/proxy/config"
	"github.com/novashop/edge/proxy/evloop"
	"github.com/novashop/edge/proxy/h1"
	"github.com/novashop/edge/proxy/proxyproto"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// Options are the parts of a Server that do not come from the YAML file.
type Options struct {
	// Cache is the HTTP cache; nil serves every request from the origins.
	Cache Cache
	// Logger receives the access log and operational messages; nil means no logs.
	Logger *zap.Logger
	// JWTSecret is the HS256 key (from JWT_SECRET). With it, or with
	// cfg.JWT.PublicKeyFile or cfg.JWT.JWKSURL, New builds the token verifier.
	JWTSecret []byte
	// Verifier, when set, is used instead of building one; the Server does not close it.
	Verifier *auth.Verifier
	// Rand is the balancers' randomness; nil means math/rand/v2.
	Rand balancer.Rand
	// AdminToken, when set (from the variable admin.token_env names), is
	// the bearer token mutating admin calls and pprof must present.
	AdminToken string
	// AccessLog, when set, receives the access log (package accesslog: buffered,
	// whole lines per Write; share one locked writer with Logger so lines never
	// interleave). Nil writes access lines through Logger, one at a time.
	AccessLog io.Writer
}

// Server is the edge. Build it with New, serve with Serve and ServeAdmin, apply a new
// configuration with Reload, stop with Shutdown.
type Server struct {
	log      *zap.Logger
	opt      Options
	metrics  *Metrics
	verifier *auth.Verifier
	ownAuth  bool
	cache    Cache

	rt     atomic.Pointer[runtime]
	policy atomic.Pointer[policyBox]

	reloadMu sync.Mutex
	public   *fasthttp.Server
	admin    *fasthttp.Server
	// loops is the event-loop core when io: eventloop (nil: the goroutine core);
	// rest is handleRest as a value made once (see handleInline).
	loops *evloop.Server
	rest  fasthttp.RequestHandler

	exchanges sync.Pool
	// sharedFetch is the Cache's way to the origins for requests whose balancing
	// does not depend on the client address (see fetchFor).
	sharedFetch func(req *fasthttp.Request, resp *fasthttp.Response) error
	logCount    atomic.Uint64
	alog        *accesslog.Writer // nil: access lines through log (accesslog.go)
	closeOnce   sync.Once
	// tls is the HTTPS listener's state (tls.go); nil without tls.listen.
	tls *tlsFront
	// h2c is the plaintext listener's HTTP/2 side (h2c.go); nil without h2c.
	h2c *h2cFront
	// comp compresses answers (compress.go); nil with compression off.
	comp *compressor
	// streamRequestAbove is limits.stream_request_bytes as the listener was built
	// with (0: bodies are read whole by fasthttp and never streamed).
	streamRequestAbove int
	// framer is the h1 framer's limits every HTTP/1.1 listener (plaintext,
	// h2c, TLS, the event loops) was built with: fixed at start.
	framer h1.Limits
	// drainSince is when draining began, in Unix nanoseconds; 0 while not
	// draining (see Drain).
	drainSince atomic.Int64
	// pp is the PROXY protocol policy of the plaintext listener; nil when
	// proxy_protocol is off (proxyprotocol.go).
	pp *proxyproto.Policy
	// noRawHits makes the event loop answer every hit through
	// ctx.Response, for tests that compare it with the raw hit path
	// (serveRaw). Set before Serve.
	noRawHits bool
}

// policyBox lets the policy interface sit behind an atomic.Pointer.
type policyBox struct {
	p balancer.Policy
}

// New builds a Server from a valid configuration and starts its health checks.
func New(cfg config.Config, opt Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opt.Logger
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{log: log, opt: opt, metrics: NewMetrics(), cache: opt.Cache, streamRequestAbove: cfg.Limits.StreamRequestBytes, framer: framerLimits(cfg.Limits)}
	s.setupAccessLog(cfg.AccessLog)
	s.setupProxyProtocol(cfg.ProxyProtocol)
	// 1 while the pool balances over unhealthy hosts (health.panic_threshold).
	s.metrics.set.NewGauge("edge_pool_panic", func() float64 {
		if rt := s.rt.Load(); rt != nil && rt.pool.Available().Panic {
			return 1
		}
		return 0
	})
	s.metrics.set.NewGauge("edge_draining", func() float64 {
		if s.drainSince.Load() != 0 {
			return 1
		}
		return 0
	})
	s.exchanges.New = s.newExchange
	s.sharedFetch = s.cacheFetch(nil)
	switch {
	case opt.Verifier != nil:
		s.verifier = opt.Verifier
	case len(opt.JWTSecret) > 0 || cfg.JWT.PublicKeyFile != "" || cfg.JWT.JWKSURL != "":
		v, err := auth.NewVerifier(auth.Config{
			Secret:        opt.JWTSecret,
			PublicKeyFile: cfg.JWT.PublicKeyFile,
			JWKSURL:       cfg.JWT.JWKSURL,
			Issuer:        cfg.JWT.Issuer,
			Audience:      cfg.JWT.Audience,
			Leeway:        cfg.JWT.Leeway,
		}, log)
		if err != nil {
			return nil, err
		}
		s.verifier, s.ownAuth = v, true
	default:
		if cfg.JWT.Disabled {
			log.Warn("proxy: jwt.disabled: protected routes are forwarded unchecked (the origin still checks tokens)")
		} else {
			log.Warn("proxy: no JWT key configured (JWT_SECRET, jwt.public_key_file or jwt.jwks_url): protected routes answer 401 at the edge")
		}
	}
	if err := s.apply(cfg); err != nil {
		s.Close()
		return nil, err
	}
	s.public = s.newPublicServer(cfg, s.handle)
	s.admin = &fasthttp.Server{
		Handler:      s.adminHandler(),
		ReadTimeout:  cfg.Timeouts.Read,
		WriteTimeout: cfg.Timeouts.Write,
		IdleTimeout:  cfg.Timeouts.Idle,
		// Purge bodies are small; this bounds a careless client.
		MaxRequestBodySize:    1 << 20,
		NoDefaultServerHeader: true,
		CloseOnShutdown:       true,
		Logger:                zapPrintf{log},
	}
	s.setupCompression(cfg.Compression)
	s.setupH2C(cfg)
	if err := s.setupTLS(cfg); err != nil {
		s.Close()
		return nil, err
	}
	// After setupTLS, which may wrap the plaintext handler (redirect to HTTPS,
	// ACME HTTP-01 answers): the event loops serve the same handler.
	// Empty io means the default core, the event loop.
	if cfg.IO != config.IOGoroutine {
		s.loops = s.newLoops(cfg)
	}
	return s, nil
}

// newPublicServer is the fasthttp server of a shoppers' listener, plaintext or
// TLS: one place for the limits, timeouts and header rules both must share.
func (s *Server) newPublicServer(cfg config.Config, handler fasthttp.RequestHandler) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:      handler,
		ErrorHandler: s.handleParseError,
		// Header and body limits of the listener are fixed at start; Reload can only
		// tighten them, through the same checks in handle.
		ReadBufferSize: cfg.Limits.MaxHeaderBytes,
		// Stated rather than left to fasthttp's default: h1.Listener's
		// WriteBuffer must be the same size (publicWriteBuffer).
		WriteBufferSize:    publicWriteBuffer,
		MaxRequestBodySize: cfg.Limits.MaxBodyBytes,
		// Expect: 100-continue with a Content-Length over the limit gets 413
		// instead of 100 Continue (RFC 9110 §10.1.1): the event loop does the
		// same, and a detached connection comes here.
		ExpectHandler: s.expectHandler(cfg.Limits.MaxBodyBytes),
		// With streaming, fasthttp hands the handler a body stream instead of
		// refusing a large body; settleRequestBody enforces MaxBodyBytes then.
		StreamRequestBody:            cfg.Limits.StreamRequestBytes > 0,
		ReadTimeout:                  cfg.Timeouts.Read,
		WriteTimeout:                 cfg.Timeouts.Write,
		IdleTimeout:                  cfg.Timeouts.Idle,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		// A cached or forwarded answer keeps its own Date (RFC 9110 §6.6.1);
		// ensureDate adds one where there is none.
		NoDefaultDate: true,
		// The handler reads the clock once per request itself; without this
		// fasthttp would read it again for RequestCtx.Time, which the edge does
		// not use (a clock read costs 70–200 ns on the benchmark VM).
		LazyRequestTime:       true,
		CloseOnShutdown:       true,
		SecureErrorLogMessage: true,
		Logger:                zapPrintf{s.log},
		// Header names must stay normalised: removing a client's "x-user-id" relies
		// on it being stored as "X-User-Id".
		DisableHeaderNamesNormalizing: false,
	}
}

// expectHandler is fasthttp's ExpectHandler for a listener whose bodies are
// limited to maxBody bytes. fasthttp calls it for an HTTP/1.1 request with
// Expect: 100-continue once its header section is read; 100 lets fasthttp send
// 100 Continue and read the body. A declared length over maxBody is refused
// there (413, the answer handleParseError gives for a body too large, and a
// close), so the client is not asked for a body the edge would refuse; with
// streaming (limits.stream_request_bytes) fasthttp would otherwise send 100
// and wait for it. So is a protected route's missing or invalid token
// (refuseBeforeBody). Everything else is judged by the handler once the body
// is in, after the 100.
func (s *Server) expectHandler(maxBody int) func(*fasthttp.RequestCtx) int {
	return func(ctx *fasthttp.RequestCtx) int {
		if maxBody > 0 && ctx.Request.Header.ContentLength() > maxBody {
			// fasthttp keeps ctx.Response and only sets the status we return.
			s.handleParseError(ctx, fasthttp.ErrBodyTooLarge)
			return fasthttp.StatusRequestEntityTooLarge
		}
		if s.refuseBeforeBody(ctx) {
			ensureDateNow(&ctx.Response.Header)
			s.metrics.Request(ctx.Response.StatusCode())
			return ctx.Response.StatusCode()
		}
		return fasthttp.StatusContinue
	}
}

// zapPrintf adapts zap to fasthttp's Logger.
type zapPrintf struct{ log *zap.Logger }

func (z zapPrintf) Printf(format string, args ...any) {
	if ce := z.log.Check(zap.WarnLevel, "fasthttp"); ce != nil {
		ce.Write(zap.String("msg", fmt.Sprintf(format, args...)))
	}
}

// Metrics returns the server's Prometheus series.
func (s *Server) Metrics() *Metrics { return s.metrics }

// Handler is the public request handler (for tests and custom listeners).
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }

// Serve answers shoppers' traffic on ln until Shutdown. Every connection's bytes
// pass a strict HTTP/1.1 framer (package h1) before fasthttp reads them: a request
// it rejects is answered by handleParseError, after the earlier pipelined ones.
// With io: eventloop the event loops serve it (see docs/io-core.md).
func (s *Server) Serve(ln net.Listener) error {
	if s.loops != nil {
		return s.loops.Serve(ln)
	}
	if s.h2c != nil {
		return s.serveH2C(s.proxyListener(ln))
	}
	return s.public.Serve(&h1.Listener{Listener: s.proxyListener(ln), Limits: s.framer, WriteBuffer: publicWriteBuffer})
}

// publicWriteBuffer is the plaintext listener's write buffer per connection
// (fasthttp's default size). Its connections hold a full buffer flushed in the
// middle of an answer and send it with the rest in one writev
// (h1.Conn.SetWriteBuffer): one write system call per answer where bufio took
// two for anything above ~3.5 KB, with no larger buffer kept per connection.
const publicWriteBuffer = 4096

// ServeAdmin answers the admin API on ln until Shutdown.
func (s *Server) ServeAdmin(ln net.Listener) error { return s.admin.Serve(ln) }

// Shutdown stops accepting connections, waits for in-flight requests to finish (or
// ctx to end), then stops health checks and releases the verifier and cache.
func (s *Server) Shutdown(ctx context.Context) error {
	var loopErr error
	if s.loops != nil {
		loopErr = s.loops.Shutdown(ctx)
	}
	err := errors.Join(loopErr, s.public.ShutdownWithContext(ctx), s.admin.ShutdownWithContext(ctx), s.shutdownTLS(ctx), s.shutdownH2C(ctx))
	s.Close()
	return err
}

// Drain marks the edge as leaving the fleet: GET /readyz answers 503 so the
// load balancer in front stops sending new connections, and every HTTP/1.x
// answer carries Connection: close so keep-alive clients reconnect (to
// another edge) instead of reusing this one. Requests are still served in
// full meanwhile. It returns when draining began: an edge drained earlier
// (POST /admin/drain from a preStop hook) keeps its first instant, so SIGTERM
// waits only for what is left of timeouts.drain.
func (s *Server) Drain() time.Time {
	s.drainSince.CompareAndSwap(0, time.Now().UnixNano())
	return time.Unix(0, s.drainSince.Load())
}

// Undrain makes the edge ready again (an operator's drain called off).
func (s *Server) Undrain() { s.drainSince.Store(0) }

// Draining reports whether the edge drains, and since when.
func (s *Server) Draining() (time.Time, bool) {
	n := s.drainSince.Load()
	if n == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}

// Close stops health checks and releases the verifier, the cache and idle upstream
// connections, without waiting for requests. Safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		if s.loops != nil {
			s.loops.Close()
		}
		if s.tls != nil {
			s.tls.close()
		}
		if rt := s.rt.Load(); rt != nil {
			rt.stop()
			rt.pool.CloseIdle()
		}
		if s.ownAuth {
			s.verifier.Close()
		}
		if s.cache != nil {
			s.cache.Close()
		}
		if s.alog != nil {
			// Last: after Shutdown drained the requests, so no line is lost.
			_ = s.alog.Close()
		}
	})
}

// Policy returns the current balancing policy's name.
func (s *Server) Policy() string { return s.policy.Load().p.Name() }

// SetPolicy switches the balancing policy at run time; requests in flight finish
// with the policy they started with, new ones use the new one. hashKey is only read
// for "hash" ("" keeps the configured key).
func (s *Server) SetPolicy(name, hashKey string) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if hashKey == "" {
		hashKey = s.rt.Load().cfg.Balancer.HashKey
	}
	p, err := newPolicy(name, hashKey, s.opt.Rand)
	if err != nil {
		return err
	}
	s.policy.Store(&policyBox{p})
	s.log.Info("proxy: balancer switched", zap.String("policy", name))
	return nil
}

func newPolicy(name, hashKey string, rnd balancer.Rand) (balancer.Policy, error) {
	key, err := balancer.ParseHashKey(hashKey)
	if err != nil {
		return nil, err
	}
	return balancer.New(name, balancer.Options{HashKey: key, Rand: rnd})
}

// handleParseError answers requests fasthttp could not read, in the edge's JSON form.
func (s *Server) handleParseError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var op *net.OpError
	var bad *h1.Error
	conn, _ := ctx.Conn().(*h1.Conn)
	switch {
	case errors.As(err, &bad):
		writeError(ctx, bad.Status(), bad.Message())
	case errors.As(err, &small):
		writeError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, "request header too large")
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, "request body too large")
	case errors.As(err, &op) && op.Timeout():
		writeError(ctx, fasthttp.StatusRequestTimeout, "request timeout")
	case conn != nil && errors.As(conn.Err(), &bad):
		// fasthttp failed on the rejected request without wrapping the framer's error.
		writeError(ctx, bad.Status(), bad.Message())
	default:
		writeError(ctx, fasthttp.StatusBadRequest, "malformed request")
	}
	ensureDateNow(&ctx.Response.Header)
	s.metrics.Request(ctx.Response.StatusCode())
}

// framerLimits are the h1 framer's limits from the configuration.
func framerLimits(l config.Limits) h1.Limits {
	return h1.Limits{
		MaxHeaderBytes:      l.MaxHeaderBytes,
		MaxRequestLineBytes: l.MaxRequestLineBytes,
		MaxFieldLineBytes:   l.MaxFieldLineBytes,
		MaxHeaders:          l.MaxHeaderFields,
		UnfoldObsFold:       l.ObsFold == "unfold",
		// limits.dangerous_framing: tolerate (h1.Limits doc).
		TolerateDangerousFraming: l.DangerousFraming == "tolerate",
	}
}

// recoverPanic turns a panic in the handler into a JSON 500 and a logged stack.
func (s *Server) recoverPanic(ctx *fasthttp.RequestCtx) {
	if r := recover(); r != nil {
		s.recoverPanicValue(ctx, r)
	}
}

// recoverPanicValue answers a recovered panic r.
func (s *Server) recoverPanicValue(ctx *fasthttp.RequestCtx, r any) {
	s.metrics.Panics.Inc()
	s.log.Error("proxy: panic in handler", zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
	ctx.Response.Reset()
	writeError(ctx, fasthttp.StatusInternalServerError, "internal error")
}
