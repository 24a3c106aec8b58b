package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/fasthttp/router"
	"github.com/novashop/edge/proxy/cache"
	"github.com/novashop/edge/proxy/upstream"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"
	"go.uber.org/zap"
)

// UpstreamStatus is one host in GET /admin/upstreams.
type UpstreamStatus struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// State is up, down, draining or slow-start.
	State string `json:"state"`
	// Weight is the configured weight.
	Weight int `json:"weight"`
	// EffectiveWeight is the weight after slow start.
	EffectiveWeight int     `json:"effective_weight"`
	InFlight        int64   `json:"in_flight"`
	EWMAms          float64 `json:"ewma_ms"`
	// Failures is the consecutive failed requests since the last success.
	Failures int64 `json:"failures"`
}

// UpstreamsStatus is the body of GET /admin/upstreams.
type UpstreamsStatus struct {
	Balancer  string           `json:"balancer"`
	Upstreams []UpstreamStatus `json:"upstreams"`
}

// Status reports the balancer and every configured host, as GET /admin/upstreams does.
func (s *Server) Status() UpstreamsStatus {
	rt := s.rt.Load()
	now := time.Now()
	out := UpstreamsStatus{Balancer: s.Policy(), Upstreams: make([]UpstreamStatus, 0, len(rt.pool.All()))}
	for _, u := range rt.pool.All() {
		out.Upstreams = append(out.Upstreams, statusOf(u, now))
	}
	return out
}

func statusOf(u *upstream.Upstream, now time.Time) UpstreamStatus {
	return UpstreamStatus{
		Name: u.Name, URL: u.URL, State: u.State(now).String(), Weight: u.Weight,
		EffectiveWeight: u.EffectiveWeight(now), InFlight: u.InFlight(),
		EWMAms: float64(u.EWMA().Microseconds()) / 1000, Failures: u.Failures(),
	}
}

// purgeRequest is the body of POST /admin/purge.
type purgeRequest struct {
	Keys   []string `json:"keys"`
	Tags   []string `json:"tags"`
	Prefix string   `json:"prefix"`
	Soft   bool     `json:"soft"`
}

func (s *Server) adminHandler() fasthttp.RequestHandler {
	r := router.New()
	r.RedirectTrailingSlash = false
	r.GET("/healthz", func(ctx *fasthttp.RequestCtx) { writeJSON(ctx, 200, map[string]string{"status": "ok"}) })
	r.GET("/readyz", s.adminReady)
	r.POST("/admin/drain", func(ctx *fasthttp.RequestCtx) { s.adminSelfDrain(ctx, true) })
	r.POST("/admin/undrain", func(ctx *fasthttp.RequestCtx) { s.adminSelfDrain(ctx, false) })
	r.GET("/metrics", func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
		s.metrics.WritePrometheus(ctx)
		if mw, ok := s.cache.(PrometheusWriter); ok {
			mw.WritePrometheus(ctx)
		}
	})
	r.ANY("/debug/pprof/{profile:*}", pprofhandler.PprofHandler)
	r.GET("/debug/pprof/", pprofhandler.PprofHandler)
	r.GET("/admin/upstreams", func(ctx *fasthttp.RequestCtx) { writeJSON(ctx, 200, s.Status()) })
	r.GET("/admin/tls", s.adminTLS)
	r.PUT("/admin/balancer", s.adminBalancer)
	r.POST("/admin/upstreams/{name}/drain", func(ctx *fasthttp.RequestCtx) { s.adminDrain(ctx, true) })
	r.POST("/admin/upstreams/{name}/undrain", func(ctx *fasthttp.RequestCtx) { s.adminDrain(ctx, false) })
	r.POST("/admin/purge", s.adminPurge)
	r.NotFound = func(ctx *fasthttp.RequestCtx) { writeError(ctx, fasthttp.StatusNotFound, "no such admin route") }
	r.MethodNotAllowed = func(ctx *fasthttp.RequestCtx) {
		writeError(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed")
	}
	h := r.Handler
	if s.opt.AdminToken == "" {
		return func(ctx *fasthttp.RequestCtx) {
			defer s.recoverPanic(ctx)
			h(ctx)
		}
	}
	want := sha256.Sum256([]byte(s.opt.AdminToken))
	return func(ctx *fasthttp.RequestCtx) {
		defer s.recoverPanic(ctx)
		if !adminAllowed(ctx, &want) {
			ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="novashop-edge admin"`)
			writeError(ctx, fasthttp.StatusUnauthorized, adminDenial(ctx))
			return
		}
		h(ctx)
	}
}

// adminOpen reports whether a call needs no token: reads of the health
// check, the metrics and the upstreams' state. Everything else (purge,
// drain, balancer, pprof, which can run a CPU profile) is a lever.
func adminOpen(ctx *fasthttp.RequestCtx) bool {
	if !ctx.IsGet() && !ctx.IsHead() {
		return false
	}
	switch string(ctx.Path()) {
	case "/healthz", "/readyz", "/metrics", "/admin/upstreams":
		return true
	}
	return false
}

// tokenInQuery reports whether the query string carries something that
// looks like a credential: tokens travel only in the Authorization header,
// never in URLs that logs, proxies and shell histories keep.
func tokenInQuery(ctx *fasthttp.RequestCtx) bool {
	found := false
	for k := range ctx.QueryArgs().All() {
		switch strings.ToLower(string(k)) {
		case "token", "access_token", "admin_token", "bearer", "authorization":
			found = true
		}
	}
	return found
}

// adminAllowed checks the bearer token in constant time (digests of equal
// length, so the token's length does not leak either).
func adminAllowed(ctx *fasthttp.RequestCtx, want *[sha256.Size]byte) bool {
	if tokenInQuery(ctx) {
		return false
	}
	if adminOpen(ctx) {
		return true
	}
	h := ctx.Request.Header.Peek("Authorization")
	const prefix = "Bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(string(h[:len(prefix)]), prefix) {
		return false
	}
	got := sha256.Sum256(h[len(prefix):])
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

func adminDenial(ctx *fasthttp.RequestCtx) string {
	switch {
	case tokenInQuery(ctx):
		return "admin tokens travel only in the Authorization header, never in the query string"
	case len(ctx.Request.Header.Peek("Authorization")) == 0:
		return "this admin call needs Authorization: Bearer TOKEN"
	default:
		return "wrong admin token"
	}
}

// drainState is the body of /readyz, POST /admin/drain and /admin/undrain.
type drainState struct {
	Status   string `json:"status"` // ready or draining
	Draining bool   `json:"draining"`
	// Since is when draining began (RFC 3339), absent while ready.
	Since string `json:"since,omitempty"`
}

func (s *Server) drainState() drainState {
	since, ok := s.Draining()
	if !ok {
		return drainState{Status: "ready"}
	}
	return drainState{Status: "draining", Draining: true, Since: since.UTC().Format(time.RFC3339Nano)}
}

// adminReady is the readiness probe: 200 while the edge takes traffic, 503
// while it drains. Liveness stays on /healthz, which a drain does not touch,
// so the kubelet never restarts an edge for draining.
func (s *Server) adminReady(ctx *fasthttp.RequestCtx) {
	st := s.drainState()
	code := fasthttp.StatusOK
	if st.Draining {
		code = fasthttp.StatusServiceUnavailable
	}
	writeJSON(ctx, code, st)
}

// adminSelfDrain drains (or undrains) this edge; an empty body only.
func (s *Server) adminSelfDrain(ctx *fasthttp.RequestCtx, drain bool) {
	if len(ctx.PostBody()) > 0 {
		writeError(ctx, fasthttp.StatusBadRequest, "this call takes no body")
		return
	}
	_, was := s.Draining()
	if drain {
		s.Drain()
	} else {
		s.Undrain()
	}
	if was != drain {
		s.log.Info("proxy: edge drain changed", zap.Bool("draining", drain))
	}
	writeJSON(ctx, 200, s.drainState())
}

func (s *Server) adminBalancer(ctx *fasthttp.RequestCtx) {
	var body struct {
		Policy  string `json:"policy"`
		HashKey string `json:"hash_key"`
	}
	if err := decodeJSON(ctx, &body); err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "body must be JSON with policy and optional hash_key")
		return
	}
	if err := s.SetPolicy(body.Policy, body.HashKey); err != nil {
		writeJSON(ctx, fasthttp.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(ctx, 200, map[string]string{"balancer": s.Policy()})
}

func (s *Server) adminDrain(ctx *fasthttp.RequestCtx, drain bool) {
	name, _ := ctx.UserValue("name").(string)
	pool := s.rt.Load().pool
	var err error
	if drain {
		err = pool.Drain(name)
	} else {
		err = pool.Undrain(name)
	}
	if errors.Is(err, upstream.ErrUnknown) {
		writeError(ctx, fasthttp.StatusNotFound, "unknown upstream")
		return
	}
	s.log.Info("proxy: upstream drain changed", zap.String("upstream", name), zap.Bool("drained", drain))
	writeJSON(ctx, 200, statusOf(pool.Get(name), time.Now()))
}

func (s *Server) adminPurge(ctx *fasthttp.RequestCtx) {
	if s.cache == nil {
		writeError(ctx, fasthttp.StatusServiceUnavailable, "no cache configured")
		return
	}
	var body purgeRequest
	if err := decodeJSON(ctx, &body); err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, "body must be JSON with keys, tags, prefix, soft")
		return
	}
	if len(body.Keys) == 0 && len(body.Tags) == 0 && body.Prefix == "" {
		writeError(ctx, fasthttp.StatusBadRequest, "give at least one of keys, tags or prefix")
		return
	}
	pctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := s.cache.Purge(pctx, body.Keys, body.Tags, body.Prefix, body.Soft)
	if err != nil {
		status := purgeStatus(err)
		if status != fasthttp.StatusBadRequest {
			s.log.Error("proxy: purge failed", zap.Error(err))
		}
		writeJSON(ctx, status, map[string]string{"error": "purge failed: " + err.Error()})
		return
	}
	writeJSON(ctx, 200, map[string]int{"purged": n})
}

// purgeStatus maps a Cache.Purge error to the admin answer's status: the caller's
// mistake is 400, a cache that cannot reach its store right now is 503 (retry
// later), anything else is the store failing behind the edge, 502.
func purgeStatus(err error) int {
	switch {
	case errors.Is(err, cache.ErrBadPurge):
		return fasthttp.StatusBadRequest
	case errors.Is(err, cache.ErrUnavailable):
		return fasthttp.StatusServiceUnavailable
	}
	return fasthttp.StatusBadGateway
}

// decodeJSON reads a JSON body strictly: unknown fields and trailing data are errors.
func decodeJSON(ctx *fasthttp.RequestCtx, v any) error {
	dec := json.NewDecoder(bytesReader(ctx.PostBody()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(ctx, fasthttp.StatusInternalServerError, "cannot encode answer")
		return
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}
