package proxy

import (
	"bytes"
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/novashop/edge/proxy/config"
	"github.com/novashop/edge/proxy/h1"
	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"
)

// h2c: HTTP/2 without TLS on the plaintext listener (config h2c: true), by
// prior knowledge only: a connection whose first 24 bytes are the HTTP/2
// client preface goes to an HTTP/2 server of its own (the same h2Front as the
// TLS listener's, with the same limits against the known attacks), every
// other connection to the plaintext fasthttp server through the h1 framer,
// exactly as without h2c. Both end in the plaintext listener's one handler
// (redirect and ACME wrappers included). The Upgrade: h2c dance of RFC 7540
// §3.2 (removed from RFC 9113) is not offered: curl --http2-prior-knowledge,
// h2load and gRPC clients use prior knowledge, and browsers never speak h2c.
//
// On the goroutine core each new connection is sniffed in a goroutine of its
// own, bounded by timeouts.read, before it is passed on; on the event-loop
// core the loop sniffs its first bytes and gives an HTTP/2 connection up to
// the same server (evloop.Config.H2C), bounded by the same timeout.

// h2cFront is the plaintext listener's HTTP/2 side.
type h2cFront struct {
	f       *h2Front
	sniff   time.Duration // bound on reading the first bytes of a connection
	closing atomic.Bool
	lnMu    sync.Mutex
	lns     []net.Listener
}

func (s *Server) setupH2C(cfg config.Config) {
	if !cfg.H2C {
		return
	}
	sniff := cfg.Timeouts.Read
	if sniff <= 0 {
		sniff = h2DefaultWriteBound
	}
	// The handler is read per request: setupTLS may wrap the plaintext one
	// (redirect to HTTPS, ACME HTTP-01 answers) after this.
	handler := func(ctx *fasthttp.RequestCtx) { s.public.Handler(ctx) }
	// The native server's inline path (cache hits on the reading
	// goroutine) bypasses s.public.Handler, so it is off when setupTLS will
	// put its own handler in front (redirect to HTTPS, ACME answers), as
	// for the event-loop core.
	var inline *h2Inline
	if !cfg.TLS.RedirectHTTP && len(cfg.TLS.ACME.Domains) == 0 {
		inline = s.inlineFor(nil)
	}
	s.h2c = &h2cFront{f: newH2Front(s, s.log.Named("h2c"), handler, cfg, cfg.H2CServer, inline), sniff: sniff}
}

// serveH2C is Serve with h2c: an accept loop that sorts connections by their
// first bytes into HTTP/2 and the HTTP/1.1 server.
func (s *Server) serveH2C(ln net.Listener) error {
	h := s.h2c
	h.lnMu.Lock()
	h.lns = append(h.lns, ln)
	h.lnMu.Unlock()
	q := newConnQueue(ln.Addr())
	go func() {
		_ = s.public.Serve(&h1.Listener{Listener: q, Limits: s.framer, WriteBuffer: publicWriteBuffer})
	}()
	defer q.Close()
	return acceptLoop(ln, &h.closing, func(c net.Conn) { h.sort(c, q) })
}

var h2Preface = []byte(http2.ClientPreface)

// sort reads the connection's first bytes: the HTTP/2 preface goes to the
// HTTP/2 server, anything else (as soon as a byte differs) to the HTTP/1.1
// server, with the bytes read replayed in both cases.
func (h *h2cFront) sort(c net.Conn, q *connQueue) {
	_ = c.SetReadDeadline(time.Now().Add(h.sniff))
	var buf [24]byte
	n := 0
	for {
		m, err := c.Read(buf[n:])
		n += m
		if !bytes.HasPrefix(h2Preface, buf[:n]) {
			break // not HTTP/2: fasthttp reads (and times out, and answers errors) as usual
		}
		if n == len(buf) {
			_ = c.SetReadDeadline(time.Time{})
			pc := &prefixConn{Conn: c, pre: buf[:n]}
			h.f.serveConn(pc, &h2cConn{laddr: c.LocalAddr(), raddr: c.RemoteAddr()})
			return
		}
		if err != nil {
			_ = c.Close() // silent, or closed within a preface
			return
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	if !q.put(&prefixConn{Conn: c, pre: buf[:n]}) {
		_ = c.Close()
	}
}

// shutdown closes the listeners and drains the h2c connections (the HTTP/1.1
// ones are fasthttp's, drained by the public server's shutdown).
func (h *h2cFront) shutdown(ctx context.Context) error {
	h.closing.Store(true)
	h.lnMu.Lock()
	for _, ln := range h.lns {
		_ = ln.Close()
	}
	h.lnMu.Unlock()
	return h.f.shutdown(ctx)
}

// shutdownH2C is shutdown on a Server without h2c too.
func (s *Server) shutdownH2C(ctx context.Context) error {
	if s.h2c == nil {
		return nil
	}
	return s.h2c.shutdown(ctx)
}

// prefixConn replays pre before reading the connection.
type prefixConn struct {
	net.Conn
	pre []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// h2cConn is the connection an h2c stream's RequestCtx sees: addresses, no
// I/O and, unlike h2Conn, no TLS state (so IsTLS is false and the origin gets
// X-Forwarded-Proto: http).
type h2cConn struct{ laddr, raddr net.Addr }

func (c *h2cConn) Read([]byte) (int, error)         { return 0, errNoConnIO }
func (c *h2cConn) Write([]byte) (int, error)        { return 0, errNoConnIO }
func (c *h2cConn) Close() error                     { return nil }
func (c *h2cConn) LocalAddr() net.Addr              { return c.laddr }
func (c *h2cConn) RemoteAddr() net.Addr             { return c.raddr }
func (c *h2cConn) SetDeadline(time.Time) error      { return nil }
func (c *h2cConn) SetReadDeadline(time.Time) error  { return nil }
func (c *h2cConn) SetWriteDeadline(time.Time) error { return nil }
