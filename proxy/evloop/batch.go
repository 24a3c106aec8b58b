//go:build linux

package evloop

import (
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Wake-up coalescing (Config.BatchWait, the edge's io_batch_wait), opt-in.
//
// Why: at a few thousand requests a second from many keep-alive connections
// each request finds the loop asleep, so each costs a whole sleep and
// wake-up (the context switch, the runtime's park and unpark, the polls):
// measured at 500 req/s that is about 85 % of the loop's CPU per request,
// the hit's own work about 12 % (docs/benchmarks.md, "The event loop's
// wake-up at 500 req/s"). A NIC's interrupt moderation trades a bounded
// delay for fewer interrupts; this does the same for the loop's wake-ups.
// A loop that has just handled a round of events while its recent event
// rate is at least one per wait (so it would be woken again within the wait
// anyway) sleeps for the wait, deaf to its epoll set, then takes whatever is
// ready without waiting; when that finds nothing, or the rate falls below
// one per wait, it parks in the poller as without coalescing. So sparse
// traffic never waits for a timer, an idle loop parks as before, and no
// request waits longer than the wait (plus the kernel's timer slack) for a
// loop that is coalescing.
//
// Being deaf matters: the loop's epoll set sits in the runtime's poller,
// and every new event in it would wake a thread blocked there (to find no
// goroutine to run) unless the loop's set is taken out of it while the
// loop sleeps. With coalescing on, pollWait registers a second epoll set
// holding only the loop's, so muting is one epoll_ctl that disables that
// one entry, and unmuting (before parking) one that enables it again.
//
// The sleep is a raw nanosleep that keeps the loop's P: the runtime's own
// timers wake on the network poller's millisecond timeout (a 500 µs sleep
// lasts a millisecond or two), and a sleep through the runtime's syscall
// path would wake sysmon every time (docs/benchmarks.md). Keeping the P for
// at most BatchWait (2 ms) delays what is queued on it by as much; other
// Ps steal it, and a preemption signal ends the sleep early (nanosleep
// returns EINTR, never restarted).

// MaxBatchWait bounds Config.BatchWait (and the edge's io_batch_wait).
const MaxBatchWait = 2 * time.Millisecond

// batchWindowWaits is the rate estimate's window in waits: 16 waits hold 16
// events at the threshold rate, enough that one burst does not flip it.
const batchWindowWaits = 16

// batcher decides, after each round, whether the loop coalesces its next
// wake-up. Only the loop's goroutine touches it.
type batcher struct {
	wait int64 // nanoseconds; 0: off
	// The current window's start and the events counted in it; busy is the
	// last whole window's verdict: at least one event per wait.
	winStart  int64
	winEvents int
	busy      bool
}

func newBatcher(wait time.Duration) batcher {
	if wait <= 0 {
		return batcher{}
	}
	return batcher{wait: int64(min(wait, MaxBatchWait))}
}

// after records a round at now that handled n events and says whether the
// loop should sleep for the wait before it polls again: coalescing is on,
// the round had events (a round that found nothing parks), nothing is left
// to go on with at once (again), and the event rate over the last window
// was at least one per wait.
func (b *batcher) after(now int64, n int, again bool) bool {
	if b.wait == 0 {
		return false
	}
	b.winEvents += n
	if el := now - b.winStart; el >= batchWindowWaits*b.wait {
		b.busy = int64(b.winEvents)*b.wait >= el
		b.winStart, b.winEvents = now, 0
	}
	return b.busy && n > 0 && !again
}

// rawEpollCtl is unix.EpollCtl without the runtime's syscall bookkeeping
// (epoll_ctl does not block; see rawsys.go).
func rawEpollCtl(epfd, op, fd int, ev *unix.EpollEvent) error {
	_, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// batchSleep sleeps for d on the loop's thread (see above); a signal ends it
// early.
func batchSleep(d int64) {
	ts := unix.NsecToTimespec(d)
	_, _, _ = syscall.RawSyscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
}
