//lint:file-ignore SA1019 the bridge serves each connection with x/net http2 (Server.ServeConn, Transport), which net/http Protocols does not offer; see docs/protocols.md.

package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/novashop/edge/proxy/config"
	"github.com/novashop/edge/proxy/h2srv"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"golang.org/x/net/http2"
)

// HTTP/2 on the TLS listener. fasthttp has no HTTP/2 server, so connections
// whose ALPN is h2 go to golang.org/x/net/http2's server, and its net/http
// Handler (h2Bridge) turns each stream into a fasthttp.RequestCtx, runs the
// same handler as HTTP/1.1 (t.serveHTTPS) and copies the answer back: one
// request pipeline, not a second proxy. Bodies are bounded both ways by the
// same limits as HTTP/1.1; a streamed origin answer is streamed to the client.
//
// The server's limits are set against the known HTTP/2 attacks (each has a
// test in h2attack_test.go):
//   - rapid reset (CVE-2023-44487): at most h2MaxStreams handlers run per
//     connection; x/net queues the rest and sends GOAWAY ENHANCE_YOUR_CALM
//     when the queue passes 4× that, so resets cannot start unbounded work;
//   - CONTINUATION floods and HPACK bombs: header blocks are cut at
//     limits.max_header_bytes of decoded fields (x/net closes the connection
//     rather than buffer more), the HPACK table at 4 KiB;
//   - too many streams: streams past SETTINGS_MAX_CONCURRENT_STREAMS are
//     refused (RST_STREAM REFUSED_STREAM / PROTOCOL_ERROR);
//   - window-update abuse: a window past 2^31-1 is a FLOW_CONTROL_ERROR, a
//     client that stops reading is cut by WriteByteTimeout, upload buffers are
//     bounded per stream and connection;
//   - idle floods: IdleTimeout closes idle connections, ReadIdleTimeout +
//     PingTimeout close dead ones, and x/net's preface timeout those that
//     never speak.

const (
	h2MaxStreams        = 128
	h2HeaderTableSize   = 4096
	h2UploadPerStream   = 256 << 10
	h2UploadPerConn     = 1 << 20
	h2ReadIdleTimeout   = 30 * time.Second
	h2PingTimeout       = 15 * time.Second
	h2DefaultWriteBound = 30 * time.Second
)

// h2Front is one HTTP/2 server: the TLS front's (h2 by ALPN) or the
// plaintext listener's (h2c).
type h2Front struct {
	// handler is the listener's one request handler.
	handler fasthttp.RequestHandler
	log     *zap.Logger
	srv     *http2.Server
	base    *http.Server
	maxBody int
	// fields are the HTTP/1.1 per-line limits carried over (h2srv.FieldLimits).
	fields h2srv.FieldLimits
	ctxs   sync.Pool
	conns  sync.WaitGroup
	open   atomic.Int64
	// workers run the bridge on goroutines whose stacks stay grown.
	workers h2Workers
	// writeTimeout bounds each write to a connection (x/net's WriteByteTimeout).
	writeTimeout time.Duration
	// inFlight and peak count bridge handlers, for tests of the attack bounds.
	inFlight, peak, calls atomic.Int64
	// native is proxy/h2srv's server when the config picks it
	// (tls.http2_server / h2c_server: native); nil runs x/net's.
	native *h2srv.Server
	// inline and restH are the native server's inline path (see h2Inline).
	inline *h2Inline
	restH  fasthttp.RequestHandler
}

// h2Inline is how the native server answers on a connection's reading
// goroutine what needs no waiting: try is the event-loop core's
// handleInline (the edge's checks, then the local cache tier), rest its
// continuation for the rest, post what the listener adds to every answer
// (HSTS, Alt-Svc over TLS).
type h2Inline struct {
	try  func(*fasthttp.RequestCtx) (bool, fasthttp.RequestHandler)
	rest fasthttp.RequestHandler
	post func(*fasthttp.RequestCtx)
}

// inlineFor is s's inline path when it has one: only with a cache that
// can answer from memory (without one, handleInline would forward from an
// event loop, which the native server is not).
func (s *Server) inlineFor(post func(*fasthttp.RequestCtx)) *h2Inline {
	if _, ok := s.cache.(LocalServer); !ok {
		return nil
	}
	// handleInline hands back s.rest for a request it admitted; on the
	// goroutine core newLoops never set it, and a nil rest would run the
	// whole handler again (admitting the request twice).
	if s.rest == nil {
		s.rest = s.handleRest
	}
	return &h2Inline{try: s.handleInline, rest: s.rest, post: post}
}

func newH2Front(s *Server, log *zap.Logger, handler fasthttp.RequestHandler, cfg config.Config, kind string, inline *h2Inline) *h2Front {
	write := cfg.Timeouts.Write
	if write <= 0 {
		write = h2DefaultWriteBound
	}
	f := &h2Front{handler: handler, log: log, maxBody: cfg.Limits.MaxBodyBytes,
		fields: h2srv.FieldLimits{MaxFields: cfg.Limits.MaxHeaderFields, MaxFieldBytes: cfg.Limits.MaxFieldLineBytes}}
	f.workers.init(h2WorkersMax, h2WorkersMaxIdle)
	f.writeTimeout = write
	set := s.metrics.set
	f.srv = &http2.Server{
		MaxConcurrentStreams:      h2MaxStreams,
		MaxDecoderHeaderTableSize: h2HeaderTableSize,
		MaxEncoderHeaderTableSize: h2HeaderTableSize,
		// The protocol's minimum (x/net would take 1 MiB frames): bounds the
		// buffer one frame may pin.
		MaxReadFrameSize:             16 << 10,
		IdleTimeout:                  cfg.Timeouts.Idle,
		ReadIdleTimeout:              h2ReadIdleTimeout,
		PingTimeout:                  h2PingTimeout,
		WriteByteTimeout:             write,
		MaxUploadBufferPerStream:     h2UploadPerStream,
		MaxUploadBufferPerConnection: h2UploadPerConn,
		// x/net's error types are a fixed set of strings, so the label is bounded.
		CountError: func(errType string) {
			set.GetOrCreateCounter(`edge_h2_errors_total{type="` + errType + `"}`).Inc()
		},
	}
	f.base = &http.Server{
		MaxHeaderBytes: cfg.Limits.MaxHeaderBytes,
		ReadTimeout:    cfg.Timeouts.Read,
		WriteTimeout:   cfg.Timeouts.Write,
		IdleTimeout:    cfg.Timeouts.Idle,
	}
	if l, err := zap.NewStdLogAt(log.Named("h2"), zap.DebugLevel); err == nil {
		// x/net logs each client's protocol error; under attack that is a
		// flood, so it goes to the debug level (edge_h2_errors_total counts).
		f.base.ErrorLog = l
	}
	// ConfigureServer registers the graceful GOAWAY on base.Shutdown.
	_ = http2.ConfigureServer(f.base, f.srv)
	f.ctxs.New = func() any { return new(h2Stream) }
	if kind != config.H2ServerXNet {
		f.setupNative(cfg, inline, func(errType string) {
			set.GetOrCreateCounter(`edge_h2_errors_total{type="` + errType + `"}`).Inc()
		})
	}
	return f
}

// setupNative builds the native server with the same limits as x/net's.
func (f *h2Front) setupNative(cfg config.Config, in *h2Inline, count func(string)) {
	nc := h2srv.Config{
		Handler:              f.nativeHandle,
		MaxConcurrentStreams: h2MaxStreams,
		MaxHeaderListSize:    uint32(max(cfg.Limits.MaxHeaderBytes, 0)),
		Fields:               f.fields,
		MaxBodyBytes:         f.maxBody,
		StreamWindow:         h2UploadPerStream,
		ConnWindow:           h2UploadPerConn,
		ReadTimeout:          cfg.Timeouts.Read,
		IdleTimeout:          cfg.Timeouts.Idle,
		WriteTimeout:         f.writeTimeout,
		MaxWorkers:           h2WorkersMax,
		Logger:               zapPrintf{f.log},
		CountError:           count,
	}
	if in != nil {
		f.inline = in
		f.restH = f.nativeRest
		nc.Inline = f.nativeInline
	}
	f.native = h2srv.New(nc)
}

// nativeHandle runs the handler for the native server, counted as the
// bridge counts its handlers.
func (f *h2Front) nativeHandle(ctx *fasthttp.RequestCtx) {
	f.enter()
	defer f.inFlight.Add(-1)
	f.handler(ctx)
}

func (f *h2Front) enter() {
	n := f.inFlight.Add(1)
	for p := f.peak.Load(); n > p && !f.peak.CompareAndSwap(p, n); p = f.peak.Load() {
	}
	f.calls.Add(1)
}

// nativeInline is the native server's inline try (on the reading goroutine).
func (f *h2Front) nativeInline(ctx *fasthttp.RequestCtx) (bool, fasthttp.RequestHandler) {
	done, rest := f.inline.try(ctx)
	if done {
		f.calls.Add(1)
		if f.inline.post != nil {
			f.inline.post(ctx)
		}
		return true, nil
	}
	if rest != nil {
		return false, f.restH
	}
	return false, nil // not admitted: the whole handler runs
}

// nativeRest finishes on a worker what nativeInline admitted.
func (f *h2Front) nativeRest(ctx *fasthttp.RequestCtx) {
	f.enter()
	defer f.inFlight.Add(-1)
	f.inline.rest(ctx)
	if f.inline.post != nil {
		f.inline.post(ctx)
	}
}

// serve runs one h2 connection to its end.
func (f *h2Front) serve(tc *tls.Conn) {
	st := tc.ConnectionState()
	f.serveConn(tc, &h2Conn{laddr: tc.LocalAddr(), raddr: tc.RemoteAddr(), st: &st})
}

// serveConn runs one HTTP/2 connection c to its end; its streams' RequestCtx
// see stand-in as their connection (addresses, and TLS state when it has one).
func (f *h2Front) serveConn(c, standIn net.Conn) {
	f.conns.Add(1)
	f.open.Add(1)
	defer func() {
		f.open.Add(-1)
		f.conns.Done()
	}()
	if f.native != nil {
		f.native.ServeConn(c, standIn)
		return
	}
	ctx := context.WithValue(context.Background(), connKey{}, standIn)
	// x/net writes through h2WriteConn (batched writes, see h2write.go); its
	// Close, deferred by ServeConn, sends what is pending and closes c.
	f.srv.ServeConn(newH2WriteConn(c, f.writeTimeout), &http2.ServeConnOpts{Context: ctx, BaseConfig: f.base, Handler: f})
}

// shutdown sends GOAWAY to every h2 connection and waits for them to end (or ctx).
func (f *h2Front) shutdown(ctx context.Context) error {
	if f.native != nil {
		_ = f.native.Shutdown(ctx)
	}
	_ = f.base.Shutdown(ctx)
	done := make(chan struct{})
	go func() {
		f.conns.Wait()
		f.workers.close()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// h2Conn is the connection a bridged RequestCtx sees (HTTP/2 or HTTP/3): the
// connection's addresses and TLS state (so ctx.IsTLS() and ctx.RemoteIP()
// work), and no I/O.
type h2Conn struct {
	laddr, raddr net.Addr
	st           *tls.ConnectionState
}

var errNoConnIO = errors.New("proxy: an HTTP/2 or HTTP/3 stream has no connection I/O")

func (c *h2Conn) Read([]byte) (int, error)             { return 0, errNoConnIO }
func (c *h2Conn) Write([]byte) (int, error)            { return 0, errNoConnIO }
func (c *h2Conn) Close() error                         { return nil }
func (c *h2Conn) LocalAddr() net.Addr                  { return c.laddr }
func (c *h2Conn) RemoteAddr() net.Addr                 { return c.raddr }
func (c *h2Conn) SetDeadline(time.Time) error          { return nil }
func (c *h2Conn) SetReadDeadline(time.Time) error      { return nil }
func (c *h2Conn) SetWriteDeadline(time.Time) error     { return nil }
func (c *h2Conn) Handshake() error                     { return nil }
func (c *h2Conn) ConnectionState() tls.ConnectionState { return *c.st }

// ServeHTTP is the bridge: one HTTP/2 stream through the fasthttp handler.
func (f *h2Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for p := f.peak.Load(); n > p && !f.peak.CompareAndSwap(p, n); p = f.peak.Load() {
	}
	if r.Context().Err() != nil {
		// The client reset the stream while x/net had it queued (rapid
		// reset): nobody is waiting for the answer, so do no work for it.
		return
	}
	f.calls.Add(1)
	f.workers.run(f, w, r)
}

// bridge runs one stream through the fasthttp handler and copies the answer
// back to w.
func (f *h2Front) bridge(w http.ResponseWriter, r *http.Request) {
	conn, _ := r.Context().Value(connKey{}).(net.Conn)
	if conn == nil {
		writeH2Error(w, http.StatusInternalServerError, "internal error")
		return
	}
	st := f.ctxs.Get().(*h2Stream)
	ctx := &st.ctx
	defer func() {
		_ = ctx.Response.CloseBodyStream()
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.ResetUserValues()
		f.ctxs.Put(st)
	}()
	ctx.Init2(conn, zapPrintf{f.log}, false)

	if f.fields != (h2srv.FieldLimits{}) {
		fc := f.fields.Counter()
		for k, vs := range r.Header {
			for _, v := range vs {
				if fc.Add(k, v) != "" {
					writeH2Error(w, http.StatusRequestHeaderFieldsTooLarge, "request header fields too large")
					return
				}
			}
		}
	}
	req := &ctx.Request
	req.Header.SetMethod(r.Method)
	req.SetRequestURI(r.RequestURI)
	req.Header.SetHost(r.Host)
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		if r.ContentLength > int64(f.maxBody) {
			writeH2Error(w, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		nr, err := io.Copy(req.BodyWriter(), io.LimitReader(r.Body, int64(f.maxBody)+1))
		if err != nil {
			writeH2Error(w, http.StatusBadRequest, "request body not read")
			return
		}
		if nr > int64(f.maxBody) {
			writeH2Error(w, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		req.Header.SetContentLength(int(nr))
	}

	f.handler(ctx)

	resp := &ctx.Response
	h := w.Header()
	st.copyHeader(h, &resp.Header)
	head := r.Method == http.MethodHead
	if !resp.IsBodyStream() {
		body := resp.Body()
		if head {
			if cl := resp.Header.ContentLength(); cl >= 0 {
				h["Content-Length"] = []string{strconv.Itoa(cl)}
			}
		} else {
			h["Content-Length"] = []string{strconv.Itoa(len(body))}
		}
		w.WriteHeader(resp.StatusCode())
		if !head && len(body) > 0 && bodyAllowed(resp.StatusCode()) {
			_, _ = w.Write(body)
		}
		return
	}
	if cl := resp.Header.ContentLength(); cl >= 0 {
		h["Content-Length"] = []string{strconv.Itoa(cl)}
	}
	w.WriteHeader(resp.StatusCode())
	if !head && bodyAllowed(resp.StatusCode()) {
		if _, err := io.Copy(w, resp.BodyStream()); err != nil {
			// The origin's stream broke mid-way: reset the HTTP/2 stream so
			// the client cannot take the truncated body for the whole.
			panic(http.ErrAbortHandler)
		}
	}
}

// h2Stream is the pooled state of one bridged stream: its RequestCtx and the
// scratch of the header copy.
type h2Stream struct {
	ctx  fasthttp.RequestCtx
	vals []byte
	hdrs []h2Field
}

type h2Field struct {
	key        string
	start, end int
}

// h2Keys maps the names of the fields the edge usually answers with to the
// key the bridge gives them in net/http's header map, interned so that the
// copy allocates no key strings. Names x/net and quic-go look up in that map
// (Content-Type, Content-Length, Content-Encoding, Date, Trailer, Connection)
// stay canonical; every other name is lower case, the form HTTP/2 and HTTP/3
// send, so their encoders need not lower it (x/net allocates to lower any
// name outside its own short list, X-Request-Id for one).
var h2Keys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"Content-Type", "Content-Length", "Content-Encoding", "Date", "Trailer", "Connection"} {
		m[k] = k
	}
	for _, k := range []string{
		"Accept-Ranges", "Age", "Alt-Svc", "Cache-Control", "Cache-Tag", "Content-Language",
		"Content-Range", "Etag", "Expires", "Last-Modified", "Link", "Location", "Retry-After",
		"Server", "Set-Cookie", "Strict-Transport-Security", "Vary", "Via", "Www-Authenticate", "X-Cache",
		"X-Content-Type-Options", "X-Frame-Options", "X-Request-Id", "X-Served-By",
	} {
		m[k] = strings.ToLower(k)
	}
	return m
}()

// copyHeader copies src into h, less the fields HTTP/2 forbids and
// Content-Length (the bridge sets it). Every value lands in one string and
// every field's []string in one slice, so a copy costs two allocations (plus
// names outside h2Keys), not two or three per field.
func (st *h2Stream) copyHeader(h http.Header, src *fasthttp.ResponseHeader) {
	vals, hdrs := st.vals[:0], st.hdrs[:0]
	for k, v := range src.All() {
		switch string(k) {
		case "Content-Length", "Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "Proxy-Connection":
			continue
		}
		key, ok := h2Keys[string(k)]
		if !ok {
			key = lowerKey(k)
		}
		hdrs = append(hdrs, h2Field{key: key, start: len(vals), end: len(vals) + len(v)})
		vals = append(vals, v...)
	}
	st.vals, st.hdrs = vals, hdrs
	if len(hdrs) == 0 {
		return
	}
	all := string(vals)
	vs := make([]string, len(hdrs))
	for i, f := range hdrs {
		vs[i] = all[f.start:f.end]
		if prev, ok := h[f.key]; ok {
			h[f.key] = append(prev, vs[i])
		} else {
			h[f.key] = vs[i : i+1 : i+1]
		}
	}
}

// lowerKey is k in lower case, as a new string (one allocation).
func lowerKey(k []byte) string {
	var b strings.Builder
	b.Grow(len(k))
	for _, c := range k {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

func writeH2Error(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, `{"error":"`+msg+`"}`)
}

// connKey carries the stream's connection stand-in (a net.Conn without I/O)
// into the handler.
type connKey struct{}
