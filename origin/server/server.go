package server

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/fasthttp/router"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/novashop/edge/origin/api"
	"github.com/novashop/edge/origin/cart"
	"github.com/novashop/edge/origin/catalog"
	"github.com/novashop/edge/origin/loginguard"
	"github.com/novashop/edge/origin/orders"
	"github.com/novashop/edge/origin/reviews"
	"github.com/novashop/edge/origin/tagbump"
	"github.com/novashop/edge/origin/tokens"
	"github.com/novashop/edge/origin/users"
)

// HeaderServedBy names the origin instance that answered.
const HeaderServedBy = "X-Served-By"

// ErrConfig means Deps are incomplete; the message says which field.
var ErrConfig = errors.New("server: bad configuration")

// Deps is everything the server needs. Pool, Keys and Name are required.
type Deps struct {
	// Name is stamped on every answer as X-Served-By.
	Name string
	// Pool is the PostgreSQL pool.
	Pool *pgxpool.Pool
	// Redis receives cache-tag bumps; nil runs without (writes still send
	// Cache-Invalidate so the edge can bump).
	Redis rueidis.Client
	// Keys issue and verify tokens.
	Keys *tokens.Keys
	// Log is the logger; nil means no logs.
	Log *zap.Logger
	// AccessLog logs one line per request at Info.
	AccessLog bool
	// BcryptCost for new passwords; 0 means bcrypt.DefaultCost.
	BcryptCost int
	// InjectLatency delays every answer but the ops endpoints (lab knob).
	InjectLatency time.Duration
	// InjectErrorRate answers this fraction (0..1) of requests, ops
	// endpoints excepted, with a 503 (lab knob).
	InjectErrorRate float64
	// Rand returns [0,1); injectable for tests. Nil means math/rand/v2.
	Rand func() float64
	// BumpRetryEvery is the period of the tag-bump retry loop; default 2 s.
	BumpRetryEvery time.Duration
	// Replica, when set, is a read replica of Pool: shared catalog reads
	// (categories, product lists and pages, review lists, on the API and
	// the storefront) go there; writes and reads that must see the
	// caller's own writes stay on Pool. Nil reads everything from Pool.
	Replica *pgxpool.Pool
	// LoginThrottle limits failed logins per username (API and storefront
	// together); the zero value means 10 failures per minute.
	LoginThrottle loginguard.Config
	// RefreshSweepEvery is the period of the expired-refresh-token sweep;
	// 0 means users.DefaultSweepEvery (10 minutes).
	RefreshSweepEvery time.Duration
	// Mount hooks add routes (the storefront) after the API's.
	Mount []func(r *router.Router, env *api.Env)
}

// Domains gives route hooks in-process access to the domain services.
type Domains struct {
	Users   *users.Service
	Catalog *catalog.Store
	Reviews *reviews.Store
	Cart    *cart.Store
	Orders  *orders.Store
}

// Server is the origin's HTTP server.
type Server struct {
	// Router holds every route; add more before Serve.
	Router *router.Router
	// Env is shared by the handlers.
	Env *api.Env
	// Domains are the services behind the API.
	Domains Domains

	deps    Deps
	http    *fasthttp.Server
	metrics *metricsSet
	handler fasthttp.RequestHandler
	cancel  context.CancelFunc
	bg      sync.WaitGroup
	once    sync.Once
}

// New builds the server and its routes.
func New(d Deps) (*Server, error) {
	switch {
	case d.Name == "":
		return nil, fmt.Errorf("%w: Name is required", ErrConfig)
	case d.Pool == nil:
		return nil, fmt.Errorf("%w: Pool is required", ErrConfig)
	case d.Keys == nil:
		return nil, fmt.Errorf("%w: Keys are required", ErrConfig)
	case d.InjectErrorRate < 0 || d.InjectErrorRate > 1:
		return nil, fmt.Errorf("%w: inject error rate must be within 0..1", ErrConfig)
	case d.InjectLatency < 0:
		return nil, fmt.Errorf("%w: inject latency must not be negative", ErrConfig)
	}
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	if d.Rand == nil {
		d.Rand = rand.Float64
	}
	if d.BumpRetryEvery <= 0 {
		d.BumpRetryEvery = 2 * time.Second
	}
	logins, err := loginguard.New(d.LoginThrottle)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	env := &api.Env{Pool: d.Pool, Replica: d.Replica, Keys: d.Keys, Bumps: tagbump.New(d.Pool, d.Redis, d.Log),
		Log: d.Log, BcryptCost: d.BcryptCost, Logins: logins}
	usvc, err := users.ForEnv(env)
	if err != nil {
		return nil, err
	}
	r := router.New()
	r.SaveMatchedRoutePath = true
	r.NotFound = func(ctx *fasthttp.RequestCtx) {
		api.WriteErrorMessage(ctx, fasthttp.StatusNotFound, "no such route: "+string(ctx.Path()))
	}
	r.MethodNotAllowed = func(ctx *fasthttp.RequestCtx) {
		api.WriteErrorMessage(ctx, fasthttp.StatusMethodNotAllowed,
			"method not allowed here; allowed: "+string(ctx.Response.Header.Peek(fasthttp.HeaderAllow)))
	}
	s := &Server{Router: r, Env: env, deps: d, metrics: newMetricsSet(d.Pool)}
	cat := catalog.NewHandlers(env)
	rev := reviews.NewHandlers(env)
	crt := cart.NewHandlers(env)
	ord := orders.NewHandlers(env)
	usr := users.NewHandlers(env, usvc)
	for _, reg := range []interface{ Register(*router.Router) }{usr, cat, rev, crt, ord} {
		reg.Register(r)
	}
	s.Domains = Domains{Users: usvc, Catalog: cat.Store, Reviews: rev.Store, Cart: crt.Store, Orders: ord.Store}
	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.GET("/metrics", s.metrics.serve)
	for _, m := range d.Mount {
		m(r, env)
	}
	s.handler = s.wrap(s.route)
	s.http = &fasthttp.Server{
		Handler:               s.handler,
		Name:                  "novashop-origin",
		MaxRequestBodySize:    api.MaxBody,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           90 * time.Second,
		NoDefaultServerHeader: true,
		ErrorHandler:          s.parseError,
		Logger:                zapPrintf{d.Log},
	}
	return s, nil
}

// route runs the router, with HEAD routed as GET: RFC 9110 §9.3.2 says HEAD
// is GET without the body and a server should answer it wherever it
// answers GET. Routing it as GET covers every route (the storefront's and
// routes added after New too) and keeps GET's redirects, 404s and 405s.
// The method is restored before the answer is written, so fasthttp drops
// the body while keeping every header, Content-Length included.
func (s *Server) route(ctx *fasthttp.RequestCtx) {
	if !ctx.IsHead() {
		s.Router.Handler(ctx)
		return
	}
	ctx.Request.Header.SetMethod(fasthttp.MethodGet)
	defer ctx.Request.Header.SetMethod(fasthttp.MethodHead)
	s.Router.Handler(ctx)
}

// Handler is the full middleware chain, for in-process tests and benchmarks.
func (s *Server) Handler() fasthttp.RequestHandler { return s.handler }

// Serve answers on ln and runs the tag-bump retry loop until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.startBackground()
	err := s.http.Serve(ln)
	return err
}

func (s *Server) startBackground() {
	s.once.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		s.cancel = cancel
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			s.Env.Bumps.Run(ctx, s.deps.BumpRetryEvery)
		}()
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			s.Domains.Users.RunSweeper(ctx, s.deps.RefreshSweepEvery, s.deps.Log)
		}()
	})
}

// OpenConnections is the number of client connections open now; drain
// checks and tests use it.
func (s *Server) OpenConnections() int { return int(s.http.GetOpenConnectionsCount()) }

// Shutdown stops accepting connections, lets in-flight requests finish
// (until ctx ends) and stops the background loop.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.ShutdownWithContext(ctx)
	if s.cancel != nil {
		s.cancel()
	}
	s.bg.Wait()
	return err
}

func (s *Server) healthz(ctx *fasthttp.RequestCtx) {
	api.Private(ctx)
	api.WriteJSON(ctx, fasthttp.StatusOK, map[string]string{"status": "ok", "name": s.deps.Name})
}

func (s *Server) readyz(ctx *fasthttp.RequestCtx) {
	api.Private(ctx)
	c, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.deps.Pool.Ping(c); err != nil {
		api.WriteErrorMessage(ctx, fasthttp.StatusServiceUnavailable, "database unreachable")
		return
	}
	// Catalog pages are read from the replica: an origin that cannot reach
	// it would answer them 500, so it is not ready either.
	if s.deps.Replica != nil {
		if err := s.deps.Replica.Ping(c); err != nil {
			api.WriteErrorMessage(ctx, fasthttp.StatusServiceUnavailable, "read replica unreachable")
			return
		}
	}
	api.WriteJSON(ctx, fasthttp.StatusOK, map[string]string{"status": "ready", "name": s.deps.Name})
}

// parseError answers requests fasthttp could not read (oversized or
// malformed) in the API's JSON error shape.
func (s *Server) parseError(ctx *fasthttp.RequestCtx, err error) {
	ctx.Response.Header.Set(HeaderServedBy, s.deps.Name)
	ctx.SetConnectionClose()
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		api.WriteErrorMessage(ctx, fasthttp.StatusRequestEntityTooLarge, "request body is larger than 1 MiB")
		return
	}
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		api.WriteErrorMessage(ctx, fasthttp.StatusRequestTimeout, "request timed out")
		return
	}
	api.WriteErrorMessage(ctx, fasthttp.StatusBadRequest, "malformed HTTP request")
}

type zapPrintf struct{ l *zap.Logger }

func (z zapPrintf) Printf(format string, args ...any) {
	z.l.Sugar().Debugf(format, args...)
}
