package h1

import (
	"errors"
	"io"
	"net"
	"sync"
)

// Listener wraps a net.Listener so that every accepted connection is a *Conn:
// everything a server reads from it has passed a RequestFramer.
type Listener struct {
	net.Listener
	// Limits are given to each connection's framer.
	Limits Limits
	// WriteBuffer, when above 0, is the size of the buffer the server writes
	// each connection through (fasthttp's WriteBufferSize): see
	// Conn.SetWriteBuffer.
	WriteBuffer int
}

// Accept waits for the next connection and wraps it.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	fc := NewConn(c, l.Limits)
	fc.SetWriteBuffer(l.WriteBuffer)
	return fc, nil
}

// Conn is a net.Conn whose reads pass a RequestFramer: a server reading it
// sees the complete, valid requests the client sent, in order, with empty lines
// between them removed (RFC 9112 §2.2), and never a byte of a request the
// framer rejected beyond the prefix it had already passed on.
//
// When the framer rejects a request, Read returns the bytes of the earlier
// valid requests first; once the server has read those, Read fails with the
// *Error (Err reports it too). fasthttp then answers the requests it already
// has, calls its ErrorHandler with an error that wraps the *Error (errors.As
// finds it) and closes the connection. fasthttp closes a keep-alive connection
// silently when a read fails before any byte of the next request, so when no
// byte of the rejected request has been passed on yet, Read first returns one
// byte, 'X', which no request starts a complete message with: fasthttp then
// sees an unfinished request-line when the read fails, and answers.
//
// A message the framer accepts only through Limits.TolerateDangerousFraming
// (RequestFramer.MustClose) is the last one read: Read passes it on, then
// returns io.EOF, so the server answers it and closes the connection (RFC 9112
// §6.3 rule 3), and nothing the client sent after it is read.
//
// With Limits.UnfoldObsFold, a field line's line end that arrives last in a
// read is held back until the next byte shows whether it starts an obs-fold,
// so that the server only ever reads the unfolded bytes. The same way, the
// start of a trailer field name that arrives last in a read is held back
// while it may still name a field the framer discards (RequestFramer.Pending),
// and the lines of those fields are removed from what Read returns (the server
// never sees them, RFC 9110 §6.5.1). So is a Transfer-Encoding field line of
// the header section, from the start of its name, until its end shows whether
// it is one the framer drops (only identity: RequestFramer.HeaderDropped); the
// framer bounds such a line (MaxTransferEncodingLine). Read then needs a
// buffer longer than the bytes it may hold, at most
// MaxTransferEncodingLine+1 (else io.ErrShortBuffer).
//
// Writes, deadlines and addresses are the wrapped connection's. A Conn is used
// by one reader at a time, as a server does.
type Conn struct {
	net.Conn
	f   RequestFramer
	err *Error
	// delivered: a byte of the current message has been returned by Read.
	delivered bool
	// fresh: the next Scan starts a new message (Skipped belongs to the last).
	fresh bool
	// held: the CR or CRLF ending a field line at the end of the last read,
	// kept back while an obs-fold could still turn it into SP (FoldPending),
	// the start of a trailer field name that may still be discarded, or a
	// Transfer-Encoding line that may still be dropped (Pending); nheld bytes
	// of it.
	held  [MaxTransferEncodingLine + 1]byte
	nheld int
	// unfold: how many held bytes the first Scan of a read unfolded.
	unfold int
	// dropHeld: how many held bytes the first Scan of a read discarded (the
	// start of a discarded trailer line or dropped Transfer-Encoding line).
	dropHeld int
	// rewFrom, rewTo: the held bytes the first Scan of a read rewrote with SP
	// (RequestFramer.RewriteBefore), relative to the read's new bytes.
	rewFrom, rewTo int
	// raw, for a plain TCP connection, reads and writes without waking the
	// runtime's sysmon thread on every request (rawio_linux.go); nil otherwise.
	raw *rawIO
	// fullWrite is the server's write buffer size (SetWriteBuffer); pending
	// holds a full buffer written but not yet sent, until the next Write,
	// Read or Close.
	fullWrite int
	pending   *[]byte
	// wmu orders writes with the flush of pending (taken only when fullWrite
	// is set): Read, Write and Close may run on different goroutines.
	wmu sync.Mutex
	// eof: a message the framer accepted only through
	// Limits.TolerateDangerousFraming (MustClose) has been passed on, or
	// CloseAfterMessage was called and one has: every later Read returns
	// io.EOF, so the server answers it and closes.
	eof bool
	// closeNext: CloseAfterMessage.
	closeNext bool
	// closeMsg is the number of the message after which the connection
	// ends (eof), 0 while none (ClosesAfter).
	closeMsg uint64
	// msgs counts the messages whose header section the framer accepted
	// (the first is 1, as fasthttp numbers a connection's requests);
	// counted: the current one is counted. coded are the ones among them
	// with transfer codings before chunked (TransferCodings), oldest first.
	msgs    uint64
	counted bool
	coded   []codedMsg
}

// codedMsg is a message's transfer codings (RequestFramer.Codings).
type codedMsg struct {
	n       uint64
	codings string
}

// TransferCodings returns the transfer codings the n-th message read from the
// connection (1 for the first, as fasthttp.RequestCtx.ConnRequestNum counts)
// named before chunked ("gzip" for "Transfer-Encoding: gzip, chunked"; see
// RequestFramer.Codings), or "" for a message that named none. The server
// reads such a message as plain chunked (the framer took the codings out of
// the bytes it passes on), so the handler must ask here and forward the body
// still coded. The answer comes from the framer, never from the request's
// fields, so a client cannot make it up. Each message's codings are asked for
// once, in order: the ones of messages before n are forgotten.
func (c *Conn) TransferCodings(n uint64) string {
	k := 0
	for k < len(c.coded) && c.coded[k].n < n {
		k++
	}
	codings := ""
	if k < len(c.coded) && c.coded[k].n == n {
		codings = c.coded[k].codings
		k++
	}
	if k > 0 {
		c.coded = append(c.coded[:0], c.coded[k:]...)
	}
	return codings
}

// ClosesAfter reports whether the connection ends after its n-th message
// (1 for the first, as fasthttp.RequestCtx.ConnRequestNum counts): the one
// the framer accepted only through Limits.TolerateDangerousFraming, or the
// one CloseAfterMessage marked. The handler then answers with Connection:
// close, so the client knows; the messages before it keep the connection.
func (c *Conn) ClosesAfter(n uint64) bool { return c.closeMsg != 0 && n >= c.closeMsg }

// CloseAfterMessage makes the connection end (io.EOF) after the current
// message, as for a message the framer marks MustClose: for a connection
// handed over in the middle of such a message whose bytes were already
// rewritten (the event-loop core detaching a streamed body), where the
// framer can no longer tell.
func (c *Conn) CloseAfterMessage() { c.closeNext = true }

// SetWriteBuffer tells a raw TCP connection the size n of the buffer its
// server writes through (bufio.Writer): a Write of exactly n bytes is then
// taken to be a full buffer flushed in the middle of an answer, and is held to
// go out with the next Write in one writev, or before the next Read or on
// Close, whichever comes first. 0 turns it off; connections without raw I/O
// ignore it.
//
// Why: bufio.Writer sends an answer larger than its free space in two writes,
// the header and the start of the body, then the rest of the body; on the
// browse campaign 4 in 5 answers (HTML pages of 25-28 KB, lists of 4-6 KB)
// took two write system calls, each a pass through the TCP stack and a wake-up
// of the client. An HTTP/1.1 server like fasthttp always either writes again,
// reads the next request or closes after a flush, so the held bytes never
// wait on the peer. Not for connections handed to code that may write exactly
// n bytes and then wait for something else (a hijacked tunnel): the edge does
// not hijack.
func (c *Conn) SetWriteBuffer(n int) {
	if c.raw != nil {
		c.fullWrite = max(n, 0)
	}
}

// heldPool recycles the buffers that hold a full write (4 KB with fasthttp's
// default), so holding one allocates nothing.
var heldPool sync.Pool

func getHeld(n int) *[]byte {
	if b, ok := heldPool.Get().(*[]byte); ok && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n)
	return &b
}

// flushPending sends the held full buffer, if any; c.wmu is held.
func (c *Conn) flushPending() error {
	b := c.pending
	if b == nil {
		return nil
	}
	c.pending = nil
	_, err := c.raw.write(*b)
	heldPool.Put(b)
	return err
}

// NewConn wraps c with a framer using limits.
func NewConn(c net.Conn, limits Limits) *Conn {
	return &Conn{Conn: c, f: RequestFramer{Limits: limits}, fresh: true, raw: newRawIO(c)}
}

// Write writes p to the connection (raw I/O on a plain TCP connection).
func (c *Conn) Write(p []byte) (int, error) {
	if c.raw == nil {
		return c.Conn.Write(p)
	}
	if c.fullWrite == 0 {
		return c.raw.write(p)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if b := c.pending; b != nil {
		c.pending = nil
		n, err := c.raw.writev(*b, p)
		heldPool.Put(b)
		return n, err
	}
	if len(p) == c.fullWrite {
		b := getHeld(len(p))
		copy(*b, p)
		c.pending = b
		return len(p), nil
	}
	return c.raw.write(p)
}

// Close sends a held full buffer (SetWriteBuffer), then closes. A Write still
// in progress on another goroutine is not waited for: closing ends it.
func (c *Conn) Close() error {
	if c.fullWrite > 0 && c.wmu.TryLock() {
		_ = c.flushPending()
		c.wmu.Unlock()
	}
	return c.Conn.Close()
}

// readConn reads the wrapped connection (raw I/O on a plain TCP connection).
func (c *Conn) readConn(p []byte) (int, error) {
	if c.raw != nil {
		return c.raw.read(p)
	}
	return c.Conn.Read(p)
}

// placeholder is the byte Read returns in place of a rejected request that no
// byte of was passed on yet.
const placeholder = 'X'

// Err is the framing error that stopped the connection, or nil.
func (c *Conn) Err() error {
	if c.err == nil {
		return nil
	}
	return c.err
}

// Read reads from the connection into p and returns only bytes the framer
// accepted, moved together where empty lines were removed.
func (c *Conn) Read(p []byte) (int, error) {
	// A held full buffer goes out before the server waits for the client,
	// which may be waiting for it.
	if c.fullWrite > 0 {
		c.wmu.Lock()
		err := c.flushPending()
		c.wmu.Unlock()
		if err != nil {
			return 0, err
		}
	}
	for {
		if c.err != nil {
			if !c.delivered && len(p) > 0 {
				c.delivered = true
				p[0] = placeholder
				return 1, nil
			}
			return 0, c.err
		}
		if c.eof {
			return 0, io.EOF
		}
		h := c.nheld
		if h > 0 && len(p) <= h {
			return 0, io.ErrShortBuffer
		}
		// The held line end goes first, as if it had been read now.
		copy(p, c.held[:h])
		c.nheld = 0
		n, err := c.readConn(p[h:])
		w := h + c.filter(p[h:h+n])
		// (A discarded trailer line's fold: its CRLF was dropped, not held.)
		for k := max(h-c.unfold, 0); k < h; k++ {
			p[k] = ' '
		}
		// A Transfer-Encoding line held back, rewritten at its end. (Never
		// before p: the framer holds such a line whole.)
		for k := max(h+c.rewFrom, 0); k < h+c.rewTo; k++ {
			p[k] = ' '
		}
		if d := min(c.dropHeld, h); d > 0 {
			copy(p[h-d:], p[h:w])
			w -= d
		}
		if c.err != nil {
			if w > 0 {
				return w, nil
			}
			continue
		}
		if k := c.f.Pending(); k > 0 && err == nil {
			// The last k bytes (never passed on yet) wait for the next bytes.
			w -= k
			c.nheld = copy(c.held[:], p[w:w+k])
		}
		if w > 0 || err != nil || n == 0 {
			return w, err
		}
		// Only empty lines arrived: read again (within the deadline the
		// server set on the connection).
	}
}

// filter frames b in place and returns how many bytes at its front are now
// the accepted ones: empty lines between requests and discarded trailer lines
// taken out.
func (c *Conn) filter(b []byte) int {
	w, off := 0, 0
	c.unfold, c.dropHeld, c.rewFrom, c.rewTo = 0, 0, 0, 0
	for off < len(b) {
		before := 0
		if !c.fresh {
			before = c.f.Skipped()
		}
		n, done, err := c.f.Scan(b[off:])
		if off == 0 {
			// Only a read's first Scan continues a message's header section.
			c.unfold = c.f.UnfoldedBefore()
			c.rewFrom, c.rewTo = c.f.RewriteBefore()
		}
		if err != nil {
			// The rejected request's bytes in this read are dropped; those
			// passed on before cannot complete a request.
			var e *Error
			if !errors.As(err, &e) {
				e = ErrRequestLine
			}
			c.err = e
			return w
		}
		c.fresh = done
		if !c.counted && c.f.HeaderDone() {
			c.counted = true
			c.msgs++
			if cod := c.f.Codings(); len(cod) > 0 {
				c.coded = append(c.coded, codedMsg{c.msgs, string(cod)})
			}
		}
		// A discarded trailer line is the tail of what Scan consumed; one
		// that began in held bytes can only end the read's first Scan.
		drop := c.f.DropTail()
		if drop > n {
			c.dropHeld, drop = drop-n, n
		}
		from, to := off+c.f.Skipped()-before, off+n-drop
		if to > from {
			if w != from {
				copy(b[w:], b[from:to])
			}
			w += to - from
			c.delivered = true
		}
		if done {
			c.delivered, c.counted = false, false
			if c.f.MustClose() || c.closeNext {
				// Nothing after this message is read (the bytes left in b
				// are dropped): the server answers it, then reads io.EOF.
				c.eof, c.closeMsg = true, c.msgs
				return w
			}
		}
		off += n
	}
	return w
}
