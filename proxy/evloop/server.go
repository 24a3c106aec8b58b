//go:build linux

package evloop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/novashop/edge/proxy/h1"
	"github.com/novashop/edge/proxy/proxyproto"
	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// Config is what the loops need from the edge.
type Config struct {
	// Loops is the number of event loops; 0 means GOMAXPROCS.
	Loops int
	// BatchWait, above zero, turns on wake-up coalescing (batch.go): a loop
	// whose recent event rate is at least one per BatchWait sleeps for it
	// after a round of events instead of waiting for the next event, so a
	// request may wait up to BatchWait more. 0 (the default) is off; values
	// above MaxBatchWait are taken as MaxBatchWait.
	BatchWait time.Duration
	// Handler answers a request. It may block, so it runs on a goroutine
	// (the hand-off path) unless Inline answered first.
	Handler fasthttp.RequestHandler
	// Inline, when set, is tried on the loop first and must not block. It reports
	// whether it answered the request; if not, rest (when not nil) is the
	// continuation to hand off instead of Handler, so work done on the loop is
	// not repeated. Nil hands every request off to Handler.
	Inline func(ctx *fasthttp.RequestCtx) (done bool, rest fasthttp.RequestHandler)
	// ErrorHandler answers a request that could not be read (bad syntax, too
	// large, timed out), as fasthttp.Server.ErrorHandler does.
	ErrorHandler func(ctx *fasthttp.RequestCtx, err error)
	// Expect, when set, runs on the loop for a request with Expect:
	// 100-continue whose header section is in and whose body is not, before
	// the loop sends 100 Continue; it must not block. If it answered ctx
	// (true), that answer goes out instead of the 100 and the connection
	// closes, since the client may already be sending the body
	// (fasthttp.Server.ExpectHandler's role).
	Expect func(ctx *fasthttp.RequestCtx) bool
	// Fallback serves a connection the loop gives up (a streamed request body);
	// the goroutine core's fasthttp.Server.ServeConn. The conn replays the bytes the
	// loop had read. Nil answers such requests 413 instead.
	Fallback func(c net.Conn) error
	// NoDefaultDate, as fasthttp.Server's: the answer's own Date field is sent
	// as it is, and none is added (the handler adds one where it is missing).
	// The edge needs it so that a cache hit keeps its stored Date.
	NoDefaultDate bool
	// MaxHeaderBytes bounds the request line and headers (431 beyond).
	MaxHeaderBytes int
	// Framer is the request framer's limits (line lengths, field count), as
	// the goroutine core's h1.Listener has them; its MaxHeaderBytes, when
	// zero, is MaxHeaderBytes.
	Framer h1.Limits
	// MaxBodyBytes bounds a request body (413 beyond).
	MaxBodyBytes int
	// StreamAbove, when above zero, detaches a connection whose request body is
	// longer than it, or chunked, to Fallback (limits.stream_request_bytes).
	StreamAbove int
	// ReadTimeout bounds reading one request from its first byte; IdleTimeout the
	// wait for the next request on a keep-alive connection; WriteTimeout a
	// response's wait for the client to read it. Zero means no bound.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// Forwarded is called on the loop when a try started by Forward ends: err
	// nil means ctx.Response holds the origin's answer. It may call Forward
	// again (another try); otherwise it returns nil to have ctx.Response sent,
	// or a handler to hand the request off to (ErrTooLarge: an answer the loop
	// does not buffer). Nil: Forward always returns ErrUnsupported.
	Forwarded func(ctx *fasthttp.RequestCtx, err error) fasthttp.RequestHandler
	// LightAnswers lets the loop pass an ordinary origin answer through
	// without parsing it into a fasthttp.Response (answer.go): ctx.Response
	// then holds only the status, the fields fasthttp serializes in fixed
	// places and what the handler adds, and the origin's other fields and body
	// are copied to the client from the read buffer. Off when the handler
	// rewrites answer bodies (compression).
	LightAnswers bool
	// DropAnswerFields are field names (canonical form) the handler deletes
	// from every forwarded answer, in the order it deletes them (fasthttp's
	// deletion reorders the fields after it); a light answer leaves them out
	// and orders the rest as fasthttp would.
	DropAnswerFields []string
	// SetAnswerFields are field names (canonical form) the handler sets on a
	// forwarded answer, replacing the origin's in place: an answer that
	// carries one takes fasthttp's path.
	SetAnswerFields []string
	// PipelineDepth, above 1, lets a loop send up to that many requests on one
	// upstream connection in one write (HTTP/1.1 pipelining, pipeline.go):
	// GET and HEAD requests without a body that the loop's round forwards to
	// the same address, written at the end of the round on an idle pooled
	// connection, their answers read in order. It saves a write and a read on
	// the upstream side per request behind the first. 0 or 1: off.
	// ForwardDepth gives one address its own depth.
	PipelineDepth int
	// MaxForwardBytes bounds an answer body read on the loop (ErrTooLarge
	// beyond); 0 means 1 MiB.
	MaxForwardBytes int
	// UpstreamHeaderBytes bounds an origin's header block; 0 means 4096
	// (fasthttp's HostClient default).
	UpstreamHeaderBytes int
	// UpstreamIdleTimeout closes pooled upstream connections idle this long;
	// 0 means 10s.
	UpstreamIdleTimeout time.Duration
	// MaxUpstreamConns caps the connections one loop holds open to one origin
	// address, busy and idle (the edge gives each loop its share of
	// limits.max_conns_per_upstream); at the cap with none idle, Forward fails
	// with fasthttp.ErrNoFreeConns at once, as a HostClient without a wait
	// does. 0 means no cap.
	MaxUpstreamConns int
	// UpstreamDialTimeout bounds connecting to an origin, within the try's
	// timeout (timeouts.dial); a connect that takes longer fails with
	// fasthttp.ErrDialTimeout. 0 means the try's timeout only.
	UpstreamDialTimeout time.Duration
	// Logger receives fasthttp's messages for request contexts.
	Logger fasthttp.Logger
	// ProxyProtocol, when set, makes every connection start with a PROXY
	// protocol header (package proxyproto): a connection from an untrusted
	// source is closed when accepted, one whose first bytes are no valid
	// header, or whose header is not whole within its Timeout, is closed
	// unanswered; the header's client address becomes the connection's
	// RemoteAddr.
	ProxyProtocol *proxyproto.Policy
	// H2C, when set, takes the connections whose first bytes are the HTTP/2
	// client preface (h2c by prior knowledge): the loop gives such a
	// connection up, as it does to Fallback, with the bytes it read replayed,
	// and serves every other connection as HTTP/1.1. A connection whose first
	// bytes stay a proper prefix of the preface until the read timeout, or
	// that closes within it, is closed unanswered (the goroutine core's h2c
	// sniffing does the same). Nil: no sniffing; the preface is a bad
	// HTTP/1.1 request.
	H2C func(net.Conn) error
}

// Server runs the event loops on one listener.
type Server struct {
	cfg    Config
	loops  []*loop
	laddr  net.Addr
	lfd    int
	ln     net.Listener // the listener Serve was given; Close closes it
	closed atomic.Bool
	// inflight counts handed-off requests, for Shutdown.
	inflight atomic.Int64
	wg       sync.WaitGroup
	workers  workers
	mu       sync.Mutex
	started  bool
	done     chan struct{}
}

// New returns a Server; Serve starts it.
func New(cfg Config) *Server {
	if cfg.Loops <= 0 {
		cfg.Loops = runtime.GOMAXPROCS(0)
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = 16 << 10
	}
	if cfg.Framer.MaxHeaderBytes <= 0 {
		cfg.Framer.MaxHeaderBytes = cfg.MaxHeaderBytes
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 4 << 20
	}
	if cfg.MaxForwardBytes <= 0 {
		cfg.MaxForwardBytes = 1 << 20
	}
	if cfg.UpstreamHeaderBytes <= 0 {
		cfg.UpstreamHeaderBytes = 4096
	}
	if cfg.UpstreamIdleTimeout <= 0 {
		cfg.UpstreamIdleTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = nopLogger{}
	}
	s := &Server{cfg: cfg, lfd: -1, done: make(chan struct{})}
	s.workers.s = s
	return s
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}

// ErrClosed is returned by Serve on a Server that was shut down.
var ErrClosed = errors.New("evloop: server closed")

// Serve accepts connections from ln on every loop until Shutdown or Close. ln
// must be a TCP listener; the loops accept on a duplicate of its socket, so the
// caller may close ln at any time without stopping them (Close does that).
func (s *Server) Serve(ln net.Listener) error {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return fmt.Errorf("evloop: %T is not a *net.TCPListener", ln)
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(f uintptr) { fd, derr = unix.Dup(int(f)) }); err != nil {
		return err
	}
	if derr != nil {
		return derr
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return err
	}
	unix.CloseOnExec(fd)
	s.mu.Lock()
	if s.closed.Load() || s.started {
		s.mu.Unlock()
		unix.Close(fd)
		return ErrClosed
	}
	s.started = true
	s.lfd, s.laddr, s.ln = fd, ln.Addr(), ln
	for i := 0; i < s.cfg.Loops; i++ {
		l, err := newLoop(s, i)
		if err != nil {
			s.mu.Unlock()
			s.Close()
			return err
		}
		s.loops = append(s.loops, l)
	}
	for _, l := range s.loops {
		s.wg.Add(1)
		go l.run()
	}
	s.mu.Unlock()
	<-s.done
	return nil
}

// Shutdown stops accepting, waits for handed-off requests to finish (or ctx to
// end), then closes every connection and stops the loops.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	for _, l := range s.loops {
		l.post(func(l *loop) { l.stopAccept() })
	}
	s.mu.Unlock()
	var err error
	for s.inflight.Load() > 0 && err == nil {
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	s.Close()
	return err
}

// Close stops the loops and closes every connection without waiting. Safe to call
// more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed.Swap(true) {
		s.mu.Unlock()
		return
	}
	loops, ln := s.loops, s.ln
	s.mu.Unlock()
	for _, l := range loops {
		l.post(func(l *loop) { l.stopping = true })
	}
	s.wg.Wait()
	for _, l := range loops {
		l.release()
	}
	if s.lfd >= 0 {
		unix.Close(s.lfd)
	}
	if ln != nil {
		// The caller's listener too, as fasthttp's Shutdown closes the listeners
		// it serves: the port is free once Shutdown returns.
		_ = ln.Close()
	}
	s.workers.stop()
	close(s.done)
}

// Stats are a loop set's counters, for tests and the admin API.
type Stats struct {
	Conns    int // open client connections
	Handoffs uint64
	Inline   uint64
	// Raw counts the inline answers the handler wrote itself (EndRaw).
	Raw      uint64
	Detached uint64
	// Forwards counts requests forwarded from the loops; ForwardRetries the
	// tries sent again on a fresh connection after a stale keep-alive one
	// or a broken pipeline.
	Forwards, ForwardRetries uint64
	// LightAnswers counts forwarded answers written without fasthttp's
	// Response (Config.LightAnswers).
	LightAnswers uint64
	// Upstreams counts open upstream connections (in use and pooled).
	Upstreams int
	// Pipelined counts requests written behind another on one upstream
	// connection (Config.PipelineDepth).
	Pipelined uint64
	// Coalesced counts the loops' batch sleeps (Config.BatchWait).
	Coalesced uint64
}

// Loops is the number of event loops Serve runs (Config.Loops, or one per
// GOMAXPROCS when that was 0): the edge's tests and io_loops check it.
func (s *Server) Loops() int { return s.cfg.Loops }

// Stats adds up the loops' counters.
func (s *Server) Stats() Stats {
	var st Stats
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.loops {
		st.Conns += int(l.nconns.Load())
		st.Handoffs += l.handoffs.Load()
		st.Inline += l.inline.Load()
		st.Raw += l.raw.Load()
		st.Detached += l.detached.Load()
		st.Forwards += l.forwards.Load()
		st.ForwardRetries += l.retries.Load()
		st.LightAnswers += l.lights.Load()
		st.Pipelined += l.piped.Load()
		st.Coalesced += l.coalesced.Load()
		st.Upstreams += int(l.nups.Load())
	}
	return st
}
