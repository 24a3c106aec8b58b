//go:build linux

package evloop

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

const (
	stateOpen uint8 = iota
	stateHandedOff
	stateClosed
	// stateForwarding: the request is being forwarded from the loop (Forward).
	stateForwarding
)

const (
	deadlineNone uint8 = iota
	deadlineIdle
	deadlineRead
	deadlineWrite
	// deadlineForward: the per-try timeout of a forwarded request.
	deadlineForward
	// deadlineProxy: the PROXY protocol header's bound (Config.ProxyProtocol).
	deadlineProxy
)

// conn is one client connection's state: what an idle keep-alive connection
// costs the edge, besides its table slot and the kernel's socket. It holds no
// buffer while idle: in and out come from a pool only while a request is
// incomplete or an answer unwritten. It is also the net.Conn the request context
// sees (addresses only; all I/O goes through the loop).
type conn struct {
	l     *loop
	raddr *net.TCPAddr
	// in holds the bytes of an incomplete request (and pipelined ones behind it).
	in *[]byte
	// out holds the unwritten part of the answers, from outOff on.
	out    *[]byte
	outOff int
	// ctx is the request context while a request is handed off or forwarded.
	ctx *fasthttp.RequestCtx
	// up is the upstream connection of a forwarded request's current try.
	up *upConn
	// deadline is the one timer (unix ns, 0 none) of kind deadlineKind;
	// queued is the wheel slot it is queued in (0 none).
	deadline int64
	queued   int64
	// need is how many buffered bytes the current request needs before it is
	// worth parsing again (its header length plus Content-Length).
	need         int
	fd           int32
	gen          uint32
	ev           uint32
	state        uint8
	deadlineKind uint8
	closeAfter   bool
	gone         bool
	// proxyHdr: the PROXY protocol header has not been read yet.
	proxyHdr bool
	// sniffH2: Config.H2C is set and c's first bytes, so far, are a prefix
	// of the HTTP/2 client preface (sniffPreface).
	sniffH2      bool
	sentContinue bool
	// What the current request asked for (see noteRequest).
	reqClose, http10, reqHead bool
	// rawDone: the Inline handler wrote the answer itself (EndRaw).
	rawDone bool
	// again: c is in its loop's again list (complete pipelined requests
	// left for the next round by the per-round budget).
	again bool
	// mustClose: the current request was accepted only through
	// limits.dangerous_framing: tolerate (h1.RequestFramer.MustClose), noted
	// on its first framing, since the framer rewrites what it tolerated (a
	// bare LF becomes SP) and later framings of the same bytes cannot tell.
	mustClose bool
}

func (c *conn) pending() int {
	if c.out == nil {
		return 0
	}
	return len(*c.out) - c.outOff
}

func (c *conn) reset() {
	if c.in != nil {
		putBuf(c.in)
	}
	if c.out != nil {
		putBuf(c.out)
	}
	l := c.l
	*c = conn{l: l, state: stateClosed}
}

var errNoIO = errors.New("evloop: the connection's I/O belongs to its event loop")

// The net.Conn methods let fasthttp.RequestCtx read the addresses.
func (c *conn) Read([]byte) (int, error)         { return 0, io.EOF }
func (c *conn) Write([]byte) (int, error)        { return 0, errNoIO }
func (c *conn) Close() error                     { return nil }
func (c *conn) LocalAddr() net.Addr              { return c.l.s.laddr }
func (c *conn) RemoteAddr() net.Addr             { return c.raddr }
func (c *conn) SetDeadline(time.Time) error      { return nil }
func (c *conn) SetReadDeadline(time.Time) error  { return nil }
func (c *conn) SetWriteDeadline(time.Time) error { return nil }

func tcpAddr(sa unix.Sockaddr) *net.TCPAddr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IPv4(a.Addr[0], a.Addr[1], a.Addr[2], a.Addr[3]).To4(), Port: a.Port}
	case *unix.SockaddrInet6:
		ip := make(net.IP, net.IPv6len)
		copy(ip, a.Addr[:])
		return &net.TCPAddr{IP: ip, Port: a.Port}
	}
	return &net.TCPAddr{IP: net.IPv4zero}
}

// Buffers for in and out are pooled: only connections in the middle of a request
// or an answer hold one.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

const maxPooledBuf = 256 << 10

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > maxPooledBuf {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// appender is the io.Writer under the loop's bufio.Writer: it appends to dst.
type appender struct{ dst []byte }

func (a *appender) Write(p []byte) (int, error) {
	a.dst = append(a.dst, p...)
	return len(p), nil
}

// prefixConn replays bytes the loop had read before it gave the connection up.
// raddr is the client address the loop knew (a PROXY header's).
type prefixConn struct {
	net.Conn
	pre   []byte
	raddr net.Addr
	// mustClose: the request being handed over was accepted only through
	// limits.dangerous_framing: tolerate (MustClose).
	mustClose bool
}

// MustClose reports that the connection must close after the request it was
// handed over in (h1.Conn.CloseAfterMessage): the loop's framer rewrote what
// it tolerated in pre, so the goroutine core's framer cannot tell.
func (p *prefixConn) MustClose() bool { return p.mustClose }

func (p *prefixConn) RemoteAddr() net.Addr { return p.raddr }

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.pre) > 0 {
		n := copy(b, p.pre)
		p.pre = p.pre[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// LoopID is the index of the loop that owns c. The edge keys per-loop state by
// it (the access log's buffer shard), because fasthttp's ConnID is new for each
// request the loop serves.
func (c *conn) LoopID() int { return c.l.id }
