//go:build linux

package evloop

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// Upstream connections owned by a loop (Forward).
//
// A request forwarded from the loop never leaves it: the loop takes a keep-alive
// connection to the origin from its own pool (or connects without blocking),
// writes the serialized request, reads the answer when epoll says the socket is
// readable, frames it with fasthttp's own parser and hands the completed
// Response to Config.Forwarded, still on the loop. There is no goroutine, no
// channel and no wake-up between the client's request and the origin's answer,
// which is what the hand-off to fasthttp's HostClient cost (issue 11).
//
// The per-try timeout is the client connection's one deadline on the loop's
// timer wheel, so a forwarded request costs no timer operation either.

var (
	// ErrUnsupported is what Forward returns for a request it cannot forward
	// from the loop (the address is not an IP literal, or the call is not on a
	// loop): hand it off instead. No try was started.
	ErrUnsupported = errors.New("evloop: cannot forward from the loop")
	// ErrTooLarge is what Config.Forwarded sees for an answer longer than
	// Config.MaxForwardBytes: the loop does not buffer big bodies. Nothing of it
	// reached the client; the request may be handed off and sent again.
	ErrTooLarge = errors.New("evloop: upstream answer too large for the loop")
	// ErrClientGone is what Config.Forwarded sees when the loop stops during a
	// try: nobody waits for the answer, and the origin is not to blame.
	ErrClientGone = errors.New("evloop: the loop stopped during the try")
	// errUpstreamClosed: the origin closed before answering.
	errUpstreamClosed = errors.New("evloop: upstream closed the connection")
)

// dialError reports a connection that never opened: the origin never saw the
// request. It looks like net.Dial's error (Op "dial"), so callers that decide
// retries from it treat both cores alike.
func dialError(addr string, err error) error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", err)}
}

// upPool is a loop's idle keep-alive connections to one address, most recently
// used last (LIFO: a few connections stay hot and the rest reach the idle
// timeout, as the HostClient's ConnPoolStrategy LIFO does).
type upPool struct {
	addr string
	sa   unix.Sockaddr
	fam  int
	idle []*upConn
	open int // connections open, busy and idle (Config.MaxUpstreamConns)
	// Requests queued for the end of the loop's round (pipeline.go): their
	// serialized bytes in pendBuf, in order; pendSpare is the other list.
	pend      []pendReq
	pendSpare []pendReq
	pendBuf   *[]byte
	// depth is the pipeline depth of the latest Forward to this address
	// (ForwardDepth).
	depth int
	// waiting are requests to send again (resend) that found the pool at
	// Config.MaxUpstreamConns: they go out, oldest first, at the end of a
	// round in which a connection closed or went idle (flushPipes), or end
	// with their try's deadline.
	waiting []*conn
}

// upConn is one connection to an origin, owned by a loop.
type upConn struct {
	pool *upPool
	// c is the client connection whose request is in flight; nil while idle.
	c *conn
	// q are the client connections whose requests were written behind c's
	// on this connection (pipelined, pipeline.go), in order.
	q      []*conn
	in     *[]byte // the answer's bytes read so far (when it took more than one read)
	out    *[]byte // the serialized request, written from outOff on
	outOff int
	// need is how many bytes the answer needs before it is worth framing again.
	need       int
	idleSince  int64
	headSince  int64 // when the request at the head of a pipeline became it
	tryEnd     int64 // when the try ends (loop clock); the deadline while connecting may be earlier
	fd         int32
	ev         uint32
	connecting bool
	reused     bool // served an earlier request: a failure may be a stale keep-alive
	got        bool // a byte of the answer arrived
	head       bool // the request is HEAD: the answer has no body
}

// Forward sends ctx.Request to addr ("ip:port") over a connection owned by the
// loop that runs ctx, and reads the answer into ctx.Response on that loop. It
// must be called on the loop: from Config.Inline, or from Config.Forwarded to try
// again elsewhere. timeout bounds the try (connect, write, answer).
//
// A nil error means the try started: the loop calls Config.Forwarded(ctx, err)
// when it ends, and the request takes no further step until then (the caller
// returns without answering). ErrUnsupported means nothing started: hand the
// request off. Any other error is a try that failed at once (a refused
// connection); the caller decides as it would from Forwarded.
func Forward(ctx *fasthttp.RequestCtx, addr string, timeout time.Duration) error {
	return ForwardDepth(ctx, addr, timeout, -1)
}

// ForwardDepth is Forward with addr's own pipeline depth in place of
// Config.PipelineDepth (an origin that handles pipelining badly: 0 or 1 turns
// it off for that origin; negative: Config.PipelineDepth). The latest call
// for an address sets the depth its queued requests go out with, so a new
// value (a configuration reload) applies from the next round on.
func ForwardDepth(ctx *fasthttp.RequestCtx, addr string, timeout time.Duration, depth int) error {
	c, ok := ctx.Conn().(*conn)
	if !ok || c.l == nil || c.l.s.cfg.Forwarded == nil || c.l.stopping || c.gone || (c.ctx != nil && c.ctx != ctx) {
		return ErrUnsupported
	}
	l := c.l
	if l.light.ctx == ctx {
		l.dropLight() // an earlier try's answer, not sent
	}
	p := l.upPool(addr)
	if p == nil {
		return ErrUnsupported
	}
	req := &ctx.Request
	// As fasthttp's HostClient with DisablePathNormalizing: the request target
	// goes out as the client sent it.
	req.URI().DisablePathNormalizing = true
	if depth < 0 {
		depth = l.s.cfg.PipelineDepth
	}
	p.depth = depth
	if depth > 1 && pipelinable(req) {
		return l.enqueue(c, ctx, p, timeout)
	}
	out := getBuf()
	if err := l.appendRequest(out, req); err != nil {
		putBuf(out)
		return err
	}
	var (
		u   *upConn
		err error
	)
	if n := len(p.idle); n > 0 {
		u, p.idle = p.idle[n-1], p.idle[:n-1]
	} else if max := l.s.cfg.MaxUpstreamConns; max > 0 && p.open >= max {
		putBuf(out)
		return fasthttp.ErrNoFreeConns
	} else if u, err = l.dial(p); err != nil {
		putBuf(out)
		return err
	}
	if c.state != stateForwarding {
		c.state, c.ctx = stateForwarding, ctx
		l.s.inflight.Add(1)
		l.forwards.Add(1)
	}
	c.up, u.c = u, c
	u.out, u.outOff, u.head = out, 0, req.Header.IsHead()
	u.got, u.need = false, 0
	c.deadlineKind = deadlineForward
	if timeout > 0 {
		u.tryEnd = l.now + int64(timeout)
		if dt := l.s.cfg.UpstreamDialTimeout; u.connecting && dt > 0 && dt < timeout {
			timeout = dt // until connected; then the rest of the try (upEvent)
		}
		l.setDeadline(c, timeout)
	} else {
		u.tryEnd, c.deadline = 0, 0
	}
	if !u.connecting {
		l.upWrite(u)
	}
	return nil
}

// upPool returns the loop's pool for addr, made on first use. Only IP literals
// are served: resolving a name could block the loop.
func (l *loop) upPool(addr string) *upPool {
	if p := l.pools[addr]; p != nil {
		return p
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil
	}
	p := &upPool{addr: addr}
	if a := ap.Addr().Unmap(); a.Is4() {
		p.sa, p.fam = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}, unix.AF_INET
	} else {
		p.sa, p.fam = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}, unix.AF_INET6
	}
	if l.pools == nil {
		l.pools = make(map[string]*upPool)
	}
	l.pools[addr] = p
	return p
}

// dial opens a connection to p's address without blocking.
func (l *loop) dial(p *upPool) (*upConn, error) {
	fd, err := unix.Socket(p.fam, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, dialError(p.addr, err)
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	connecting := false
	if err := unix.Connect(fd, p.sa); err != nil {
		if err != unix.EINPROGRESS && err != unix.EINTR {
			unix.Close(fd)
			return nil, dialError(p.addr, err)
		}
		connecting = true
	}
	ev := uint32(unix.EPOLLIN)
	if connecting {
		ev = unix.EPOLLOUT
	}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: ev, Fd: int32(fd)}); err != nil {
		unix.Close(fd)
		return nil, dialError(p.addr, err)
	}
	var u *upConn
	if n := len(l.upFree); n > 0 {
		u, l.upFree = l.upFree[n-1], l.upFree[:n-1]
	} else {
		u = &upConn{}
	}
	u.pool, u.fd, u.ev, u.connecting = p, int32(fd), ev, connecting
	for fd >= len(l.ups) {
		l.ups = append(l.ups, make([]*upConn, max(len(l.ups), 64))...)
	}
	l.ups[fd] = u
	l.nups.Add(1)
	p.open++
	return u, nil
}

func (l *loop) upInterest(u *upConn, ev uint32) {
	if u.ev == ev {
		return
	}
	u.ev = ev
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, int(u.fd), &unix.EpollEvent{Events: ev, Fd: u.fd})
}

// upClose closes u (which must not be in its pool's idle list).
func (l *loop) upClose(u *upConn) {
	if int(u.fd) < len(l.ups) && l.ups[u.fd] == u {
		l.ups[u.fd] = nil
	}
	unix.Close(int(u.fd))
	l.nups.Add(-1)
	if u.pool != nil {
		u.pool.open--
	}
	if u.in != nil {
		putBuf(u.in)
	}
	if u.out != nil {
		putBuf(u.out)
	}
	clear(u.q)
	q := u.q[:0]
	*u = upConn{q: q}
	l.upFree = append(l.upFree, u)
}

// upEvent handles readiness of an upstream connection.
func (l *loop) upEvent(u *upConn, ev uint32) {
	if u.c == nil {
		// Idle: the origin closed it (or sent what nobody asked for).
		l.upDropIdle(u)
		return
	}
	if u.connecting {
		if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return
		}
		soErr, err := unix.GetsockoptInt(int(u.fd), unix.SOL_SOCKET, unix.SO_ERROR)
		if err == nil && soErr != 0 {
			err = unix.Errno(soErr)
		}
		if err != nil {
			l.upFail(u, dialError(u.pool.addr, err))
			return
		}
		u.connecting = false
		if c := u.c; u.tryEnd > 0 && c.deadline != u.tryEnd {
			// Connected within the dial timeout: the rest of the try's time.
			c.deadline = u.tryEnd
			l.schedule(c)
		}
		l.upWrite(u)
		return
	}
	if ev&unix.EPOLLOUT != 0 && u.out != nil {
		l.upWrite(u)
		return
	}
	if ev&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		l.upRead(u)
	}
}

// upWrite writes u's request; once it is out, u waits for the answer.
func (l *loop) upWrite(u *upConn) {
	for u.outOff < len(*u.out) {
		n, err := rawWrite(int(u.fd), (*u.out)[u.outOff:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			l.upInterest(u, unix.EPOLLOUT)
			return
		}
		if err != nil || n <= 0 {
			if err == nil {
				err = io.ErrShortWrite
			}
			l.upFail(u, err)
			return
		}
		u.outOff += n
	}
	putBuf(u.out)
	u.out, u.outOff = nil, 0
	l.upInterest(u, unix.EPOLLIN)
}

// upRead reads what the origin sent and frames the answer.
func (l *loop) upRead(u *upConn) {
	n, err := rawRead(int(u.fd), l.buf)
	if n < 0 {
		n = 0
	}
	if n == 0 && (err == unix.EAGAIN || err == unix.EINTR) {
		return
	}
	eof := n == 0
	if eof && !u.got {
		if err == nil {
			err = errUpstreamClosed
		}
		l.upFail(u, err)
		return
	}
	u.got = true
	data := l.buf[:n]
	if u.in != nil {
		*u.in = append(*u.in, data...)
		data = *u.in
	}
	if !eof && u.need > len(data) {
		l.keepAnswer(u, data)
		return
	}
	if len(u.q) > 0 || l.dropped(u.c) {
		l.upReadPipe(u, data, eof)
		return
	}
	ctx := u.c.ctx
	if l.s.cfg.LightAnswers && !u.head {
		cfg := &l.s.cfg
		switch st, n := scanLight(data, eof, cfg.UpstreamHeaderBytes/2, cfg.MaxForwardBytes, cfg.DropAnswerFields, cfg.SetAnswerFields, &l.scan); st {
		case lightNeed:
			u.need = n
			l.keepAnswer(u, data)
			return
		case lightDone:
			// As below: bytes after the answer, or a request that asked to
			// close, end the connection (an ordinary answer has no
			// Connection field).
			reuse := !eof && n == len(data) && !ctx.Request.ConnectionClose()
			hold := u.in
			u.in = nil // data lives in it until the answer is written
			l.setLight(ctx, data, hold, &l.scan)
			l.upDone(u, reuse, nil)
			return
		}
	}
	done, used, ferr := l.frameResponse(&ctx.Response, data, eof, u.head, &u.need)
	switch {
	case ferr != nil:
		l.upFail(u, ferr)
	case !done:
		if len(data) > l.s.cfg.MaxForwardBytes+l.s.cfg.MaxHeaderBytes {
			l.upFail(u, ErrTooLarge)
			return
		}
		l.keepAnswer(u, data)
	default:
		// Anything after the answer is a protocol error of the origin: do
		// not reuse the connection. So is an answer that asks to close.
		reuse := !eof && used == len(data) && !ctx.Response.ConnectionClose() && !ctx.Request.ConnectionClose()
		l.upDone(u, reuse, nil)
	}
}

// keepAnswer keeps the incomplete answer's bytes for the next read.
func (l *loop) keepAnswer(u *upConn, data []byte) {
	if u.in == nil {
		u.in = getBuf()
		*u.in = append(*u.in, data...)
	}
}

// frameResponse reads one answer from b into resp with fasthttp's parser. It
// reports done when b holds the whole answer (used is its length); otherwise it
// sets *need to the bytes worth waiting for. eof says the origin closed the
// connection after b: a body without a length ends there, and an answer cut
// short is an error.
func (l *loop) frameResponse(resp *fasthttp.Response, b []byte, eof, head bool, need *int) (done bool, used int, err error) {
	// A plain Reset, as fasthttp's HostClient gets the response: the answer
	// then goes out with the server's Date and default Content-Type, as a
	// forwarded answer does on the goroutine core.
	resp.Reset()
	resp.SkipBody = head
	l.ubr.Reset(b)
	l.ubu.Reset(&l.ubr)
	consumed := func() int { return len(b) - l.ubr.Len() - l.ubu.Buffered() }
	for n := 0; ; n++ {
		if err := resp.Header.Read(l.ubu); err != nil {
			if !eof && (errors.Is(err, io.EOF) || errors.Is(err, fasthttp.ErrNeedMore)) {
				*need = len(b) + 1
				return false, 0, nil
			}
			return false, 0, err
		}
		code := resp.Header.StatusCode()
		if code >= 200 || code == fasthttp.StatusSwitchingProtocols {
			break
		}
		if n >= 8 {
			return false, 0, errTooManyInterim
		}
	}
	code := resp.Header.StatusCode()
	if head || code < 200 || code == fasthttp.StatusNoContent || code == fasthttp.StatusNotModified {
		return true, consumed(), nil
	}
	hlen := consumed()
	max := l.s.cfg.MaxForwardBytes
	switch cl := resp.Header.ContentLength(); {
	case cl > max:
		return false, 0, ErrTooLarge
	case cl >= 0:
		if hlen+cl > len(b) {
			if eof {
				return false, 0, io.ErrUnexpectedEOF
			}
			*need = hlen + cl
			return false, 0, nil
		}
	case cl == -2: // identity: the body runs to the end of the connection
		if len(b)-hlen > max {
			return false, 0, ErrTooLarge
		}
		if !eof {
			*need = len(b) + 1
			return false, 0, nil
		}
	}
	err = resp.ReadBody(l.ubu, max)
	if err == nil && resp.Header.ContentLength() == -1 {
		err = resp.Header.ReadTrailer(l.ubu)
	}
	if err != nil {
		if errors.Is(err, fasthttp.ErrBodyTooLarge) {
			return false, 0, ErrTooLarge
		}
		// The parser ran out of bytes (a chunked body cut by the read, in
		// whatever words fasthttp says so): wait for more. An error with
		// bytes left over is the body's own fault.
		if !eof && l.ubr.Len() == 0 && l.ubu.Buffered() == 0 {
			*need = len(b) + 1
			return false, 0, nil
		}
		return false, 0, err
	}
	return true, consumed(), nil
}

var errTooManyInterim = errors.New("evloop: too many interim answers from the upstream")

// upFail ends u's try with err. A keep-alive connection that turns out closed
// before any byte of the answer arrived is the pool's staleness, not the
// origin's failure: the request goes again once on a fresh connection, as
// fasthttp's HostClient does for idempotent requests.
func (l *loop) upFail(u *upConn, err error) {
	if len(u.q) == 0 && l.dropped(u.c) {
		u.c = nil // nobody waits for this answer any more
		l.upClose(u)
		return
	}
	if len(u.q) > 0 {
		// Requests wait behind this one on the connection: none of them
		// was answered, all of them are idempotent (pipeline.go).
		if u.reused && !u.got && err != ErrTooLarge {
			l.upBreak(u, nil, nil)
		} else {
			l.upBreak(u, u.c, err)
		}
		return
	}
	c := u.c
	if u.reused && !u.got && err != ErrTooLarge && idempotent(&c.ctx.Request) {
		p, out, tryEnd := u.pool, u.out, u.tryEnd
		u.out = nil
		c.up, u.c = nil, nil
		l.upClose(u)
		if out == nil {
			// Written already: serialize again (the request is unchanged).
			out = getBuf()
			_ = l.appendRequest(out, &c.ctx.Request)
		}
		nu, derr := l.dial(p)
		if derr != nil {
			putBuf(out)
			l.complete(c, derr)
			return
		}
		l.retries.Add(1)
		c.up, nu.c, nu.tryEnd = nu, c, tryEnd
		nu.out, nu.outOff, nu.head = out, 0, c.ctx.Request.Header.IsHead()
		if !nu.connecting {
			l.upWrite(nu)
		}
		return
	}
	l.upDone(u, false, err)
}

func idempotent(req *fasthttp.Request) bool {
	h := &req.Header
	return (h.IsGet() || h.IsHead()) && len(req.Body()) == 0
}

// upDone detaches u from its client connection, pools or closes it, and ends
// the try.
func (l *loop) upDone(u *upConn, reuse bool, err error) {
	c := u.c
	c.up, u.c = nil, nil
	l.upRelease(u, reuse)
	l.complete(c, err)
}

// upDropIdle closes an idle pooled connection.
func (l *loop) upDropIdle(u *upConn) {
	p := u.pool
	for i, x := range p.idle {
		if x == u {
			copy(p.idle[i:], p.idle[i+1:])
			p.idle[len(p.idle)-1] = nil
			p.idle = p.idle[:len(p.idle)-1]
			break
		}
	}
	l.upClose(u)
}

// upSweep closes pooled connections idle longer than UpstreamIdleTimeout. The
// oldest are first in each list.
func (l *loop) upSweep() {
	limit := l.now - int64(l.s.cfg.UpstreamIdleTimeout)
	for _, p := range l.pools {
		k := 0
		for k < len(p.idle) && p.idle[k].idleSince < limit {
			k++
		}
		if k == 0 {
			continue
		}
		for _, u := range p.idle[:k] {
			l.upClose(u)
		}
		n := copy(p.idle, p.idle[k:])
		clear(p.idle[n:])
		p.idle = p.idle[:n]
	}
}

// complete ends a try of c's forwarded request: Config.Forwarded decides what
// follows (another try, a hand-off, or the answer in ctx.Response).
func (l *loop) complete(c *conn, err error) {
	ctx := c.ctx
	c.deadline, c.deadlineKind = 0, deadlineNone
	h := l.s.cfg.Forwarded(ctx, err)
	if c.up != nil {
		return // another try started
	}
	c.state, c.ctx = stateOpen, nil
	l.s.inflight.Add(-1)
	if l.light.ctx == ctx && (c.gone || (h != nil && !l.stopping)) {
		l.dropLight()
	}
	if h != nil && !c.gone && !l.stopping {
		l.handoff(c, ctx, h)
		return
	}
	if c.gone {
		l.putCtx(ctx)
		l.close(c)
		return
	}
	l.respond(c, ctx)
	l.putCtx(ctx)
	if !l.flush(c) || c.pending() > 0 {
		return
	}
	l.process(c, nil)
}

// forwardTimeout ends c's try when its deadline passed.
func (l *loop) forwardTimeout(c *conn) {
	u := c.up
	if u == nil {
		return
	}
	if u == &l.waitUp {
		// Waiting for a connection to be sent again (resend); or still
		// queued, which cannot happen: the queue is flushed before the
		// timers run.
		l.unqueue(c)
		l.complete(c, fasthttp.ErrTimeout)
		return
	}
	if len(u.q) > 0 {
		// Waiting in a pipeline: the connection goes, the others are sent again.
		l.upBreak(u, c, fasthttp.ErrTimeout)
		return
	}
	if u.connecting {
		// Never connected: the origin never saw the request, so the try may
		// go to another host whatever its method.
		l.upDone(u, false, fasthttp.ErrDialTimeout)
		return
	}
	l.upDone(u, false, fasthttp.ErrTimeout)
}

// closeUpstreams closes every upstream connection (the loop stops).
func (l *loop) closeUpstreams() {
	l.dropQueued()
	for _, u := range l.pipes {
		if u.c != nil && l.dropped(u.c) {
			// Only answers nobody waits for: no client points to it.
			l.upAbort(u, ErrClientGone)
		}
	}
	l.pipes = nil
	for _, c := range l.conns {
		if c != nil && c.state == stateForwarding && c.up != nil && c.up != &l.waitUp {
			if len(c.up.q) > 0 {
				l.upAbort(c.up, ErrClientGone)
			} else {
				l.upDone(c.up, false, ErrClientGone)
			}
		}
	}
	for _, p := range l.pools {
		for _, u := range p.idle {
			l.upClose(u)
		}
		p.idle = nil
	}
}

// appendRequest appends req as it goes to an origin to *buf, through the
// loop's bufio.Writer (fasthttp serializes into one) over l.app, which
// appends to the slice it holds. On an error *buf may hold part of it.
func (l *loop) appendRequest(buf *[]byte, req *fasthttp.Request) error {
	l.app.dst = *buf
	l.bw.Reset(&l.app)
	err := req.Write(l.bw)
	if ferr := l.bw.Flush(); err == nil {
		err = ferr
	}
	*buf = l.app.dst
	l.app.dst = nil
	return err
}
