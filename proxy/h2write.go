package proxy

import (
	"crypto/tls"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// h2WriteConn is the connection x/net's HTTP/2 server writes to: writes go
// into a buffer that one writer goroutine per connection hands to the real
// connection (TLS or h2c), so the frames of many streams leave in a few large
// TLS records and syscalls instead of one or two each.
//
// Why: x/net writes each DATA frame larger than its 4 KiB buffer, and each
// flush, from a new goroutine, and waits for that write before it starts the
// next frame, so every frame became its own TLS record and write syscall, and
// each of those goroutines grew its stack on the TLS write path (under h2load
// writes were 15% of the edge's CPU and stack copies 9%). Here x/net's write
// is a copy into memory; while the writer goroutine is in a syscall the next
// frames gather behind it, so the batching costs no added latency (the first
// frame of a burst leaves at once).
//
// Bounds: at most h2WriteHigh bytes wait (x/net's write blocks past that,
// until its write deadline, which is its WriteByteTimeout, so a client that
// stops reading still stalls x/net's writes and its queued-control-frame
// limit still applies); each write to the real connection has the same
// timeout; a write error closes the connection. Close sends what is pending
// (a GOAWAY, say) for at most h2CloseFlush, then closes.
type h2WriteConn struct {
	net.Conn
	// raw is the connection under TLS (Conn itself for h2c): closing it
	// aborts at once, where tls.Conn.Close would first try to send
	// close_notify, which waits up to 5 s on a peer that stopped reading.
	raw     net.Conn
	timeout time.Duration

	mu       sync.Mutex
	buf      *[]byte // pending bytes (pooled), nil when none
	err      error   // the writer's sticky write error
	closed   bool
	deadline time.Time // x/net's write deadline, for waits on a full buffer
	// timer bounds waits on a full buffer (reused: x/net's writes are
	// serialized, so one waits at a time).
	timer *time.Timer
	// readClear: the connection's read deadline is known to be clear.
	readClear atomic.Bool

	wake chan struct{} // cap 1: bytes pending or closed
	room chan struct{} // cap 1: the writer took the pending bytes
	done chan struct{} // closed when the writer goroutine ends
}

// h2WriteTLSConn adds the TLS state x/net reads from a TLS connection (it
// checks the version and cipher suite); h2c connections go without, so x/net
// does not take them for TLS.
type h2WriteTLSConn struct {
	*h2WriteConn
	tc *tls.Conn
}

func (c h2WriteTLSConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

const (
	h2WriteHigh   = 64 << 10
	h2WriteBufCap = 32 << 10
	h2CloseFlush  = time.Second
)

var h2WriteBufs = sync.Pool{New: func() any { b := make([]byte, 0, h2WriteBufCap); return &b }}

// newH2WriteConn wraps c and starts its writer goroutine (it ends with Close
// or the first write error). timeout bounds each write to c.
func newH2WriteConn(c net.Conn, timeout time.Duration) net.Conn {
	wc := &h2WriteConn{Conn: c, raw: c, timeout: timeout, wake: make(chan struct{}, 1), room: make(chan struct{}, 1), done: make(chan struct{})}
	tc, isTLS := c.(*tls.Conn)
	if isTLS {
		wc.raw = tc.NetConn()
	}
	go wc.writer()
	if isTLS {
		return h2WriteTLSConn{wc, tc}
	}
	return wc
}

func (c *h2WriteConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	for c.err == nil && !c.closed && c.buf != nil && len(*c.buf) >= h2WriteHigh {
		dl := c.deadline
		c.mu.Unlock()
		if err := c.waitRoom(dl); err != nil {
			return 0, err
		}
		c.mu.Lock()
	}
	if err := c.err; err != nil {
		c.mu.Unlock()
		return 0, err
	}
	if c.closed {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	if c.buf == nil {
		c.buf = h2WriteBufs.Get().(*[]byte)
	}
	*c.buf = append(*c.buf, p...)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

// waitRoom waits until the writer has taken the pending bytes, the writer
// ended, or the deadline dl (zero: none) passed.
func (c *h2WriteConn) waitRoom(dl time.Time) error {
	if dl.IsZero() {
		select {
		case <-c.room:
		case <-c.done:
		}
		return nil
	}
	d := time.Until(dl)
	if d <= 0 {
		return os.ErrDeadlineExceeded
	}
	c.mu.Lock()
	t := c.timer
	if t == nil {
		t = time.NewTimer(d)
		c.timer = t
	} else {
		t.Reset(d) // Go 1.23+: no stale tick after Stop or Reset
	}
	c.mu.Unlock()
	defer t.Stop()
	select {
	case <-c.room:
	case <-c.done:
	case <-t.C:
		return os.ErrDeadlineExceeded
	}
	return nil
}

// writer hands the pending bytes to the connection, one batch per write.
func (c *h2WriteConn) writer() {
	defer close(c.done)
	for {
		c.mu.Lock()
		b := c.buf
		c.buf = nil
		closed := c.closed
		c.mu.Unlock()
		if b == nil {
			if closed {
				return
			}
			<-c.wake
			continue
		}
		select {
		case c.room <- struct{}{}:
		default:
		}
		if c.timeout > 0 {
			_ = c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
		}
		_, err := c.Conn.Write(*b)
		if cap(*b) <= 4*h2WriteHigh {
			*b = (*b)[:0]
			h2WriteBufs.Put(b)
		}
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			_ = c.raw.Close()
			return
		}
	}
}

// SetWriteDeadline sets the deadline of waits for room in the buffer; the
// writer bounds its own writes.
func (c *h2WriteConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil
}

func (c *h2WriteConn) SetDeadline(t time.Time) error {
	_ = c.SetWriteDeadline(t)
	return c.SetReadDeadline(t)
}

// SetReadDeadline skips clearing a deadline that is already clear: x/net
// clears it for every new stream (net/http may have set one before handing
// the connection over), which is work in the runtime's poller each time.
func (c *h2WriteConn) SetReadDeadline(t time.Time) error {
	if t.IsZero() && c.readClear.Load() {
		return nil
	}
	err := c.Conn.SetReadDeadline(t)
	c.readClear.Store(t.IsZero() && err == nil)
	return err
}

// Close sends what is pending (for at most h2CloseFlush) and closes the
// connection: politely (TLS close_notify) when everything was sent, at once
// when a write failed or the peer did not take the pending bytes in time.
// x/net may call it more than once and from several goroutines.
func (c *h2WriteConn) Close() error {
	c.mu.Lock()
	c.closed = true
	failed := c.err != nil
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	if !failed {
		t := time.NewTimer(h2CloseFlush)
		select {
		case <-c.done:
		case <-t.C:
			failed = true
		}
		t.Stop()
	}
	if !failed {
		c.mu.Lock()
		failed = c.err != nil
		c.mu.Unlock()
	}
	if failed {
		return c.raw.Close()
	}
	return c.Conn.Close()
}
