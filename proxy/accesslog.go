package proxy

import (
	"time"

	"github.com/novashop/edge/proxy/accesslog"
	"github.com/novashop/edge/proxy/config"
	"go.uber.org/zap"
)

// setupAccessLog builds the buffered access log writer over opt.AccessLog. Its
// buffer size and flush interval are fixed for the server's life (Reload can
// still turn the log on and off and change the sample).
func (s *Server) setupAccessLog(c config.AccessLog) {
	if s.opt.AccessLog == nil {
		return
	}
	s.alog = accesslog.New(s.opt.AccessLog, accesslog.Config{
		BufferBytes:   c.BufferBytes,
		FlushInterval: c.FlushInterval,
		OnDrop:        func(n int) { s.metrics.logDropped.Add(n) },
	})
}

// logAccess writes ex's access log line. With Options.AccessLog the line goes
// through the buffered writer (no allocation, no system call per line; the
// event loop or, on the goroutine core, the connection id picks the buffer
// shard, so requests on different loops or goroutines rarely share a lock); without it, through the zap logger, the same
// bytes at many times the cost.
func (s *Server) logAccess(ex *exchange, code int) {
	ctx := ex.ctx
	if s.alog == nil {
		s.log.Info("access",
			zap.ByteString("method", ctx.Method()),
			zap.ByteString("uri", ctx.RequestURI()),
			zap.Int("status", code),
			zap.String("upstream", ex.note.upstream),
			zap.Int("tries", ex.note.tries),
			zap.Duration("duration", time.Since(ex.start)),
			zap.Stringer("client", ex.clientIP()),
			zap.ByteString("request_id", ctx.Request.Header.Peek(headerRequestID)),
		)
		return
	}
	now := time.Now()
	e := accesslog.Entry{
		Time:      now,
		Method:    ctx.Method(),
		URI:       ctx.RequestURI(),
		Status:    code,
		Upstream:  ex.note.upstream,
		Tries:     ex.note.tries,
		Duration:  now.Sub(ex.start),
		Client:    ex.clientIP(),
		RequestID: ctx.Request.Header.Peek(headerRequestID),
	}
	hint := ctx.ConnID()
	if lc, ok := ctx.Conn().(loopConn); ok {
		hint = uint64(lc.LoopID())
	}
	s.alog.Log(hint, &e)
}

// loopConn is a connection owned by an event loop (proxy/evloop): its lines go
// to that loop's buffer shard, so the loop's own lines never contend with
// another loop's, and a shard is not picked at random per request (the loop's
// ctx gets a fresh ConnID for each request).
type loopConn interface{ LoopID() int }
