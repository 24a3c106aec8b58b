//go:build linux

package evloop

import (
	"bufio"
	"bytes"
	"errors"
	"github.com/novashop/edge/proxy/h1"
	"github.com/novashop/edge/proxy/proxyproto"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

var (
	errIncomplete = errors.New("evloop: incomplete request")
	errDetach     = errors.New("evloop: streamed body")
	// errRefused: Config.Expect answered from the header section.
	errRefused = errors.New("evloop: refused before 100 Continue")
	// errTimeout is what ErrorHandler sees for a request not read in time; it
	// reports Timeout() like the goroutine core's read deadline does.
	errTimeout = &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}

	continueLine = []byte("HTTP/1.1 100 Continue\r\n\r\n")
	crlf         = []byte("\r\n")
)

// process serves the complete requests in c's buffered input plus fresh (bytes
// just read into the loop's shared buffer), in order, and keeps what is left, an
// incomplete request or pipelined ones behind a hand-off, in c.in: only then does
// the connection hold an input buffer.
func (l *loop) process(c *conn, fresh []byte) {
	if c.proxyHdr {
		var ok bool
		if fresh, ok = l.proxyHeader(c, fresh); !ok {
			return
		}
	}
	if c.sniffH2 {
		var ok bool
		if fresh, ok = l.sniffPreface(c, fresh); !ok {
			return
		}
	}
	data := fresh
	buffered := c.in != nil && len(*c.in) > 0
	if buffered {
		*c.in = append(*c.in, fresh...)
		data = *c.in
	}
	off, served := 0, 0
	for c.state == stateOpen && !c.closeAfter && off < len(data) && c.pending() == 0 {
		if served == perRoundRequests {
			// Fairness: the rest of a deep pipeline waits for the next
			// round, so other connections of the loop are served between.
			if !c.again {
				l.again = append(l.again, timerRef{fd: c.fd, gen: c.gen})
				c.again = true
			}
			break
		}
		served++
		n := l.serveOne(c, data[off:])
		if c.state == stateClosed {
			return // detached or closed: c is reset
		}
		if n == 0 {
			break
		}
		off += n
		if c.state == stateOpen && c.pending() > 0 {
			// An answer made on the loop: send it before reading on.
			if !l.flush(c) {
				return
			}
		}
	}
	rest := data[off:]
	// While handed off, the goroutine owns closeAfter and out: only in is ours.
	handed := c.state == stateHandedOff || c.state == stateForwarding
	switch {
	case len(rest) == 0 || (!handed && c.closeAfter):
		if c.in != nil {
			putBuf(c.in)
			c.in = nil
		}
		c.need = 0
	case buffered:
		n := copy(*c.in, rest)
		*c.in = (*c.in)[:n]
	default:
		c.in = getBuf()
		*c.in = append(*c.in, rest...)
	}
	if handed || c.state != stateOpen || c.pending() > 0 {
		return
	}
	if c.in != nil {
		if c.deadlineKind != deadlineRead {
			// The read timeout runs from a request's first byte: trickling
			// bytes (slowloris) does not extend it.
			c.deadlineKind = deadlineRead
			l.setDeadline(c, l.s.cfg.ReadTimeout)
		}
	} else if c.deadlineKind != deadlineIdle {
		c.deadlineKind = deadlineIdle
		l.setDeadline(c, l.s.cfg.IdleTimeout)
	} else if d := l.s.cfg.IdleTimeout; d > 0 {
		c.deadline = l.now + int64(d)
		l.schedule(c)
	}
}

// proxyHeader reads the PROXY header from c's first bytes (buffered in c.in
// until it is whole; proxyproto.Parse bounds it). It reports whether requests
// follow: then fresh is what follows the header when it came in this read, or
// nil with the rest already moved to the front of c.in.
func (l *loop) proxyHeader(c *conn, fresh []byte) ([]byte, bool) {
	data := fresh
	if c.in != nil {
		*c.in = append(*c.in, fresh...)
		data = *c.in
	}
	h, n, err := proxyproto.Parse(data)
	switch {
	case err != nil:
		l.s.cfg.ProxyProtocol.Reject(proxyproto.Invalid)
		l.close(c)
		return nil, false
	case n == 0:
		if c.in == nil && len(fresh) > 0 {
			c.in = getBuf()
			*c.in = append(*c.in, fresh...)
		}
		return nil, false
	}
	c.proxyHdr = false
	if !h.Local {
		c.raddr = h.SrcAddr()
	}
	// The read timeout of the first request runs from the connection's first
	// byte, which was the header's.
	c.deadlineKind = deadlineRead
	l.setDeadline(c, l.s.cfg.ReadTimeout)
	if c.in != nil {
		m := copy(*c.in, data[n:])
		*c.in = (*c.in)[:m]
		if m == 0 {
			putBuf(c.in)
			c.in = nil
			return nil, false
		}
		return nil, true
	}
	if n == len(data) {
		return nil, false
	}
	return data[n:], true
}

// serveOne reads one request from the start of b and runs it. It returns how
// many bytes the request took, 0 when b holds no complete request (or c was
// closed or detached).
func (l *loop) serveOne(c *conn, b []byte) int {
	// RFC 9112 §2.2: empty lines before a request-line are ignored.
	skip := 0
	for bytes.HasPrefix(b[skip:], crlf) {
		skip += 2
	}
	if skip == len(b) || c.need > len(b) {
		return skip
	}
	// The strict framer (package h1) decides where the request ends and whether
	// it is acceptable at all; fasthttp then parses exactly those bytes.
	l.fr.Reset()
	fn, _, framed, ferr := l.fr.ScanMessage(b[skip:], false)
	if l.fr.MustClose() {
		c.mustClose = true
	}
	ctx := l.getCtx(c)
	var n int
	var err error
	codings := ""
	switch {
	case ferr != nil:
		err = ferr
	case framed:
		m := fn
		msg := b[skip:]
		if cod := l.fr.Codings(); len(cod) > 0 {
			// Transfer codings before chunked: fasthttp reads the body as
			// chunked, and the handler forwards it still coded
			// (TransferCodingsKey).
			codings = string(cod)
		}
		if l.fr.HeaderDropped() > 0 || l.fr.Rewrote() {
			msg, m = l.withoutDropped(b[skip : skip+fn])
		} else if l.fr.Discarded() > 0 && l.s.cfg.StreamAbove <= 0 {
			// Trailer fields the framer discards (fasthttp would refuse the
			// request for them): frame the message again, taking them out of
			// the bytes fasthttp reads. The message is consumed whole, so its
			// bytes in c's buffer may change. (With StreamAbove a chunked
			// request is detached with its bytes as sent, and the
			// goroutine core's h1.Conn discards them.)
			l.fr.Reset()
			_, m, _, _ = l.fr.ScanMessage(b[skip:skip+fn], true)
		}
		n, err = l.parse(c, ctx, msg[:m], false)
		if err == errIncomplete {
			// fasthttp wants more than the framer's complete message: the two
			// disagree on the framing, so refuse rather than guess.
			err = h1.ErrRequestLine
		}
		if err == nil && n == m {
			n = fn
		} else if err == nil && m != fn {
			// The bytes fasthttp read were compacted, so its length is not
			// one in b: it must end the message where the framer did.
			err = h1.ErrRequestLine
		}
	case l.fr.Discarded() > 0:
		// In the trailer section with a discarded field already in b:
		// fasthttp would refuse it, and there is nothing left to parse early
		// for (100 Continue, detaching a streamed body).
		c.need, l.expect100 = len(b)+1, false
		err = errIncomplete
	default:
		// Incomplete for the framer. parse still runs for what it does on a
		// partial request (100 Continue, detaching a streamed body), but a
		// request fasthttp would take as complete waits for the framer.
		msg := b[skip:]
		if l.fr.HeaderDropped() > 0 || l.fr.Rewrote() {
			cp, w := l.withoutDropped(msg)
			msg = cp[:w]
		}
		n, err = l.parse(c, ctx, msg, true)
		if err == nil {
			c.need = len(b) + 1
			err = errIncomplete
		}
	}
	switch err {
	case nil:
	case errIncomplete:
		if l.expect100 && !c.sentContinue {
			// The headers are in and the body is not: say so once (RFC 9110 §10.1.1).
			c.sentContinue = true
			if c.out == nil {
				c.out = getBuf()
			}
			*c.out = append(*c.out, continueLine...)
			l.flush(c)
		}
		l.putCtx(ctx)
		return skip
	case errDetach:
		l.putCtx(ctx)
		l.detach(c, b[skip:], c.mustClose)
		return 0
	case errRefused:
		// The final answer instead of the 100; the client may be sending
		// the body already, so the connection closes.
		noteRequest(c, ctx)
		ctx.SetConnectionClose()
		l.respond(c, ctx)
		l.putCtx(ctx)
		return len(b)
	default:
		noteRequest(c, ctx)
		l.s.cfg.ErrorHandler(ctx, err)
		ctx.SetConnectionClose()
		l.respond(c, ctx)
		l.putCtx(ctx)
		return len(b)
	}
	c.need, c.sentContinue = 0, false
	if codings != "" {
		ctx.SetUserValue(TransferCodingsKey, codings)
	}
	noteRequest(c, ctx)
	if c.mustClose {
		// RFC 9112 §6.3 rule 3: answered, then closed; nothing after it is
		// read.
		c.reqClose, c.mustClose = true, false
	}
	h := l.s.cfg.Handler
	if in := l.s.cfg.Inline; in != nil {
		done, rest := in(ctx)
		raw := c.rawDone
		c.rawDone = false
		if c.state == stateForwarding {
			// Inline started a Forward: the loop answers when it ends.
			return skip + n
		}
		if done {
			l.inline.Add(1)
			if raw {
				l.raw.Add(1)
			} else {
				l.respond(c, ctx)
			}
			l.putCtx(ctx)
			return skip + n
		}
		if rest != nil {
			h = rest
		}
	}
	l.handoff(c, ctx, h)
	return skip + n
}

// withoutDropped returns a copy of a message (or of its start) as fasthttp
// may read it, and the copy's length: without the Transfer-Encoding lines the
// framer drops (identity or other codings alone, h1.RequestFramer.HeaderDropped:
// fasthttp refuses a second Transfer-Encoding line), and with what comes
// before chunked in the line naming it overwritten with SP (Rewrote). A copy,
// not c's buffer rewritten in place: the loop frames a request's bytes again
// from the start while it is incomplete, and a chunked request detached to
// the goroutine core (StreamAbove) goes with its bytes as sent; in both the
// codings must still be there (h1.Conn takes them out again). Rare (a client
// sending identity or another coding), so the copy is not pooled.
func (l *loop) withoutDropped(b []byte) ([]byte, int) {
	cp := append([]byte(nil), b...)
	l.fr.Reset()
	l.fr.Preserve = false
	_, w, _, _ := l.fr.ScanMessage(cp, true)
	l.fr.Preserve = true
	return cp, w
}

// TransferCodingsKey is the user value under which the loop leaves, on a
// request whose Transfer-Encoding named other codings before chunked, those
// codings (h1.RequestFramer.Codings: "gzip" for "gzip, chunked"); the request
// itself reads as plain chunked. Only the loop sets it, so a client cannot;
// the goroutine core has h1.Conn.TransferCodings instead.
const TransferCodingsKey = "evloop.transfer-codings"

// parse reads one request from b into ctx with fasthttp's own parser, so the
// loop keeps the goroutine core's strictness. errIncomplete means wait for more.
// partial says the framer has not found the message's end in b: a request
// expecting 100 Continue is then shown to Config.Expect (errRefused) before
// its body is read, since fasthttp resets the request on an incomplete
// chunked body.
func (l *loop) parse(c *conn, ctx *fasthttp.RequestCtx, b []byte, partial bool) (int, error) {
	cfg := &l.s.cfg
	l.br.Reset(b)
	l.bu.Reset(&l.br)
	req := &ctx.Request
	l.expect100 = false
	if err := req.Header.Read(l.bu); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, fasthttp.ErrNeedMore) {
			c.need = len(b) + 1
			return 0, errIncomplete
		}
		return 0, err
	}
	head := len(b) - l.br.Len() - l.bu.Buffered()
	l.expect100 = req.MayContinue()
	if l.expect100 && partial && !c.sentContinue && cfg.Expect != nil && cfg.Expect(ctx) {
		return head, errRefused
	}
	cl := req.Header.ContentLength()
	switch {
	case cl == -1: // chunked
		if cfg.StreamAbove > 0 {
			return 0, errDetach
		}
		c.need = 1 // reparse on the next bytes
	case cl > 0:
		if cfg.StreamAbove > 0 && cl > cfg.StreamAbove {
			return 0, errDetach
		}
		if cl > cfg.MaxBodyBytes {
			return 0, fasthttp.ErrBodyTooLarge
		}
		if head+cl > len(b) {
			c.need = head + cl
			return 0, errIncomplete
		}
	default:
		return head, nil
	}
	if err := req.ContinueReadBody(l.bu, cfg.MaxBodyBytes, false); err != nil {
		// A chunk size line cut by the read comes back as ErrBrokenChunk
		// without the EOF in its chain; with partial the framer found the
		// bytes so far valid, so it is the end of the bytes, not a fault.
		var broken fasthttp.ErrBrokenChunk
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || partial && errors.As(err, &broken) {
			c.need = len(b) + 1
			return 0, errIncomplete
		}
		return 0, err
	}
	return len(b) - l.br.Len() - l.bu.Buffered(), nil
}

// prepare sets the connection headers of the answer as fasthttp.Server does and
// reports whether the connection closes after it. The request's own wishes were
// noted before the handler ran (noteRequest), which may rewrite its headers.
func prepare(c *conn, ctx *fasthttp.RequestCtx, closing bool) bool {
	resp := &ctx.Response
	closeConn := closing || c.reqClose || resp.Header.ConnectionClose()
	if c.reqHead {
		resp.SkipBody = true
	}
	if closeConn {
		resp.Header.SetConnectionClose()
	} else if c.http10 {
		resp.Header.Set(fasthttp.HeaderConnection, "keep-alive")
	}
	return closeConn
}

// noteRequest records what the request says about its connection before the
// handler may change its headers.
func noteRequest(c *conn, ctx *fasthttp.RequestCtx) {
	h := &ctx.Request.Header
	c.reqClose, c.http10, c.reqHead = h.ConnectionClose(), !h.IsHTTP11(), h.IsHead()
}

// respond serializes ctx.Response into c's output on the loop.
func (l *loop) respond(c *conn, ctx *fasthttp.RequestCtx) {
	if prepare(c, ctx, l.stopping) {
		c.closeAfter = true
	}
	if c.out == nil {
		c.out = getBuf()
	}
	if l.lightFor(ctx) {
		*c.out = l.writeLight(*c.out, ctx)
		return
	}
	l.app.dst = *c.out
	l.bw.Reset(&l.app)
	if err := ctx.Response.Write(l.bw); err != nil {
		c.closeAfter = true
	}
	_ = l.bw.Flush()
	*c.out = l.app.dst
	l.app.dst = nil
}

func (l *loop) getCtx(c *conn) *fasthttp.RequestCtx {
	var ctx *fasthttp.RequestCtx
	if n := len(l.ctx); n > 0 {
		ctx, l.ctx = l.ctx[n-1], l.ctx[:n-1]
	} else {
		ctx = new(fasthttp.RequestCtx)
	}
	ctx.Init2(c, l.s.cfg.Logger, false)
	ctx.Response.Header.SetNoDefaultContentType(true)
	if l.s.cfg.NoDefaultDate {
		setNoDefaultDate(&ctx.Response.Header)
	}
	return ctx
}

func (l *loop) putCtx(ctx *fasthttp.RequestCtx) {
	ctx.Request.Reset()
	ctx.Response.Reset()
	ctx.ResetUserValues()
	if len(l.ctx) < 1024 {
		l.ctx = append(l.ctx, ctx)
	}
}

// handoff runs ctx's request on a goroutine: the handler may block. The
// connection takes no further input until the answer is written (ordering), and
// the goroutine writes the answer itself: the connection's output is empty when a
// request is handed off, so nothing is ahead of it.
func (l *loop) handoff(c *conn, ctx *fasthttp.RequestCtx, h fasthttp.RequestHandler) {
	c.state, c.ctx = stateHandedOff, ctx
	c.deadline, c.deadlineKind = 0, deadlineNone
	l.handoffs.Add(1)
	l.s.inflight.Add(1)
	l.s.workers.run(job{c: c, ctx: ctx, h: h})
}

// goWriter is a hand-off goroutine's serializer.
type goWriter struct {
	app appender
	bw  *bufio.Writer
}

var goWriters = sync.Pool{New: func() any {
	w := &goWriter{}
	w.bw = bufio.NewWriterSize(&w.app, 16<<10)
	return w
}}

func (s *Server) serveHandedOff(c *conn, ctx *fasthttp.RequestCtx, h fasthttp.RequestHandler) {
	defer s.inflight.Add(-1)
	h(ctx)
	closeConn := prepare(c, ctx, s.closed.Load())
	w := goWriters.Get().(*goWriter)
	if ctx.Response.IsBodyStream() {
		// A streamed answer (large origin body): copy it out from here,
		// waiting for the socket with poll(2); the loop is not involved.
		fw := &fdWriter{fd: int(c.fd), timeout: s.cfg.WriteTimeout}
		w.bw.Reset(fw)
		if err := ctx.Response.Write(w.bw); err != nil {
			closeConn = true
		} else if err := w.bw.Flush(); err != nil {
			closeConn = true
		}
		_ = ctx.Response.CloseBodyStream()
		w.bw.Reset(&w.app)
	} else {
		w.app.dst = w.app.dst[:0]
		w.bw.Reset(&w.app)
		if err := ctx.Response.Write(w.bw); err != nil {
			closeConn = true
		}
		_ = w.bw.Flush()
		b := w.app.dst
		for len(b) > 0 {
			n, err := unix.Write(int(c.fd), b)
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				// The loop sends the rest when the socket drains.
				c.out = getBuf()
				*c.out = append(*c.out, b...)
				break
			}
			if err != nil || n <= 0 {
				closeConn = true
				break
			}
			b = b[n:]
		}
		if cap(w.app.dst) > maxPooledBuf {
			w.app.dst = nil
		}
	}
	goWriters.Put(w)
	if closeConn {
		c.closeAfter = true
	}
	c.l.resume(c)
}

// finishHandoff takes c back on its loop once its handler finished.
func (l *loop) finishHandoff(c *conn) {
	l.putCtx(c.ctx)
	c.ctx = nil
	c.state = stateOpen
	if c.gone {
		l.close(c)
		return
	}
	if c.pending() > 0 {
		l.flush(c)
		return
	}
	if c.closeAfter {
		l.close(c)
		return
	}
	l.setInterest(c, unix.EPOLLIN)
	l.process(c, nil)
}

// expire handles a connection whose timer fired.
func (l *loop) expire(c *conn) {
	if c.proxyHdr {
		// No whole PROXY header in time: closed unanswered, as HAProxy does.
		l.s.cfg.ProxyProtocol.Reject(proxyproto.Timeout)
		l.close(c)
		return
	}
	if c.sniffH2 && c.in != nil && len(*c.in) > 0 {
		// Still within the HTTP/2 preface: closed unanswered.
		l.close(c)
		return
	}
	if c.state == stateForwarding {
		l.forwardTimeout(c)
		return
	}
	if c.deadlineKind == deadlineRead && c.in != nil && len(*c.in) > 0 && c.pending() == 0 {
		ctx := l.getCtx(c)
		c.reqHead, c.http10 = false, false
		l.s.cfg.ErrorHandler(ctx, errTimeout)
		ctx.SetConnectionClose()
		l.respond(c, ctx)
		l.putCtx(ctx)
		c.deadlineKind = deadlineNone
		if l.flush(c) && c.pending() > 0 {
			return // the write timeout now bounds the answer
		}
		if c.state == stateOpen {
			l.close(c)
		}
		return
	}
	l.close(c)
}

// h2Preface is the HTTP/2 client preface (RFC 9113 §3.4).
var h2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// sniffPreface sorts a connection that has sent no request yet between HTTP/2
// (Config.H2C) and HTTP/1.1 by its first bytes: as soon as one differs from
// the preface it is HTTP/1.1, and process goes on with fresh (true). With a
// whole preface c is given to H2C; with a proper prefix of it the bytes wait in
// c.in for more (false in both cases).
func (l *loop) sniffPreface(c *conn, fresh []byte) ([]byte, bool) {
	data := fresh
	if c.in != nil {
		*c.in = append(*c.in, fresh...)
		data, fresh = *c.in, nil
	}
	k := min(len(data), len(h2Preface))
	if !bytes.Equal(data[:k], h2Preface[:k]) {
		c.sniffH2 = false
		return fresh, true
	}
	if k < len(h2Preface) {
		if c.in == nil && len(fresh) > 0 {
			c.in = getBuf()
			*c.in = append(*c.in, fresh...)
		}
		return nil, false
	}
	c.sniffH2 = false
	l.giveUp(c, data, false, l.s.cfg.H2C)
	return nil, false
}

// detach gives c to the goroutine core (Fallback) with the bytes read so far: a
// request whose body streams is served there with today's bounded memory.
func (l *loop) detach(c *conn, b []byte, mustClose bool) {
	if l.s.cfg.Fallback == nil {
		ctx := l.getCtx(c)
		noteRequest(c, ctx)
		l.s.cfg.ErrorHandler(ctx, fasthttp.ErrBodyTooLarge)
		ctx.SetConnectionClose()
		l.respond(c, ctx)
		l.putCtx(ctx)
		l.flush(c)
		return
	}
	l.giveUp(c, b, mustClose, l.s.cfg.Fallback)
}

// giveUp takes c out of the loop and runs serve on it in a goroutine of its
// own, as a net.Conn that first replays b (the bytes the loop has read).
func (l *loop) giveUp(c *conn, b []byte, mustClose bool, serve func(net.Conn) error) {
	fd := int(c.fd)
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	pre := append([]byte(nil), b...)
	raddr := c.raddr
	l.conns[fd] = nil
	l.nconns.Add(-1)
	f := os.NewFile(uintptr(fd), "evloop")
	nc, err := net.FileConn(f)
	_ = f.Close()
	c.reset()
	l.free = append(l.free, c)
	if err != nil {
		l.s.cfg.Logger.Printf("evloop: detach: %v", err)
		return
	}
	l.detached.Add(1)
	go func() {
		_ = serve(&prefixConn{Conn: nc, pre: pre, raddr: raddr, mustClose: mustClose})
		_ = nc.Close()
	}()
}

// fdWriter writes to a non-blocking socket from a goroutine, waiting with poll(2).
type fdWriter struct {
	fd      int
	timeout time.Duration
}

func (w *fdWriter) Write(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		n, err := unix.Write(w.fd, p[written:])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			ms := -1
			if w.timeout > 0 {
				ms = int(w.timeout / time.Millisecond)
			}
			fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLOUT}}
			k, perr := unix.Poll(fds, ms)
			if perr == unix.EINTR {
				continue
			}
			if perr != nil {
				return written, perr
			}
			if k == 0 {
				return written, os.ErrDeadlineExceeded
			}
			continue
		case err != nil:
			return written, err
		case n <= 0:
			return written, io.ErrShortWrite
		}
		written += n
	}
	return written, nil
}
