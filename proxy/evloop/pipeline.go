//go:build linux

package evloop

import (
	"io"
	"slices"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// HTTP/1.1 pipelining to the origins (Config.PipelineDepth).
//
// On loopback a system call costs more than everything else a forwarded
// request does: one write and one read on the upstream side per request are
// about a third of the edge's CPU (docs/io-core.md). When a loop's round of
// ready events forwards several safe requests to the same origin, Forward only
// queues them (enqueue); at the end of the round (flushPipes, so nothing waits
// for a timer) they go out up to PipelineDepth at a time on one idle pooled
// connection in one write, and their answers, which an origin writes in order
// and usually in one write, are read in order with one read and framed one
// after the other by the same code as a single answer (scanLight or
// fasthttp's parser).
//
// Safety (RFC 9112 §9.3.2): only GET and HEAD without a body and without
// Connection: close are queued, so any of them may be sent again; nothing is
// pipelined behind a HEAD (an origin that wrongly sends a body with a HEAD
// answer, which a single request survives, would desync the next answer). If the
// connection closes or resets, or an answer asks to close, after k of n
// answers, the requests not answered go again each on a fresh connection of
// its own (resend), not pipelined, without a verdict on the host (a healthy
// origin that closes keep-alive connections is not failing). The request at
// the head gets the verdict as a single request does: a pooled connection
// that closed before any byte of its answer is staleness (sent again too),
// anything else (a reset mid-answer, a bad answer, an answer too large for the
// loop) ends its try as today. A request sent again is on a fresh connection,
// so a second failure is a real one: the tries budget is never exceeded.
// Sending again stays within Config.MaxUpstreamConns: at the cap an idle
// connection is closed to make room, or the request waits in its pool until
// a connection closes or goes idle (resendWaiting), within its try's
// deadline. The depth is per address (ForwardDepth, upPool.depth).
// Every request keeps its own per-try deadline from the moment it was queued,
// so time spent waiting behind another counts; requests that wait behind an
// unanswered one longer than pipelineRescue are sent again elsewhere
// (rescuePipes), so a slow answer neither times them out nor counts as several
// failures of its host. When a deadline fires in a pipeline the connection is
// given up (the late answer ahead cannot be skipped) and the others are sent
// again. Answers larger than the loop buffers end the head's try with
// ErrTooLarge (handed off as without pipelining) and the others are sent again.

// pendReq is a request queued for the end of the round: its bytes are
// (*upPool.pendBuf)[off:end].
type pendReq struct {
	c        *conn
	off, end int
	head     bool
}

// pipelinable reports whether req may wait in a pipeline: it can be sent
// again (GET or HEAD without a body) and does not close the connection.
func pipelinable(req *fasthttp.Request) bool {
	return idempotent(req) && !req.ConnectionClose()
}

// enqueue queues c's request for p; the try has started (Forwarded will be
// called), and its deadline runs from now.
func (l *loop) enqueue(c *conn, ctx *fasthttp.RequestCtx, p *upPool, timeout time.Duration) error {
	if p.pendBuf == nil {
		p.pendBuf = getBuf()
	}
	start := len(*p.pendBuf)
	if err := l.appendRequest(p.pendBuf, &ctx.Request); err != nil {
		*p.pendBuf = (*p.pendBuf)[:start]
		return err
	}
	if len(p.pend) == 0 {
		l.pendPools = append(l.pendPools, p)
	}
	p.pend = append(p.pend, pendReq{c: c, off: start, end: len(*p.pendBuf), head: ctx.Request.Header.IsHead()})
	if c.state != stateForwarding {
		c.state, c.ctx = stateForwarding, ctx
		l.s.inflight.Add(1)
		l.forwards.Add(1)
	}
	c.up = &l.waitUp
	c.deadlineKind = deadlineForward
	if timeout > 0 {
		l.setDeadline(c, timeout)
	} else {
		c.deadline = 0
	}
	return nil
}

// flushPipes sends the requests queued this round. A try that ends at once
// (no connection) may queue another, which goes out in the same call.
func (l *loop) flushPipes() {
	if len(l.waitPools) > 0 {
		l.resendWaiting()
	}
	for len(l.pendPools) > 0 {
		p := l.pendPools[0]
		n := copy(l.pendPools, l.pendPools[1:])
		l.pendPools[n] = nil
		l.pendPools = l.pendPools[:n]
		ents, buf := p.pend, p.pendBuf
		p.pend, p.pendSpare, p.pendBuf = p.pendSpare[:0], nil, nil
		l.dispatch(p, ents, buf)
		clear(ents)
		p.pendSpare = ents[:0]
	}
}

// dispatch sends ents (bytes in buf) to p: up to PipelineDepth of them on
// each idle pooled connection, one per fresh connection when none is idle (a
// fresh connection is not known to keep requests alive).
func (l *loop) dispatch(p *upPool, ents []pendReq, buf *[]byte) {
	whole := true
	k := 0
	for _, e := range ents {
		if e.c != nil {
			ents[k] = e
			k++
		} else {
			whole = false
		}
	}
	ents = ents[:k]
	depth := p.depth
	for i := 0; i < len(ents); {
		n := 1
		var u *upConn
		if m := len(p.idle); m > 0 {
			u, p.idle = p.idle[m-1], p.idle[:m-1]
			n = min(depth, len(ents)-i)
			// Nothing waits behind a HEAD: an origin that wrongly sends a
			// body with its answer would have it read as the next answer.
			for j, e := range ents[i : i+n] {
				if e.head {
					n = j + 1
					break
				}
			}
		}
		var out *[]byte
		if whole && i == 0 && n == len(ents) {
			out, buf = buf, nil
		} else {
			out = getBuf()
			for _, e := range ents[i : i+n] {
				*out = append(*out, (*buf)[e.off:e.end]...)
			}
		}
		if u == nil {
			var err error
			if max := l.s.cfg.MaxUpstreamConns; max > 0 && p.open >= max {
				err = fasthttp.ErrNoFreeConns
			} else {
				u, err = l.dial(p)
			}
			if err != nil {
				putBuf(out)
				c := ents[i].c
				c.up = nil
				l.complete(c, err)
				i++
				continue
			}
		}
		l.startPipe(u, ents[i:i+n], out)
		i += n
	}
	if buf != nil {
		putBuf(buf)
	}
}

// startPipe writes ents' requests (out) on u.
func (l *loop) startPipe(u *upConn, ents []pendReq, out *[]byte) {
	c := ents[0].c
	c.up, u.c = u, c
	u.q = u.q[:0]
	for _, e := range ents[1:] {
		e.c.up = u
		u.q = append(u.q, e.c)
	}
	u.headSince = l.now
	if len(ents) > 1 {
		l.piped.Add(uint64(len(ents) - 1))
		l.pipes = append(l.pipes, u)
	}
	u.out, u.outOff, u.head = out, 0, c.ctx.Request.Header.IsHead()
	u.got, u.need = false, 0
	u.tryEnd = c.deadline
	if u.connecting {
		if dt := l.s.cfg.UpstreamDialTimeout; dt > 0 && u.tryEnd > 0 && l.now+int64(dt) < u.tryEnd {
			l.setDeadline(c, dt) // until connected; then the rest of the try (upEvent)
		}
		return
	}
	l.upWrite(u)
}

// unqueue removes c from the requests queued this round, or waiting for a
// connection to be sent again.
func (l *loop) unqueue(c *conn) {
	c.up = nil
	for _, p := range l.pendPools {
		for i := range p.pend {
			if p.pend[i].c == c {
				p.pend[i].c = nil
			}
		}
	}
	for _, p := range l.waitPools {
		for i, w := range p.waiting {
			if w == c {
				n := copy(p.waiting[i:], p.waiting[i+1:])
				p.waiting[i+n] = nil
				p.waiting = p.waiting[:i+n]
				break
			}
		}
	}
}

// dropQueued ends the queued requests' tries (the loop stops).
func (l *loop) dropQueued() {
	for _, p := range l.waitPools {
		w := p.waiting
		p.waiting = nil
		for _, c := range w {
			c.up = nil
			l.complete(c, ErrClientGone)
		}
	}
	l.waitPools = nil
	for len(l.pendPools) > 0 {
		p := l.pendPools[0]
		l.pendPools = l.pendPools[1:]
		ents := p.pend
		p.pend = nil
		if p.pendBuf != nil {
			putBuf(p.pendBuf)
			p.pendBuf = nil
		}
		for _, e := range ents {
			if e.c != nil {
				e.c.up = nil
				l.complete(e.c, ErrClientGone)
			}
		}
	}
}

// upReadPipe frames the answers in data, in order, for the requests
// pipelined on u (u.c first, then u.q), and completes each. eof: the origin
// closed after data.
func (l *loop) upReadPipe(u *upConn, data []byte, eof bool) {
	cfg := &l.s.cfg
	if u.in == nil {
		// The answers behind the first must outlive completing it, which may
		// read into the loop's buffer (a client's lingering close).
		u.in = getBuf()
		*u.in = append(*u.in, data...)
		data = *u.in
	}
	off := 0
	for {
		c := u.c
		// A request sent again elsewhere (rescuePipes): its answer is read
		// and dropped.
		drop := l.dropped(c)
		var ctx *fasthttp.RequestCtx
		resp := &l.dropResp
		if !drop {
			ctx = c.ctx
			resp = &ctx.Response
		}
		rest := data[off:]
		used, light, done := 0, false, false
		if cfg.LightAnswers && !u.head && !drop {
			switch st, n := scanLight(rest, eof, cfg.UpstreamHeaderBytes/2, cfg.MaxForwardBytes, cfg.DropAnswerFields, cfg.SetAnswerFields, &l.scan); st {
			case lightNeed:
				u.need = n
				l.pipeWait(u, off, eof)
				return
			case lightDone:
				used, light, done = n, true, true
			}
		}
		if !done {
			ok, n, ferr := l.frameResponse(resp, rest, eof, u.head, &u.need)
			switch {
			case ferr != nil:
				l.upFail(u, ferr)
				return
			case !ok:
				if len(rest) > cfg.MaxForwardBytes+cfg.MaxHeaderBytes {
					l.upFail(u, ErrTooLarge)
					return
				}
				l.pipeWait(u, off, eof)
				return
			}
			used = n
		}
		off += used
		// An ordinary (light) answer has no Connection field.
		keep := (drop || !ctx.Request.ConnectionClose()) && (light || !resp.ConnectionClose())
		var next *conn
		if keep && len(u.q) > 0 {
			next = u.q[0]
			m := copy(u.q, u.q[1:])
			u.q[m] = nil
			u.q = u.q[:m]
		}
		var hold *[]byte
		if next == nil {
			// The last answer on u: its bytes stay in u.in until written.
			hold, u.in = u.in, nil
		}
		if light {
			l.setLight(ctx, rest[:used], hold, &l.scan)
		} else if hold != nil {
			putBuf(hold)
		}
		if next == nil {
			if len(u.q) > 0 {
				// The answer asked to close: the requests behind it were not
				// answered, and go again.
				l.upBreakAfter(u, c)
				return
			}
			// Anything after the last answer is the origin's protocol
			// error: do not reuse the connection.
			reuse := keep && !eof && off == len(data)
			if drop {
				u.c = nil
				l.upRelease(u, reuse)
				return
			}
			l.upDone(u, reuse, nil)
			return
		}
		if !drop {
			c.up = nil
		}
		u.c = next
		u.head = next == &l.dropHead || (!l.dropped(next) && next.ctx.Request.Header.IsHead())
		u.need = 0
		u.got = off < len(data)
		u.headSince = l.now
		if !drop {
			in := u.in
			l.complete(c, nil)
			if u.c != next || u.in != in {
				return // cannot happen: nothing else reads u while it is busy
			}
		}
		if off == len(data) {
			if eof {
				// Closed after k of n answers: staleness, the rest go again.
				l.upFail(u, errUpstreamClosed)
				return
			}
			putBuf(u.in)
			u.in = nil
			return
		}
	}
}

// dropped reports whether c stands for a request sent again elsewhere.
func (l *loop) dropped(c *conn) bool { return c == &l.dropGet || c == &l.dropHead }

// upRelease pools u (reuse) or closes it, with no request on it.
func (l *loop) upRelease(u *upConn, reuse bool) {
	if u.in != nil {
		putBuf(u.in)
		u.in = nil
	}
	if reuse && !l.stopping {
		u.reused, u.idleSince, u.need, u.got = true, l.now, 0, false
		l.upInterest(u, unix.EPOLLIN)
		u.pool.idle = append(u.pool.idle, u)
		return
	}
	l.upClose(u)
}

// pipelineRescue is how long requests may wait behind an unanswered one
// before they are sent again elsewhere (checked once per timer tick, so they
// wait up to a tick longer). A normal answer takes well under a millisecond;
// one that takes this long would otherwise hold the requests behind it for
// up to their whole per-try timeout, and time them all out with it.
const pipelineRescue = 100 * time.Millisecond

// rescuePipes sends the requests waiting behind a slow answer again, each on
// a fresh connection of its own, and leaves placeholders in their place so
// their answers on the old connection are read and dropped; the slow request
// keeps its connection and its own deadline. A connection left with only
// answers nobody waits for is closed after UpstreamIdleTimeout.
func (l *loop) rescuePipes() {
	k := 0
	for _, u := range l.pipes {
		if u.c == nil || (len(u.q) == 0 && !l.dropped(u.c)) {
			continue // done with its pipeline
		}
		if l.dropped(u.c) && l.now-u.headSince > int64(l.s.cfg.UpstreamIdleTimeout) {
			l.upAbort(u, fasthttp.ErrTimeout)
			continue
		}
		l.pipes[k] = u
		k++
		if l.now-u.headSince < int64(pipelineRescue) {
			continue
		}
		for i, c := range u.q {
			if l.dropped(c) {
				continue
			}
			if c.ctx.Request.Header.IsHead() {
				u.q[i] = &l.dropHead
			} else {
				u.q[i] = &l.dropGet
			}
			c.up = nil
			if c.deadline != 0 && c.deadline <= l.now {
				l.complete(c, fasthttp.ErrTimeout)
			} else {
				l.resend(u.pool, c)
			}
		}
	}
	clear(l.pipes[k:])
	l.pipes = l.pipes[:k]
}

// pipeWait keeps the unframed rest of u.in (from off) for the next read.
func (l *loop) pipeWait(u *upConn, off int, eof bool) {
	if eof {
		l.upFail(u, io.ErrUnexpectedEOF)
		return
	}
	if off > 0 {
		n := copy(*u.in, (*u.in)[off:])
		*u.in = (*u.in)[:n]
	}
}

// upBreakAfter completes done (answered, its connection to be closed) and
// sends the requests still waiting on u again.
func (l *loop) upBreakAfter(u *upConn, done *conn) {
	p := u.pool
	rest := l.waiting(u)
	u.c = nil
	clear(u.q)
	u.q = u.q[:0]
	l.upClose(u)
	if !l.dropped(done) {
		done.up = nil
		l.complete(done, nil)
	}
	for _, c := range rest {
		l.resend(p, c)
	}
}

// upBreak gives up u, whose pipeline cannot go on: victim's try (if any)
// ends with err, every other request on u goes again on a fresh connection.
func (l *loop) upBreak(u *upConn, victim *conn, err error) {
	p := u.pool
	all := l.waiting(u)
	if !l.dropped(u.c) {
		all = append(all, u.c)
	}
	u.c = nil
	clear(u.q)
	u.q = u.q[:0]
	l.upClose(u)
	if l.dropped(victim) {
		victim = nil
	}
	for _, c := range all {
		c.up = nil
	}
	for _, c := range all {
		switch {
		case c == victim:
		case c.deadline != 0 && c.deadline <= l.now:
			// Its own time ran out waiting in the pipeline.
			l.complete(c, fasthttp.ErrTimeout)
		default:
			l.resend(p, c)
		}
	}
	if victim != nil {
		l.complete(victim, err)
	}
}

// waiting returns the client connections whose requests wait behind u's
// head (not the placeholders of requests sent again elsewhere).
func (l *loop) waiting(u *upConn) []*conn {
	w := make([]*conn, 0, len(u.q)+1)
	for _, c := range u.q {
		if !l.dropped(c) {
			w = append(w, c)
		}
	}
	return w
}

// upAbort ends the try of every request on u with err (the loop stops).
func (l *loop) upAbort(u *upConn, err error) {
	all := l.waiting(u)
	if !l.dropped(u.c) {
		all = append(all, u.c)
	}
	for _, c := range all {
		c.up = nil
	}
	u.c = nil
	clear(u.q)
	u.q = u.q[:0]
	l.upClose(u)
	for _, c := range all {
		l.complete(c, err)
	}
}

// resend sends c's request again, alone on a fresh connection to p, within
// what is left of its try's time. It does not end the try: the origin gave
// no verdict on it. At Config.MaxUpstreamConns an idle connection makes room
// (closed: the request goes on a fresh one); without one the request waits
// until a connection closes or goes idle (resendWaiting), within its try's
// deadline, so that sending again never takes more connections than a first
// try may.
func (l *loop) resend(p *upPool, c *conn) {
	if c.gone || l.stopping {
		l.complete(c, ErrClientGone)
		return
	}
	if max := l.s.cfg.MaxUpstreamConns; max > 0 && p.open >= max {
		if len(p.idle) == 0 {
			if len(p.waiting) == 0 {
				l.waitPools = append(l.waitPools, p)
			}
			p.waiting = append(p.waiting, c)
			c.up = &l.waitUp
			return
		}
		u := p.idle[0] // the oldest
		n := copy(p.idle, p.idle[1:])
		p.idle[n] = nil
		p.idle = p.idle[:n]
		l.upClose(u)
	}
	out := getBuf()
	_ = l.appendRequest(out, &c.ctx.Request) // it was written once already
	nu, err := l.dial(p)
	if err != nil {
		putBuf(out)
		l.complete(c, err)
		return
	}
	l.retries.Add(1)
	l.startPipe(nu, []pendReq{{c: c}}, out)
}

// resendWaiting sends again the requests waiting for a connection (resend)
// to pools with room now, oldest first; the others wait on.
func (l *loop) resendWaiting() {
	max := l.s.cfg.MaxUpstreamConns
	pools := l.waitPools
	l.waitPools = nil
	for _, p := range pools {
		for len(p.waiting) > 0 && (max <= 0 || p.open < max || len(p.idle) > 0) {
			c := p.waiting[0]
			n := copy(p.waiting, p.waiting[1:])
			p.waiting[n] = nil
			p.waiting = p.waiting[:n]
			c.up = nil
			l.resend(p, c)
		}
		if len(p.waiting) > 0 && !slices.Contains(l.waitPools, p) {
			l.waitPools = append(l.waitPools, p)
		}
	}
}
