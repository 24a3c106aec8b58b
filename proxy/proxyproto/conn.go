package proxyproto

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Reason says why a connection was refused (the metric's label).
type Reason string

const (
	// Untrusted: the connection's source is not in Policy.Trusted.
	Untrusted Reason = "untrusted"
	// Invalid: the first bytes are no valid PROXY header (none at all, a
	// malformed one, or one longer than the bound).
	Invalid Reason = "invalid"
	// Timeout: the header did not arrive within Policy.Timeout.
	Timeout Reason = "timeout"
)

// Policy is what a listener that takes the PROXY protocol enforces.
type Policy struct {
	// Trusted lists the networks allowed to send a header; a connection from
	// anywhere else is closed at once (anyone else could claim any address).
	Trusted []netip.Prefix
	// Timeout bounds receiving the header from the connection's start.
	Timeout time.Duration
	// Rejected, when set, is called once for each connection refused.
	Rejected func(Reason)
}

// Trusts reports whether a connection from addr may send a header.
func (p *Policy) Trusts(addr net.Addr) bool {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return false
	}
	ip = ip.Unmap()
	for _, n := range p.Trusted {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// Reject counts a refused connection (calls Rejected).
func (p *Policy) Reject(r Reason) {
	if p.Rejected != nil {
		p.Rejected(r)
	}
}

// Listener wraps a net.Listener so that every connection it returns starts
// with a PROXY header, read on the connection's first Read (never in Accept,
// whose loop one slow client must not hold up). Connections from untrusted
// sources are closed in Accept.
type Listener struct {
	net.Listener
	Policy *Policy
}

// Accept returns the next connection from a trusted source, as a *Conn.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !l.Policy.Trusts(c.RemoteAddr()) {
			l.Policy.Reject(Untrusted)
			_ = c.Close()
			continue
		}
		return &Conn{Conn: c, p: l.Policy}, nil
	}
}

// Conn is a connection whose first bytes are a PROXY header. Read returns
// what follows it; RemoteAddr is the client's address from the header (the
// socket's for PROXY UNKNOWN and LOCAL). A missing, malformed or late header
// closes the connection without an answer (as HAProxy does) and Read reports
// io.EOF, so the HTTP server closes quietly too.
type Conn struct {
	net.Conn
	p    *Policy
	once sync.Once
	done atomic.Bool
	// raddr is the address RemoteAddr reports once the header is read.
	raddr net.Addr
	// rest holds bytes read past the header, returned first.
	rest []byte
	err  error
	// deadline is the read deadline the server last set; the header's own
	// bound applies on top of it while the header is read.
	mu       sync.Mutex
	deadline time.Time
}

// Header reads the header if it was not read yet and reports the error that
// refused the connection, if any.
func (c *Conn) Header() error {
	c.once.Do(c.readHeader)
	return c.err
}

func (c *Conn) readHeader() {
	defer c.done.Store(true)
	c.raddr = c.Conn.RemoteAddr()
	c.mu.Lock()
	saved := c.deadline
	c.mu.Unlock()
	limit := time.Now().Add(c.p.Timeout)
	if c.p.Timeout > 0 && (saved.IsZero() || limit.Before(saved)) {
		_ = c.Conn.SetReadDeadline(limit)
	}
	buf := make([]byte, 256)
	n := 0
	for {
		m, err := c.Conn.Read(buf[n:])
		n += m
		h, hn, perr := Parse(buf[:n])
		switch {
		case perr != nil:
			c.fail(Invalid)
			return
		case hn > 0:
			if !h.Local {
				c.raddr = h.SrcAddr()
			}
			if hn < n {
				c.rest = buf[hn:n]
			}
			_ = c.Conn.SetReadDeadline(saved)
			return
		case err != nil:
			switch ne, ok := err.(net.Error); {
			case ok && ne.Timeout():
				c.fail(Timeout)
			case n == 0:
				// Closed before sending a byte (a balancer's TCP health
				// check): refused, but not counted.
				c.fail("")
			default:
				c.fail(Invalid) // closed within a header
			}
			return
		}
		if n == len(buf) {
			buf = append(buf, make([]byte, min(len(buf), MaxV2+1-len(buf)))...)
		}
	}
}

func (c *Conn) fail(r Reason) {
	if r != "" {
		c.p.Reject(r)
	}
	c.err = io.EOF
	_ = c.Conn.Close()
}

// Read returns the bytes after the header.
func (c *Conn) Read(p []byte) (int, error) {
	if !c.done.Load() {
		if err := c.Header(); err != nil {
			return 0, err
		}
	}
	if c.err != nil {
		return 0, c.err
	}
	if len(c.rest) > 0 {
		n := copy(p, c.rest)
		c.rest = c.rest[n:]
		if len(c.rest) == 0 {
			c.rest = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

// RemoteAddr is the client's address from the header (read first if need be).
func (c *Conn) RemoteAddr() net.Addr {
	if !c.done.Load() {
		_ = c.Header()
	}
	return c.raddr
}

// SetDeadline records the read deadline (see readHeader) and sets both.
func (c *Conn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

// SetReadDeadline records the deadline (see readHeader) and sets it.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}
