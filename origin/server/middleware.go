package server

import (
	"runtime/debug"
	"time"

	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/novashop/edge/origin/api"
)

// opsPath reports whether a path is an operations endpoint, which the lab
// knobs spare: a flaky instance must stay in rotation (healthz) and stay
// observable (metrics).
func opsPath(p []byte) bool {
	switch string(p) {
	case "/healthz", "/readyz", "/metrics":
		return true
	}
	return false
}

// wrap is the middleware chain, outermost first: recover, X-Served-By,
// lab knobs, metrics and access log, then next, then conditional GET.
func (s *Server) wrap(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	d := s.deps
	return func(ctx *fasthttp.RequestCtx) {
		start := time.Now()
		defer func() {
			if r := recover(); r != nil {
				d.Log.Error("handler panicked", zap.Any("panic", r), zap.ByteString("path", ctx.Path()),
					zap.ByteString("stack", debug.Stack()))
				ctx.Response.Reset()
				ctx.Response.Header.Set(HeaderServedBy, d.Name)
				api.WriteErrorMessage(ctx, fasthttp.StatusInternalServerError, "internal error")
			}
			s.observe(ctx, start)
		}()
		ctx.Response.Header.Set(HeaderServedBy, d.Name)
		if (d.InjectLatency > 0 || d.InjectErrorRate > 0) && !opsPath(ctx.Path()) {
			if d.InjectLatency > 0 {
				time.Sleep(d.InjectLatency)
			}
			if d.InjectErrorRate > 0 && d.Rand() < d.InjectErrorRate {
				api.WriteErrorMessage(ctx, fasthttp.StatusServiceUnavailable, "injected error (lab knob --inject-error-rate)")
				return
			}
		}
		next(ctx)
		conditional(ctx)
	}
}

func (s *Server) observe(ctx *fasthttp.RequestCtx, start time.Time) {
	route, _ := ctx.UserValue(router.MatchedRoutePathParam).(string)
	if route == "" {
		route = "unmatched"
	}
	st := ctx.Response.StatusCode()
	dur := time.Since(start)
	s.metrics.observe(route, methodName(ctx.Method()), st, dur)
	if !s.deps.AccessLog {
		return
	}
	if c := s.deps.Log.Check(zap.InfoLevel, "request"); c != nil {
		c.Write(
			zap.ByteString("method", ctx.Method()),
			zap.ByteString("uri", ctx.RequestURI()),
			zap.String("route", route),
			zap.Int("status", st),
			zap.Duration("duration", dur),
			zap.Int("bytes", len(ctx.Response.Body())),
			zap.String("remote", ctx.RemoteIP().String()),
			zap.ByteString("request_id", ctx.Request.Header.Peek("X-Request-ID")),
		)
	}
}

// methodName maps the method to a constant string so metric labels never
// allocate; unknown methods share one label.
func methodName(m []byte) string {
	switch string(m) {
	case fasthttp.MethodGet:
		return fasthttp.MethodGet
	case fasthttp.MethodHead:
		return fasthttp.MethodHead
	case fasthttp.MethodPost:
		return fasthttp.MethodPost
	case fasthttp.MethodPut:
		return fasthttp.MethodPut
	case fasthttp.MethodPatch:
		return fasthttp.MethodPatch
	case fasthttp.MethodDelete:
		return fasthttp.MethodDelete
	case fasthttp.MethodOptions:
		return fasthttp.MethodOptions
	}
	return "OTHER"
}
