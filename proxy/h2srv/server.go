// Package h2srv is a lean HTTP/2 server (RFC 9113) that feeds
// fasthttp.RequestCtx objects to a fasthttp.RequestHandler.
//
// Why: golang.org/x/net/http2's server starts a goroutine per stream, hands
// every write to its serve goroutine over channels, and speaks net/http, so
// bridging it into fasthttp converted each request and answer twice. Here
// one goroutine per connection reads frames (x/net's Framer with
// ReadMetaHeaders and its hpack package: the well-kept parts), builds the
// RequestCtx straight from the decoded fields, answers requests the handler
// can answer without blocking (cache hits, through Config.Inline) on that
// goroutine, and runs the rest on a bounded pool of long-lived workers. All
// output goes to one buffer per connection under the connection's lock and
// leaves in one write when no more input is pending (or when a worker's
// answer is done and the flusher wakes), so the frames of many streams share
// records and syscalls.
//
// Limits (each against a known attack): at most MaxConcurrentStreams open
// streams (REFUSED_STREAM beyond) and as many running handlers; streams reset
// while their handler runs still count, later ones queue, and a queue past
// 4× the limit ends the connection with ENHANCE_YOUR_CALM (rapid reset);
// header lists are cut at MaxHeaderListSize of decoded fields, and a
// CONTINUATION past it ends the connection (x/net's Framer); request bodies
// are bounded by MaxBodyBytes (413); flow control is checked both ways; a
// writer waiting for a window longer than WriteTimeout resets its stream, a
// socket write longer than it closes the connection; connections without
// streams close after IdleTimeout, ones inside a request after ReadTimeout.
package h2srv

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/novashop/edge/proxy/internal/workpool"
	"github.com/valyala/fasthttp"
)

// Config configures a Server. Zero values take the defaults named.
type Config struct {
	// Handler answers every request Inline did not.
	Handler fasthttp.RequestHandler
	// Inline, when set, is tried first on the connection's reading
	// goroutine; it must not block. done true: ctx holds the answer. done
	// false: rest (or Handler when rest is nil) finishes the request on a
	// worker.
	Inline func(ctx *fasthttp.RequestCtx) (done bool, rest fasthttp.RequestHandler)
	// MaxConcurrentStreams is SETTINGS_MAX_CONCURRENT_STREAMS and the bound
	// on running handlers per connection (128).
	MaxConcurrentStreams uint32
	// MaxHeaderListSize bounds a request's decoded header list (16 KiB).
	MaxHeaderListSize uint32
	// Fields are HTTP/1.1's per-line limits, applied to the decoded header
	// list (zero values: no limit); beyond them: 431.
	Fields FieldLimits
	// MaxBodyBytes bounds a request body (4 MiB); beyond it: 413.
	MaxBodyBytes int
	// StreamWindow is the receive window offered per stream (256 KiB),
	// ConnWindow per connection (1 MiB).
	StreamWindow, ConnWindow uint32
	// ReadTimeout bounds the preface and a request being received (10s);
	// IdleTimeout a connection without streams (2m); WriteTimeout each socket
	// write and each wait for a flow-control window (30s).
	ReadTimeout, IdleTimeout, WriteTimeout time.Duration
	// MaxWorkers bounds the pool of long-lived handler goroutines (256);
	// past it a request runs in a goroutine of its own.
	MaxWorkers int
	// Logger is the RequestCtx's logger.
	Logger fasthttp.Logger
	// CountError is told the kind of each protocol error (bounded set).
	CountError func(kind string)
}

func (c *Config) defaults() {
	if c.MaxConcurrentStreams == 0 {
		c.MaxConcurrentStreams = 128
	}
	if c.MaxHeaderListSize == 0 {
		c.MaxHeaderListSize = 16 << 10
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 4 << 20
	}
	if c.StreamWindow == 0 {
		c.StreamWindow = 256 << 10
	}
	if c.ConnWindow < c.StreamWindow {
		c.ConnWindow = 4 * c.StreamWindow
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 10 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 2 * time.Minute
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.MaxWorkers <= 0 {
		c.MaxWorkers = 256
	}
	if c.CountError == nil {
		c.CountError = func(string) {}
	}
}

// Server serves HTTP/2 connections handed to ServeConn.
type Server struct {
	cfg     Config
	ctxs    sync.Pool
	workers workpool.Pool[*stream]

	mu      sync.Mutex
	conns   map[*conn]struct{}
	closing bool
	wg      sync.WaitGroup

	// Open counts live connections, Inlined the requests answered on a
	// reading goroutine (for tests and metrics).
	Open, Inlined atomic.Int64
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	cfg.defaults()
	s := &Server{cfg: cfg, conns: map[*conn]struct{}{}}
	// Handlers run on long-lived workers whose stacks stay grown; with every
	// worker busy a stream gets a goroutine of its own (the stream limits
	// bound the work).
	s.workers.Max, s.workers.MaxIdle, s.workers.Do = cfg.MaxWorkers, workerMaxIdle, runStream
	s.ctxs.New = func() any { return new(fasthttp.RequestCtx) }
	return s
}

// ServeConn serves nc (past TLS and ALPN, or a plaintext h2c connection
// starting with the client preface) until it ends, and closes it. The
// requests' RequestCtx see standIn as their connection (addresses, TLS
// state); nil means nc. It returns when every handler of the connection
// has.
func (s *Server) ServeConn(nc, standIn net.Conn) {
	if standIn == nil {
		standIn = nc
	}
	c := newConn(s, nc, standIn)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		_ = nc.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.Open.Add(1)
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.Open.Add(-1)
		s.wg.Done()
	}()
	c.serve()
}

// Shutdown sends GOAWAY (NO_ERROR) on every connection, lets their streams
// finish, and waits for the connections to end (or ctx).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	cs := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.shutdown()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		s.workers.Close()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, c := range cs {
			_ = c.nc.Close()
		}
		return ctx.Err()
	}
}

func (s *Server) getCtx(standIn net.Conn) *fasthttp.RequestCtx {
	ctx := s.ctxs.Get().(*fasthttp.RequestCtx)
	ctx.Init2(standIn, s.cfg.Logger, false)
	return ctx
}

func (s *Server) putCtx(ctx *fasthttp.RequestCtx) {
	_ = ctx.Response.CloseBodyStream()
	ctx.Request.Reset()
	ctx.Response.Reset()
	ctx.ResetUserValues()
	s.ctxs.Put(ctx)
}

// FieldLimits carry the edge's HTTP/1.1 per-line limits
// (limits.max_header_fields, limits.max_field_line_bytes) over to HTTP/2 and
// HTTP/3, whose header lists have no lines: a field counts as the line
// "name: value" it becomes when forwarded over HTTP/1.1, and split cookie
// crumbs (RFC 9113 §8.2.3) as the one Cookie line they are joined into. So a
// request refused over HTTP/1.1 for one huge field or too many fields is not
// let through over HTTP/2 or HTTP/3 instead.
type FieldLimits struct {
	MaxFields     int // field lines of a header section (0: no limit)
	MaxFieldBytes int // one field line, "name: value" (0: no limit)
}

// Counter checks a header list one field at a time.
type FieldCounter struct {
	l       FieldLimits
	fields  int
	cookies int // the joined Cookie line's length so far, 0 before one
}

// Counter starts a check of one header list.
func (l FieldLimits) Counter() FieldCounter { return FieldCounter{l: l} }

// Add counts the field name: value and reports "" while within the
// limits, else the kind of excess ("header_fields_too_many" or
// "header_field_too_large").
func (c *FieldCounter) Add(name, value string) string {
	line := len(name) + 2 + len(value)
	if name == "cookie" || name == "Cookie" {
		if c.cookies > 0 {
			c.cookies += 2 + len(value) // "; " joins the crumbs
			line = c.cookies
		} else {
			c.cookies = line
			c.fields++
		}
	} else {
		c.fields++
	}
	if c.l.MaxFields > 0 && c.fields > c.l.MaxFields {
		return "header_fields_too_many"
	}
	if c.l.MaxFieldBytes > 0 && line > c.l.MaxFieldBytes {
		return "header_field_too_large"
	}
	return ""
}
