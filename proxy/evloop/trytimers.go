package evloop

import "time"

// tryTimer is a forwarded request's per-try deadline, kept beside the timer
// wheel: the wheel's 100 ms slots fire a deadline up to a tick late, which
// is noise for read and idle timeouts but not for a per-try timeout an
// operator sets to a few hundred milliseconds to fail over fast (a 200 ms
// try took 300 ms on the loop). The wheel still holds the connection too;
// whichever sees the deadline first expires it, and the other finds it
// moved on.
type tryTimer struct {
	at  int64 // the deadline (loop clock) the entry was made for
	ref timerRef
}

// tryTimers is a binary min-heap on at. Entries are never removed early:
// one whose connection moved on (answered, next try, closed) is dropped
// when it reaches the top, so a try costs one push and no search. It is not
// container/heap, whose Push takes an interface: boxing a tryTimer would
// allocate once per forwarded try.
type tryTimers struct {
	h []tryTimer
	// compactAt is the length at which stale entries are swept out, so a
	// busy loop with long per-try timeouts does not keep one entry per try
	// of the last timeout period.
	compactAt int
}

const tryTimersCompactMin = 1024

func (t *tryTimers) push(e tryTimer) {
	t.h = append(t.h, e)
	for i := len(t.h) - 1; i > 0; {
		p := (i - 1) / 2
		if t.h[p].at <= t.h[i].at {
			break
		}
		t.h[p], t.h[i] = t.h[i], t.h[p]
		i = p
	}
}

func (t *tryTimers) pop() {
	n := len(t.h) - 1
	t.h[0] = t.h[n]
	t.h = t.h[:n]
	t.down(0)
}

// down moves the entry at i down to its place.
func (t *tryTimers) down(i int) {
	for n := len(t.h); ; {
		l, m := 2*i+1, i
		if l < n && t.h[l].at < t.h[m].at {
			m = l
		}
		if r := l + 1; r < n && t.h[r].at < t.h[m].at {
			m = r
		}
		if m == i {
			return
		}
		t.h[m], t.h[i] = t.h[i], t.h[m]
		i = m
	}
}

// armTry records c's per-try deadline (schedule calls it for
// deadlineForward).
func (l *loop) armTry(c *conn) {
	t := &l.tries
	if len(t.h) >= max(t.compactAt, tryTimersCompactMin) {
		l.compactTries()
	}
	t.push(tryTimer{at: c.deadline, ref: timerRef{fd: c.fd, gen: c.gen}})
}

// liveTry returns the connection e still times, or nil.
func (l *loop) liveTry(e tryTimer) *conn {
	if int(e.ref.fd) >= len(l.conns) {
		return nil
	}
	c := l.conns[e.ref.fd]
	if c == nil || c.gen != e.ref.gen || c.state != stateForwarding || c.deadlineKind != deadlineForward || c.deadline != e.at {
		return nil
	}
	return c
}

// compactTries drops the stale entries and rebuilds the heap.
func (l *loop) compactTries() {
	t := &l.tries
	live := t.h[:0]
	for _, e := range t.h {
		if l.liveTry(e) != nil {
			live = append(live, e)
		}
	}
	clear(t.h[len(live):])
	t.h = live
	for i := len(t.h)/2 - 1; i >= 0; i-- {
		t.down(i)
	}
	t.compactAt = 4 * len(t.h)
}

// nextTry drops stale entries off the top and returns the earliest live
// per-try deadline, 0 when none.
func (l *loop) nextTry() int64 {
	t := &l.tries
	for len(t.h) > 0 {
		if l.liveTry(t.h[0]) != nil {
			return t.h[0].at
		}
		t.pop()
	}
	return 0
}

// fireTries expires the connections whose per-try deadline has passed.
func (l *loop) fireTries() {
	for at := l.nextTry(); at != 0 && at <= l.now; at = l.nextTry() {
		c := l.conns[l.tries.h[0].ref.fd]
		l.tries.pop()
		l.expire(c)
	}
}

// tryWait caps a wait of d at the next live per-try deadline, rounded up
// to the millisecond epoll_wait counts in.
func (l *loop) tryWait(d time.Duration) time.Duration {
	at := l.nextTry()
	if at == 0 {
		return d
	}
	left := time.Duration(at - l.now)
	if left <= 0 {
		return 0
	}
	left = (left + time.Millisecond - 1) / time.Millisecond * time.Millisecond
	return min(d, left)
}
