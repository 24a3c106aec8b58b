//go:build linux

package evloop

import (
	"errors"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A loop with nothing ready waits for its epoll set in the Go runtime's
// network poller (the epoll descriptor is itself pollable: it reads ready
// when a descriptor in its set is), not in a blocking epoll_wait.
//
// Why: a goroutine blocked in a system call keeps its P in the syscall
// state, which the runtime does not count as idle; with every loop waiting
// that way the runtime never looks idle, so its sysmon thread never takes
// its long sleep and wakes every 20 µs to 10 ms. Measured at 500 cache
// hits/s (perf stat, docs/benchmarks.md "Where the edge's CPU goes at 500
// req/s"): 7.1 sysmon nanosleeps and 9.3 context switches per request, and
// 165 nanosleeps a second idle. Parked in the poller, a waiting loop is an
// idle goroutine like any other and its P is idle.
type pollWait struct {
	f  *os.File // a duplicate of the loop's epoll descriptor, in the poller
	rc syscall.RawConn
	// epfd is the loop's epoll descriptor, which every poll reads. With
	// coalescing (batch.go) f is not its duplicate but a second epoll set
	// holding it alone, so the loop can mute it (take it out of the poller's
	// sight) while it sleeps; muted says it is.
	epfd  int
	pfd   int // f's descriptor (os.File.Fd would make it blocking)
	nest  bool
	muted bool
	// fn is l.pollOnce, bound once so a wait allocates nothing.
	fn     func(fd uintptr) bool
	events []unix.EpollEvent
	n      int
	err    error
	// calls counts pollOnce's calls in the current wait; parked says the
	// last wait went to sleep in the poller (its first poll found nothing).
	calls  int
	parked bool
	// deadline is the read deadline set on f (unix nanoseconds), 0 when
	// none is or it has passed. A wait keeps a deadline at least half its
	// limit ahead instead of setting a new one: at 500 requests a second a
	// loop waits 250-500 times a second, and each SetReadDeadline is a
	// runtime timer changed; pushed on when half spent, the deadline of a
	// busy loop never fires. Only the loop's goroutine touches it; unpark's
	// past deadline shows as os.ErrDeadlineExceeded, which clears it.
	deadline int64
}

// newPollWait registers a duplicate of epfd with the runtime's poller (with
// nest, a second epoll set holding epfd: see batch.go); nil (the loop then
// blocks in epoll_wait as before) when that fails.
func newPollWait(epfd int, nest bool) *pollWait {
	var fd int
	var err error
	if nest {
		fd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err == nil {
			if err = unix.EpollCtl(fd, unix.EPOLL_CTL_ADD, epfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(epfd)}); err != nil {
				unix.Close(fd)
			}
		}
	} else {
		fd, err = unix.FcntlInt(uintptr(epfd), unix.F_DUPFD_CLOEXEC, 0)
	}
	if err != nil {
		return nil
	}
	// O_NONBLOCK is what makes os.NewFile register the descriptor with the
	// poller; epoll_wait itself ignores it (its wait is its timeout argument).
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil
	}
	f := os.NewFile(uintptr(fd), "evloop-epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil
	}
	w := &pollWait{f: f, rc: rc, epfd: epfd, pfd: fd, nest: nest}
	w.fn = w.pollOnce
	return w
}

// mute takes the loop's epoll set out of the poller's sight: events in it
// no longer wake a thread blocked in the runtime's poller. Only a nested
// pollWait (newPollWait's nest) can; it reports whether the set is muted.
// Only the loop's goroutine calls it; wait unmutes.
func (w *pollWait) mute() bool {
	if !w.muted && w.nest {
		ev := unix.EpollEvent{Fd: int32(w.epfd)} // no events: the entry is disabled
		w.muted = rawEpollCtl(w.pfd, unix.EPOLL_CTL_MOD, w.epfd, &ev) == nil
	}
	return w.muted
}

// unmute undoes mute. Events that came while muted are still ready in the
// loop's set (level-triggered), so the poll that follows sees them.
func (w *pollWait) unmute() error {
	if !w.muted {
		return nil
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(w.epfd)}
	if err := rawEpollCtl(w.pfd, unix.EPOLL_CTL_MOD, w.epfd, &ev); err != nil {
		return err
	}
	w.muted = false
	return nil
}

// pollOnce takes the events ready now; false parks the loop in the poller.
// It polls the loop's set itself (fd is f's, the same set or, nested, the
// set holding it).
func (w *pollWait) pollOnce(fd uintptr) bool {
	w.calls++
	w.n, w.err = pollReady(w.epfd, w.events)
	return w.n > 0 || (w.err != nil && w.err != unix.EINTR)
}

// wait returns the ready events, waiting at most d for some: (0, nil) when
// none came in time. A deadline set by an earlier wait that is d/2 to d
// away stands: a wait may end after d/2, never later than d.
func (w *pollWait) wait(events []unix.EpollEvent, d time.Duration) (int, error) {
	// Unmuted before the poll descriptor is reset and the first poll made:
	// an event after this wakes the poller, one before it is seen by the poll.
	if err := w.unmute(); err != nil {
		return 0, err
	}
	if now := time.Now().UnixNano(); w.deadline-now < int64(d/2) || w.deadline-now > int64(d) {
		w.deadline = now + int64(d)
		if err := w.f.SetReadDeadline(time.Unix(0, w.deadline)); err != nil {
			w.deadline = 0
			return 0, err
		}
	}
	w.events, w.n, w.err, w.calls = events, 0, nil, 0
	err := w.rc.Read(w.fn)
	w.events = nil
	w.parked = w.calls != 1 || err != nil
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			w.deadline = 0
			return 0, nil
		}
		return 0, err
	}
	return w.n, w.err
}

// unpark ends a wait in progress at once (from another goroutine): its
// deadline passes, and wait returns (0, nil). A wait that starts after it
// either finds the deadline passed and returns (0, nil) at once, or (when
// the last wait's deadline had passed too) sets its own and polls first, so
// at worst one round finds nothing.
func (w *pollWait) unpark() { _ = w.f.SetReadDeadline(time.Unix(1, 0)) }

func (w *pollWait) close() { w.f.Close() }
