package proxy

import (
	"sync/atomic"
	"time"
)

// budgetSlots is how many buckets the sliding window is cut into.
const budgetSlots = 10

// RetryBudget caps retries at Ratio × requests plus MinPerSecond per second over a
// sliding window, so that when an origin fails the extra load retries add stays
// bounded instead of snowballing (the Finagle/Linkerd retry budget). It is lock-free;
// counts are approximate at bucket boundaries, which a budget tolerates.
type RetryBudget struct {
	ratio     float64
	minPerSec float64
	window    time.Duration
	width     int64 // nanoseconds per slot
	slots     [budgetSlots]budgetSlot
}

type budgetSlot struct {
	epoch   atomic.Int64 // slot number (unix nanos / width) the counts belong to
	reqs    atomic.Int64
	retries atomic.Int64
}

// NewRetryBudget builds a budget; window below one second counts as one second.
func NewRetryBudget(ratio float64, minPerSecond int, window time.Duration) *RetryBudget {
	window = max(window, time.Second)
	return &RetryBudget{ratio: ratio, minPerSec: float64(minPerSecond), window: window, width: int64(window) / budgetSlots}
}

func (b *RetryBudget) slot(now time.Time) *budgetSlot {
	epoch := now.UnixNano() / b.width
	s := &b.slots[epoch%budgetSlots]
	if old := s.epoch.Load(); old != epoch && s.epoch.CompareAndSwap(old, epoch) {
		s.reqs.Store(0)
		s.retries.Store(0)
	}
	return s
}

// Request counts one client request (not a retry).
func (b *RetryBudget) Request(now time.Time) { b.slot(now).reqs.Add(1) }

// AllowRetry reports whether one more retry fits the budget, and counts it if so.
func (b *RetryBudget) AllowRetry(now time.Time) bool {
	cur := b.slot(now)
	epoch := now.UnixNano() / b.width
	var reqs, retries int64
	for i := range b.slots {
		s := &b.slots[i]
		if e := s.epoch.Load(); e > epoch-budgetSlots && e <= epoch {
			reqs += s.reqs.Load()
			retries += s.retries.Load()
		}
	}
	allowed := b.ratio*float64(reqs) + b.minPerSec*b.window.Seconds()
	if float64(retries) >= allowed {
		return false
	}
	cur.retries.Add(1)
	return true
}
