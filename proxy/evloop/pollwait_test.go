//go:build linux

package evloop

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pollSet is an epoll set holding one eventfd, and its pollWait (nested,
// as with coalescing on, when EVLOOP_TEST_BATCH_WAIT is set).
func pollSet(t *testing.T) (epfd, efd int, w *pollWait) {
	return pollSetNest(t, testBatchWait(t) > 0)
}

func pollSetNest(t *testing.T, nest bool) (epfd, efd int, w *pollWait) {
	t.Helper()
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	efd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(efd)}); err != nil {
		t.Fatal(err)
	}
	w = newPollWait(epfd, nest)
	if w == nil {
		t.Fatal("newPollWait: the epoll descriptor could not join the runtime's poller")
	}
	t.Cleanup(func() { w.close(); unix.Close(efd); unix.Close(epfd) })
	return epfd, efd, w
}

// TestPollWait: a wait returns the event that arrives while it waits, an
// event already pending without waiting, and (0, nil) when none comes before
// its limit.
func TestPollWait(t *testing.T) {
	one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	tests := []struct {
		name    string
		before  bool          // write the eventfd before the wait
		during  time.Duration // write it this long into the wait (0: not)
		limit   time.Duration
		wantN   int
		wantMin time.Duration
	}{
		{"event during the wait", false, 20 * time.Millisecond, 30 * time.Second, 1, 0},
		{"event already pending", true, 0, 30 * time.Second, 1, 0},
		{"nothing before the limit", false, 0, 50 * time.Millisecond, 0, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, efd, w := pollSet(t)
			if tt.before {
				unix.Write(efd, one)
			}
			if tt.during > 0 {
				time.AfterFunc(tt.during, func() { unix.Write(efd, one) })
			}
			events := make([]unix.EpollEvent, 8)
			start := time.Now()
			n, err := w.wait(events, tt.limit)
			if err != nil || n != tt.wantN {
				t.Fatalf("wait = %d, %v; want %d, nil", n, err, tt.wantN)
			}
			if n == 1 && int(events[0].Fd) != efd {
				t.Fatalf("event for fd %d, want the eventfd %d", events[0].Fd, efd)
			}
			if waited := time.Since(start); waited < tt.wantMin {
				t.Fatalf("returned after %s, before its limit %s", waited, tt.wantMin)
			}
		})
	}
}

// TestIdleLoopsParkInPoller: idle loops wait as goroutines parked in the
// runtime's poller ("IO wait"), not in a blocking system call ("syscall"),
// which keeps their Ps busy in the runtime's eyes and its sysmon thread
// polling (pollwait.go).
func TestIdleLoopsParkInPoller(t *testing.T) {
	_, addr := startLoops(t, Config{Loops: 2, Handler: echo})
	rawExchange(t, addr, "GET /x HTTP/1.1\r\nHost: shop\r\n\r\n", 1)
	var states []string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		states = loopStates()
		parked := len(states) == 2
		for _, s := range states {
			parked = parked && s == "IO wait"
		}
		if parked {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("idle loops' goroutine states %q, want two in IO wait", states)
}

// loopStates are the states of the goroutines running loop.run.
func loopStates() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "evloop.(*loop).run(") {
			continue
		}
		head, _, _ := strings.Cut(g, "\n")
		// "goroutine 7 [IO wait]:" or "goroutine 7 [IO wait, 2 minutes]:"
		if i, j := strings.IndexByte(head, '['), strings.IndexAny(head, ",]"); i >= 0 && j > i {
			out = append(out, head[i+1:j])
		}
	}
	return out
}

// TestPollWaitSequence: waits one after another, as the loop makes them,
// keep an earlier wait's deadline only while it is at least half their limit
// and at most their limit ahead, come back from unpark at once, and after an unpark wait again
// (not spinning on the passed deadline); parked says whether a wait slept.
func TestPollWaitSequence(t *testing.T) {
	one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	var b [8]byte
	_, efd, w := pollSet(t)
	events := make([]unix.EpollEvent, 8)
	mustWait := func(limit time.Duration, wantN int, min, max time.Duration, wantParked bool) {
		t.Helper()
		start := time.Now()
		n, err := w.wait(events, limit)
		waited := time.Since(start)
		if err != nil || n != wantN {
			t.Fatalf("wait = %d, %v; want %d, nil", n, err, wantN)
		}
		if waited < min || waited > max {
			t.Fatalf("returned after %s, want %s-%s", waited, min, max)
		}
		if w.parked != wantParked {
			t.Fatalf("parked = %v, want %v", w.parked, wantParked)
		}
		if n > 0 {
			unix.Read(efd, b[:])
		}
	}
	// A pending event: no sleep. Then a long wait's deadline (30 s) must not
	// stretch a short one: 50 ms later it ends.
	unix.Write(efd, one)
	mustWait(30*time.Second, 1, 0, 5*time.Second, false)
	mustWait(50*time.Millisecond, 0, 50*time.Millisecond, 5*time.Second, true)
	// An event during a wait wakes it; the next wait keeps the same
	// deadline (more than half its limit ahead) and ends by its limit, not
	// before half of it.
	time.AfterFunc(20*time.Millisecond, func() { unix.Write(efd, one) })
	mustWait(time.Second, 1, 0, 900*time.Millisecond, true)
	mustWait(time.Second, 0, 500*time.Millisecond, 1100*time.Millisecond, true)
	// unpark ends a wait at once, and the wait after it sleeps again (its
	// deadline passed: it sets a new one, not spinning on the old).
	time.AfterFunc(20*time.Millisecond, w.unpark)
	mustWait(30*time.Second, 0, 0, 5*time.Second, true)
	time.AfterFunc(100*time.Millisecond, func() { unix.Write(efd, one) })
	mustWait(30*time.Second, 1, 90*time.Millisecond, 5*time.Second, true)
	// An unpark between waits costs at most one empty wait, and the next
	// event is seen.
	w.unpark()
	time.AfterFunc(100*time.Millisecond, func() { unix.Write(efd, one) })
	start := time.Now()
	n, _ := w.wait(events, 30*time.Second)
	if n == 0 {
		n, _ = w.wait(events, 30*time.Second)
	}
	if waited := time.Since(start); n != 1 || waited < 90*time.Millisecond || waited > 5*time.Second {
		t.Fatalf("after an unpark between waits: %d events after %s, want 1 after ~100ms", n, waited)
	}
}

// TestWaitLimit: a loop holding nothing waits up to idleWait; a connection,
// an upstream connection or paused accepting bring it back to the tick its
// timer wheel needs.
func TestWaitLimit(t *testing.T) {
	var l loop
	if got := l.waitLimit(); got != idleWait {
		t.Fatalf("empty loop: %s, want %s", got, idleWait)
	}
	l.nconns.Add(1)
	if got := l.waitLimit(); got != tick {
		t.Fatalf("one connection: %s, want %s", got, tick)
	}
	l.nconns.Add(-1)
	l.nups.Add(1)
	if got := l.waitLimit(); got != tick {
		t.Fatalf("one upstream connection: %s, want %s", got, tick)
	}
	l.nups.Add(-1)
	l.pauseTil = -1
	if got := l.waitLimit(); got != tick {
		t.Fatalf("accepting stopped: %s, want %s", got, tick)
	}
}

// TestTryTimers: a forwarded request's per-try deadline shortens the loop's
// wait to itself (rounded up to a millisecond) instead of waiting for the
// next 100 ms tick, and an entry whose try moved on (answered, next try)
// neither shortens a wait nor survives a compaction.
func TestTryTimers(t *testing.T) {
	var l loop
	l.now = int64(time.Hour)
	l.conns = make([]*conn, 64)
	l.nconns.Add(1)
	conns := make([]*conn, 0, 40)
	for fd := int32(3); fd < 43; fd++ {
		c := &conn{fd: fd, gen: 1, state: stateForwarding, deadlineKind: deadlineForward}
		l.conns[fd] = c
		conns = append(conns, c)
	}
	arm := func(c *conn, in time.Duration) {
		c.deadline = l.now + int64(in)
		l.armTry(c)
	}
	arm(conns[0], 80*time.Millisecond)
	arm(conns[1], 30*time.Millisecond+time.Microsecond)
	arm(conns[2], time.Second)
	if got := l.waitLimit(); got != 31*time.Millisecond {
		t.Fatalf("wait with a try due in 30.001ms: %s, want 31ms", got)
	}
	conns[1].deadline = 0 // answered
	if got := l.waitLimit(); got != 80*time.Millisecond {
		t.Fatalf("after the first try was answered: %s, want 80ms", got)
	}
	arm(conns[0], 500*time.Millisecond) // its next try
	if got := l.waitLimit(); got != tick {
		t.Fatalf("no try due within a tick: %s, want %s", got, tick)
	}
	conns[0].state = stateOpen // the request was answered
	conns[2].gen++             // the connection was closed and reused
	if got := l.nextTry(); got != 0 {
		t.Fatalf("only stale entries left, next try at %d", got)
	}
	// Compaction keeps the live entries in heap order.
	for i, c := range conns[3:] {
		arm(c, time.Duration(40-i)*time.Millisecond)
		if i%2 == 0 {
			c.deadline++ // moved on: this entry is stale
		}
	}
	l.compactTries()
	if len(l.tries.h) != 18 {
		t.Fatalf("%d entries after compaction, want the 18 live ones", len(l.tries.h))
	}
	prev := int64(0)
	for l.nextTry() != 0 {
		at := l.tries.h[0].at
		if at < prev {
			t.Fatalf("heap order broken: %d after %d", at, prev)
		}
		prev = at
		l.tries.pop()
	}
}
