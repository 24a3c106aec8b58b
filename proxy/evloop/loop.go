//go:build linux

package evloop

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"github.com/novashop/edge/proxy/h1"
	"github.com/novashop/edge/proxy/proxyproto"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

const (
	readBufSize = 64 << 10
	maxEvents   = 256
	// tick is the timer wheel's granularity and the longest epoll wait.
	tick       = 100 * time.Millisecond
	wheelSlots = 1024
	// idleWait is the longest wait of a loop with nothing to time (see
	// waitLimit): an idle edge's loops wake once a second, not ten times.
	idleWait = time.Second
	// perRoundRequests bounds the pipelined requests one connection gets
	// answered per loop round (process): without it one read of 64 KiB of
	// small pipelined GETs answered on the loop (a thousand hits, each its
	// own write) ran to the end before any other connection of the loop was
	// looked at. The rest stays buffered and goes on in the next round
	// (runAgain), which does not wait for epoll.
	perRoundRequests = 16
)

// loop is one event loop: an epoll set, the connections it owns, a shared read
// buffer, its timer wheel and its wake-up queue.
//
// Level-triggered epoll: a loop reads at most one buffer per ready connection per
// round, so one fast sender cannot starve the others, and a connection that is busy
// (handed off, or waiting for the client to read) simply drops EPOLLIN from its
// interest instead of having to drain the socket as edge-triggered mode would
// demand. The common request costs no epoll_ctl at all: interest changes only when
// a write would block or pipelined input arrives during a hand-off.
type loop struct {
	s    *Server
	id   int
	epfd int
	efd  int
	// pw waits for epfd in the runtime's poller (pollwait.go); nil: the
	// loop blocks in epoll_wait.
	pw       *pollWait
	accepted bool // the listener is in the epoll set
	stopping bool
	// expect100: parse got a whole header block of an HTTP/1.1 request with
	// Expect: 100-continue. Noted before the body is read: fasthttp's
	// Request.ReadBody resets the request (its headers too) when a chunked
	// body is incomplete, so MayContinue cannot be asked afterwards.
	expect100 bool
	// fr checks each request's bytes before fasthttp reads them, so the loop
	// accepts exactly what the goroutine core's h1.Conn accepts.
	fr h1.RequestFramer

	conns []*conn // indexed by fd
	free  []*conn
	buf   []byte
	gen   uint32

	// Parsing and serializing on the loop.
	br  bytes.Reader
	bu  *bufio.Reader
	app appender
	bw  *bufio.Writer
	ctx []*fasthttp.RequestCtx // free request contexts

	// Upstream connections (Forward): pools by address, the connections by fd,
	// and the parser input for their answers.
	pools  map[string]*upPool
	ups    []*upConn
	upFree []*upConn
	nups   atomic.Int64
	ubr    bytes.Reader
	ubu    *bufio.Reader
	// Pipelining (pipeline.go): the pools with requests queued this round,
	// and the mark a queued request's conn.up points to.
	pendPools []*upPool
	waitUp    upConn
	// waitPools are the pools with requests waiting for a connection to be
	// sent again (resend); their conn.up is waitUp too.
	waitPools []*upPool
	// pipes are the upstream connections with requests pipelined behind
	// another (rescuePipes); dropGet and dropHead stand in their queue for
	// requests sent again elsewhere, whose answers are read into dropResp
	// and dropped.
	pipes             []*upConn
	dropGet, dropHead conn
	dropResp          fasthttp.Response
	// The light answer in flight and the scanner's scratch (answer.go).
	light lightAnswer
	scan  lightScan
	// again lists the connections with complete requests left buffered by
	// perRoundRequests; the round after serves them without waiting for epoll.
	again, againSpare []timerRef
	// date is httpDate's cache: the HTTP date of second dateSec.
	date    []byte
	dateSec int64

	// Wake-up: finished hand-offs and control functions, posted by other goroutines.
	mu      sync.Mutex
	done    []*conn
	spare   []*conn
	tasks   []func(*loop)
	waking  atomic.Bool
	dead    bool // the loop stopped: resume closes the connection itself
	counter [8]byte
	// incoming holds connections another loop accepted for this one (adopt).
	incoming []pendingConn

	// Timer wheel (see schedule), and the per-try deadlines kept exactly
	// (tryTimers).
	tries    tryTimers
	wheel    [wheelSlots][]timerRef
	wheelPos int64 // last processed slot (absolute tick number)
	now      int64 // unix nanoseconds, read once per round
	pauseTil int64 // accepting paused until (EMFILE)

	// parked: the loop waits in the runtime's poller (see nudgeOthers);
	// lastNudge is when it last looked at the other loops.
	parked    atomic.Bool
	lastNudge int64
	// batch decides wake-up coalescing (Config.BatchWait, batch.go).
	batch     batcher
	coalesced atomic.Uint64

	nconns   atomic.Int64
	handoffs atomic.Uint64
	inline   atomic.Uint64
	raw      atomic.Uint64
	detached atomic.Uint64
	forwards atomic.Uint64
	retries  atomic.Uint64
	lights   atomic.Uint64
	piped    atomic.Uint64
}

// pendingConn is an accepted connection on its way to the loop that will own it.
type pendingConn struct {
	fd int
	sa unix.Sockaddr
}

type timerRef struct {
	fd  int32
	gen uint32
}

func newLoop(s *Server, id int) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	l := &loop{s: s, id: id, epfd: epfd, efd: efd, buf: make([]byte, readBufSize)}
	l.batch = newBatcher(s.cfg.BatchWait)
	l.pw = newPollWait(epfd, l.batch.wait > 0)
	// Preserve: a request's bytes are framed again from the start on every
	// read until it is whole, and detached with them as sent, so the
	// framer must not take its transfer codings out of them (serveOne
	// frames a copy for fasthttp instead).
	l.fr = h1.RequestFramer{Limits: s.cfg.Framer, Preserve: true}
	// As fasthttp.Server's ReadBufferSize: a header block that does not fit
	// gets fasthttp's own ErrSmallBuffer (431).
	l.bu = bufio.NewReaderSize(&l.br, s.cfg.MaxHeaderBytes)
	l.bw = bufio.NewWriterSize(&l.app, 16<<10)
	// As HostClient's ReadBufferSize: a longer header block from an origin is an error.
	l.ubu = bufio.NewReaderSize(&l.ubr, s.cfg.UpstreamHeaderBytes)
	binary.LittleEndian.PutUint64(l.counter[:], 1)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(efd)}); err != nil {
		l.release()
		return nil, err
	}
	l.now = time.Now().UnixNano()
	l.wheelPos = l.now / int64(tick)
	if err := l.startAccept(); err != nil {
		l.release()
		return nil, err
	}
	return l, nil
}

// startAccept puts the shared listening socket in this loop's epoll set. With
// EPOLLEXCLUSIVE a new connection wakes one loop, not all of them, and that loop
// owns the connection for its life.
func (l *loop) startAccept() error {
	if l.accepted || l.s.lfd < 0 {
		return nil
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: int32(l.s.lfd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, l.s.lfd, &ev); err != nil {
		return err
	}
	l.accepted = true
	return nil
}

func (l *loop) stopAccept() {
	if l.accepted {
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, l.s.lfd, nil)
		l.accepted = false
	}
	l.pauseTil = -1
}

// post runs f on the loop (rare control work: shutdown).
func (l *loop) post(f func(*loop)) {
	l.mu.Lock()
	l.tasks = append(l.tasks, f)
	l.wake()
	l.mu.Unlock()
}

// resume queues c, whose handed-off request finished, back to its loop.
func (l *loop) resume(c *conn) {
	l.mu.Lock()
	if l.dead {
		l.mu.Unlock()
		unix.Close(int(c.fd))
		return
	}
	l.done = append(l.done, c)
	l.wake()
	l.mu.Unlock()
}

// wake writes the eventfd unless a wake-up is already pending, so a burst of
// finished hand-offs costs the loop one wake-up. l.mu must be held: release
// closes the eventfd under it, so a hand-off finishing while the server closes
// never writes to a closed descriptor, or to another file that reused its
// number.
func (l *loop) wake() {
	if l.efd >= 0 && l.waking.CompareAndSwap(false, true) {
		_, _ = rawWrite(l.efd, l.counter[:]) // non-blocking eventfd: no entersyscall (pollwait.go)
	}
}

func (l *loop) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pw != nil {
		l.pw.close()
		l.pw = nil
	}
	if l.epfd >= 0 {
		unix.Close(l.epfd)
		l.epfd = -1
	}
	if l.efd >= 0 {
		unix.Close(l.efd)
		l.efd = -1
	}
}

// run is the loop. It is deliberately not locked to its OS thread: a locked
// loop hands every hand-off to a worker on another thread (a futex wake-up and a
// thread switch each way), while an unlocked one lets the worker run on the same
// thread when the loop blocks in epoll_wait. Measured on the uncached path
// (wrk -t1 -c64, interleaved, 4 rounds): 0.83x the CPU per request of the locked
// loop, on par with the goroutine core; on hits 0.93x.
func (l *loop) run() {
	defer l.s.wg.Done()
	events := make([]unix.EpollEvent, maxEvents)
	// slept: the last round began with a wait that slept in the poller.
	// coalesce: the last round asked to sleep for the batch wait (batch.go).
	slept, coalesce := false, false
	for !l.stopping {
		// Under load events are usually ready: take them without the
		// runtime's blocking-syscall bookkeeping, and wait only when none
		// are. After a round that began asleep (a low rate: one request per
		// wake-up) the wait's own first poll does the looking, one
		// epoll_pwait per wake-up fewer than polling here too. A coalescing
		// loop sleeps for the batch wait, deaf to its set, then looks; the
		// wait below (which unmutes) follows when that finds nothing.
		var n int
		var err error
		if coalesce && l.pw.mute() {
			batchSleep(l.batch.wait)
			l.coalesced.Add(1)
			n, err = pollReady(l.epfd, events)
		} else if !slept || len(l.again) > 0 || l.pw == nil {
			n, err = pollReady(l.epfd, events)
		}
		slept = false
		if n == 0 && err == nil && len(l.again) == 0 {
			if l.pw != nil {
				l.parked.Store(true)
				n, err = l.pw.wait(events, l.waitLimit())
				l.parked.Store(false)
				slept = l.pw.parked
			} else {
				n, err = unix.EpollWait(l.epfd, events, int(l.waitLimit()/time.Millisecond))
			}
		}
		if err != nil && err != unix.EINTR {
			l.s.cfg.Logger.Printf("evloop: epoll_wait: %v", err)
			break
		}
		l.now = time.Now().UnixNano()
		if slept {
			// This loop's thread just went through the scheduler, which
			// polls the network: no need to nudge the others for a while.
			l.lastNudge = l.now
		}
		for i := 0; i < n; i++ {
			ev := &events[i]
			fd := int(ev.Fd)
			switch {
			case fd == l.efd:
				l.drainWake()
			case fd == l.s.lfd:
				l.accept()
			default:
				if fd < len(l.conns) {
					if c := l.conns[fd]; c != nil {
						l.event(c, ev.Events)
						continue
					}
				}
				if fd < len(l.ups) {
					if u := l.ups[fd]; u != nil {
						l.upEvent(u, ev.Events)
					}
				}
			}
		}
		if len(l.again) > 0 {
			l.runAgain()
		}
		if l.now-l.lastNudge >= int64(nudgeEvery) && len(l.s.loops) > 1 {
			l.lastNudge = l.now
			l.nudgeOthers()
		}
		// Requests queued by this round's events go out now, several per
		// upstream connection where they can (pipeline.go); and again after
		// the timers, whose retries may have queued more.
		l.flushPipes()
		l.timers()
		l.flushPipes()
		coalesce = l.pw != nil && l.batch.after(l.now, n, len(l.again) > 0)
	}
	l.closeAll()
	l.mu.Lock()
	l.dead = true
	done := l.done
	l.done = nil
	incoming := l.incoming
	l.incoming = nil
	l.mu.Unlock()
	for _, c := range done {
		unix.Close(int(c.fd))
	}
	for _, pc := range incoming {
		l.nconns.Add(-1)
		unix.Close(pc.fd)
	}
}

// waitLimit is how long the loop may wait for events: a tick while anything
// on it has a deadline the timer wheel keeps (a connection, an upstream
// connection, accepting paused or stopped), idleWait when it holds nothing.
// A new connection or a posted task wakes the loop through epoll, so the
// next wait is a tick again.
func (l *loop) waitLimit() time.Duration {
	if l.nconns.Load() == 0 && l.nups.Load() == 0 && l.pauseTil == 0 && len(l.pipes) == 0 {
		return idleWait
	}
	return l.tryWait(tick)
}

// runAgain goes on with the connections whose pipelined requests the last
// round left buffered (perRoundRequests); each again gets at most its budget.
func (l *loop) runAgain() {
	refs := l.again
	l.again, l.againSpare = l.againSpare[:0], nil
	for _, r := range refs {
		if int(r.fd) >= len(l.conns) {
			continue
		}
		c := l.conns[r.fd]
		if c == nil || c.gen != r.gen || !c.again {
			continue
		}
		c.again = false
		if c.state == stateOpen && c.pending() == 0 && c.in != nil && len(*c.in) > 0 {
			l.process(c, nil)
		}
	}
	clear(refs)
	l.againSpare = refs[:0]
}

// nudgeEvery is how often a running loop looks for parked loops with events.
const nudgeEvery = 3 * time.Millisecond

// nudgeOthers wakes the loops parked in the runtime's poller whose epoll set
// has events ready. A parked loop is woken only when some thread polls the
// network; while the other loops run flat out (their events always ready,
// never entering the scheduler) only sysmon does, every 10 ms. A runtime
// trace under wrk -c64 showed loops parked up to 20 ms with their
// connections' data ready: that was the loop core's p99 tail
// (docs/benchmarks.md). Looking costs one poll(2) per parked loop per
// nudgeEvery.
// A loop nudges only after nudgeEvery without sleeping itself: a loop that
// sleeps hands its thread to the scheduler, whose search for work polls the
// network and so wakes the others (at low rates every round sleeps, and
// looking would cost a poll(2) per wake-up for nothing).
func (l *loop) nudgeOthers() {
	for _, o := range l.s.loops {
		if o != l && o.parked.Load() {
			o.nudge()
		}
	}
}

// nudge unparks l if its epoll set has events (called from another loop).
func (l *loop) nudge() {
	l.mu.Lock() // release closes pw and epfd under it
	defer l.mu.Unlock()
	if l.pw == nil || l.epfd < 0 {
		return
	}
	fds := [1]unix.PollFd{{Fd: int32(l.epfd), Events: unix.POLLIN}}
	if n, _ := unix.Poll(fds[:], 0); n > 0 {
		l.pw.unpark()
	}
}

// drainWake handles finished hand-offs and posted tasks.
func (l *loop) drainWake() {
	var b [8]byte
	_, _ = unix.Read(l.efd, b[:])
	l.waking.Store(false)
	l.mu.Lock()
	done, tasks := l.done, l.tasks
	l.done, l.spare = l.spare[:0], done
	l.tasks = nil
	incoming := l.incoming
	l.incoming = nil
	l.mu.Unlock()
	for _, pc := range incoming {
		l.nconns.Add(-1) // counted by adopt; open counts it again
		if l.stopping {
			unix.Close(pc.fd)
			continue
		}
		l.open(pc.fd, pc.sa)
	}
	for _, c := range done {
		l.finishHandoff(c)
	}
	clear(done)
	for _, f := range tasks {
		f(l)
	}
}

func (l *loop) accept() {
	if l.pauseTil != 0 {
		return
	}
	for i := 0; i < 64; i++ {
		fd, sa, err := unix.Accept4(l.s.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			switch err {
			case unix.EAGAIN, unix.ECONNABORTED, unix.EINTR:
			case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
				// Out of descriptors: stop accepting for a tick instead of
				// spinning on a listener that stays readable.
				l.s.cfg.Logger.Printf("evloop: accept: %v; pausing", err)
				l.stopAccept()
				l.pauseTil = l.now + int64(tick)
			default:
				l.s.cfg.Logger.Printf("evloop: accept: %v", err)
			}
			return
		}
		if l.stopping || l.s.closed.Load() {
			unix.Close(fd)
			return
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		if o := l.leastLoaded(); o != l && o.adopt(fd, sa) {
			continue
		}
		l.open(fd, sa)
	}
}

// leastLoaded is the loop with the fewest connections, l itself on a tie. The
// loop that wins the listener's wake-up accepts a whole burst (wrk's 64
// connections arrive together), so without this one loop would own them all
// while the others idle: half the cores and a long queue per loop. Handing a
// connection over costs one wake-up of the other loop, once per connection.
func (l *loop) leastLoaded() *loop {
	best, n := l, l.nconns.Load()
	for _, o := range l.s.loops {
		if m := o.nconns.Load(); m < n {
			best, n = o, m
		}
	}
	return best
}

// adopt queues an accepted connection for l (called from another loop). It
// counts the connection at once, so that the next pick sees it; false when l
// has stopped and the caller keeps the connection.
func (l *loop) adopt(fd int, sa unix.Sockaddr) bool {
	l.mu.Lock()
	if l.dead {
		l.mu.Unlock()
		return false
	}
	l.incoming = append(l.incoming, pendingConn{fd, sa})
	l.nconns.Add(1)
	l.wake()
	l.mu.Unlock()
	return true
}

func (l *loop) open(fd int, sa unix.Sockaddr) {
	raddr := tcpAddr(sa)
	pp := l.s.cfg.ProxyProtocol
	if pp != nil && !pp.Trusts(raddr) {
		pp.Reject(proxyproto.Untrusted)
		unix.Close(fd)
		return
	}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
		unix.Close(fd)
		return
	}
	var c *conn
	if n := len(l.free); n > 0 {
		c, l.free = l.free[n-1], l.free[:n-1]
	} else {
		c = &conn{l: l}
	}
	l.gen++
	c.fd, c.gen, c.ev, c.state = int32(fd), l.gen, unix.EPOLLIN, stateOpen
	c.raddr = raddr
	for fd >= len(l.conns) {
		l.conns = append(l.conns, make([]*conn, max(len(l.conns), 64))...)
	}
	l.conns[fd] = c
	l.nconns.Add(1)
	c.sniffH2 = l.s.cfg.H2C != nil
	if pp != nil {
		// First its PROXY header, within the header's own bound.
		c.proxyHdr, c.deadlineKind = true, deadlineProxy
		l.setDeadline(c, pp.Timeout)
		return
	}
	// A new connection must send its request within the read timeout.
	l.setDeadline(c, l.s.cfg.ReadTimeout)
}

// event handles readiness of a client connection.
func (l *loop) event(c *conn, ev uint32) {
	if c.state == stateHandedOff || c.state == stateForwarding {
		// The handler owns the response; pipelined input waits in the kernel.
		if ev&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			// Level-triggered HUP would fire every round: leave the set and
			// close when the hand-off returns (the fd must stay ours until then).
			_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, int(c.fd), nil)
			c.ev, c.gone = 0, true
			return
		}
		l.setInterest(c, 0)
		return
	}
	if ev&unix.EPOLLOUT != 0 || (ev&(unix.EPOLLHUP|unix.EPOLLERR) != 0 && c.pending() > 0) {
		if !l.flush(c) {
			return
		}
		if c.pending() == 0 && c.state == stateOpen {
			// The answer is out: go on with pipelined input if any.
			l.process(c, nil)
		}
		return
	}
	if ev&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		l.read(c)
	}
}

func (l *loop) read(c *conn) {
	if c.pending() > 0 {
		// The client has not read our last answer: it gets no more until it does.
		l.setInterest(c, unix.EPOLLOUT)
		return
	}
	if c.again {
		// Complete requests are still buffered (runAgain serves them): read
		// no more until they are answered, so the buffer stays bounded.
		return
	}
	n, err := rawRead(int(c.fd), l.buf)
	if n <= 0 {
		if err == unix.EAGAIN || err == unix.EINTR {
			return
		}
		// EOF or reset: nothing more will come.
		if c.proxyHdr && c.in != nil && len(*c.in) > 0 {
			l.s.cfg.ProxyProtocol.Reject(proxyproto.Invalid) // closed within a header
		}
		l.close(c)
		return
	}
	l.process(c, l.buf[:n])
}

// setInterest changes the epoll interest of c when it differs.
func (l *loop) setInterest(c *conn, ev uint32) {
	if c.ev == ev || c.gone {
		return
	}
	c.ev = ev
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, int(c.fd), &unix.EpollEvent{Events: ev, Fd: c.fd})
}

// flush writes c's pending output. It reports false when it closed c.
func (l *loop) flush(c *conn) bool {
	for c.pending() > 0 {
		n, err := rawWrite(int(c.fd), (*c.out)[c.outOff:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			l.setInterest(c, unix.EPOLLOUT)
			if c.deadlineKind != deadlineWrite {
				c.deadlineKind = deadlineWrite
				l.setDeadline(c, l.s.cfg.WriteTimeout)
			}
			return true
		}
		if err != nil || n <= 0 {
			l.close(c)
			return false
		}
		c.outOff += n
	}
	putBuf(c.out)
	c.out, c.outOff = nil, 0
	if c.closeAfter {
		l.close(c)
		return false
	}
	l.setInterest(c, unix.EPOLLIN)
	if c.deadlineKind == deadlineWrite {
		c.deadlineKind = deadlineNone
	}
	return true
}

// close closes c. A handed-off connection is only marked: its fd stays open
// until the handler returned, so that no new connection can reuse the number
// while the handler's goroutine may still write to it.
func (l *loop) close(c *conn) {
	if c.state == stateHandedOff || c.state == stateForwarding {
		c.gone = true
		return
	}
	if c.state == stateClosed {
		return
	}
	c.state = stateClosed
	if int(c.fd) < len(l.conns) && l.conns[c.fd] == c {
		l.conns[c.fd] = nil
	}
	if c.closeAfter && !c.gone {
		// Closing a socket with unread input sends a reset, which can destroy
		// the answer just written (a 400 before the rest of a bad pipeline)
		// before the client reads it: send FIN after it and drop what is
		// already queued. A bounded, non-blocking form of lingering close.
		_ = unix.Shutdown(int(c.fd), unix.SHUT_WR)
		for i := 0; i < 4; i++ {
			if n, _ := unix.Read(int(c.fd), l.buf); n < len(l.buf) {
				break
			}
		}
	}
	unix.Close(int(c.fd))
	l.nconns.Add(-1)
	c.reset()
	l.free = append(l.free, c)
}

func (l *loop) closeAll() {
	l.closeUpstreams()
	for _, c := range l.conns {
		if c != nil && c.state != stateHandedOff {
			l.close(c)
		}
	}
	if l.accepted {
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, l.s.lfd, nil)
	}
}

// setDeadline arms c's single timer d from now (0: none).
func (l *loop) setDeadline(c *conn, d time.Duration) {
	if d <= 0 {
		c.deadline = 0
		return
	}
	c.deadline = l.now + int64(d)
	l.schedule(c)
}

// schedule queues c in the wheel slot of its deadline, unless it is already
// queued in an earlier slot: deadlines mostly move later (every request pushes
// the idle timeout on), so a busy connection costs one wheel entry per timeout
// period, re-queued lazily when its old slot comes up.
func (l *loop) schedule(c *conn) {
	if c.deadlineKind == deadlineForward && c.deadline > 0 {
		l.armTry(c)
	}
	slot := c.deadline/int64(tick) + 1
	if slot > l.wheelPos+wheelSlots-1 {
		slot = l.wheelPos + wheelSlots - 1
	}
	if slot <= l.wheelPos {
		slot = l.wheelPos + 1
	}
	if c.queued != 0 && c.queued <= slot {
		return
	}
	c.queued = slot
	i := slot % wheelSlots
	l.wheel[i] = append(l.wheel[i], timerRef{fd: c.fd, gen: c.gen})
}

// timers fires the wheel's slots up to now.
func (l *loop) timers() {
	if l.pauseTil > 0 && l.now >= l.pauseTil {
		l.pauseTil = 0
		if err := l.startAccept(); err != nil {
			l.pauseTil = l.now + int64(tick)
		}
	}
	l.fireTries()
	cur := l.now / int64(tick)
	if l.nups.Load() > 0 && l.wheelPos < cur {
		l.upSweep()
		if len(l.pipes) > 0 {
			l.rescuePipes()
		}
	}
	for l.wheelPos < cur {
		l.wheelPos++
		i := l.wheelPos % wheelSlots
		refs := l.wheel[i]
		l.wheel[i] = nil
		for _, r := range refs {
			if int(r.fd) >= len(l.conns) {
				continue
			}
			c := l.conns[r.fd]
			if c == nil || c.gen != r.gen || c.queued != l.wheelPos {
				continue
			}
			c.queued = 0
			if c.deadline == 0 || (c.state != stateOpen && c.state != stateForwarding) {
				continue
			}
			if c.deadline <= l.now {
				l.expire(c)
			} else {
				l.schedule(c)
			}
		}
		if cap(refs) <= 256 {
			l.wheel[i] = refs[:0]
		}
	}
}
