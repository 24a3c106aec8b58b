// Package stripe splits state that every cache hit writes (counters, the
// reader count of a read lock) into cache-line-padded stripes, one picked
// per caller by a hint: the event loop's index on the event-loop core, the
// connection id on the goroutine core.
//
// Why: the edge's event loops (one per core) serve hits of one hot entry at
// the same time, and an atomic add on a line the other core wrote last
// waits for the line to move over. Under wrk -t1 -c64 on two cores the
// RWMutex reader count of the local table's shard and the hit counter were
// a third of the local lookup's CPU (BenchmarkRawHitParallel,
// docs/benchmarks.md); on a stripe of its own each loop's adds stay in its
// core's cache.
package stripe

import (
	"sync"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// N is the number of stripes: more than the loops of the machines the edge
// runs on, a power of two so the pick is a mask.
const N = 8

// lineSize is a cache line on amd64 and arm64 (what the padding is for).
const lineSize = 64

// Hint is the stripe hint of ctx's request: its event loop's index when the
// connection belongs to a loop (which serves its hits one at a time), else
// its connection id (fasthttp's, new on every connection).
func Hint(ctx *fasthttp.RequestCtx) uint {
	if l, ok := ctx.Conn().(loopConn); ok {
		return uint(l.LoopID())
	}
	return uint(ctx.ConnID())
}

// loopConn is the event loop's connection (proxy/evloop).
type loopConn interface{ LoopID() int }

type counterStripe struct {
	n atomic.Uint64
	_ [lineSize - 8]byte
}

// Counter is a count added to in stripes and read by Drain. The zero value
// is ready.
type Counter struct {
	s [N]counterStripe
}

// Inc adds one on hint's stripe.
func (c *Counter) Inc(hint uint) { c.s[hint&(N-1)].n.Add(1) }

// Drain returns what was added since the last Drain and starts again from
// zero (each stripe is swapped, so no add is lost or counted twice).
func (c *Counter) Drain() uint64 {
	var sum uint64
	for i := range c.s {
		if c.s[i].n.Load() != 0 {
			sum += c.s[i].n.Swap(0)
		}
	}
	return sum
}

type rwStripe struct {
	mu sync.RWMutex
	_  [lineSize - 24]byte
}

// RWMutex is a read-mostly lock: a reader locks only its hint's stripe, a
// writer every stripe (in order, so writers do not deadlock). The zero value
// is unlocked.
type RWMutex struct {
	s [N]rwStripe
}

// RLock read-locks hint's stripe and returns it for RUnlock.
func (m *RWMutex) RLock(hint uint) *sync.RWMutex {
	mu := &m.s[hint&(N-1)].mu
	mu.RLock()
	return mu
}

// Lock locks every stripe.
func (m *RWMutex) Lock() {
	for i := range m.s {
		m.s[i].mu.Lock()
	}
}

// Unlock unlocks what Lock locked.
func (m *RWMutex) Unlock() {
	for i := len(m.s) - 1; i >= 0; i-- {
		m.s[i].mu.Unlock()
	}
}

// Sequence hands out unique numbers from per-stripe counters: the n-th
// number of stripe s is n*N+s, so no two stripes ever give the same one and
// no core waits for another's line. The zero value is ready; numbers start
// above zero.
type Sequence struct {
	s [N]counterStripe
}

// Next returns a number no other Next of the Sequence returns.
func (q *Sequence) Next(hint uint) uint64 {
	i := hint & (N - 1)
	return q.s[i].n.Add(1)*N + uint64(i)
}
