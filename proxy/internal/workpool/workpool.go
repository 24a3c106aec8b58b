// Package workpool runs jobs on a bounded set of long-lived goroutines whose
// stacks stay grown between jobs.
//
// The edge's handler path is deep: a fresh goroutine per HTTP/2 or HTTP/3
// stream grew its small stack every time (runtime.copystack was 14 % of the
// edge's CPU under h2load). Handing a job to a warm worker costs a goroutine
// switch instead of a stack copy. The pool never queues: with every worker
// busy (slow origins, streamed answers) Go and Run report false and the
// caller runs the job itself, so the pool never limits streams; the
// protocol's own per-connection limits bound the work.
//
// Idle workers are kept LIFO (the warmest first); one idle longer than
// MaxIdle is let go when another goes idle, so there is no timer per worker.
package workpool

import (
	"sync"
	"time"
)

// Pool is a bounded worker pool for jobs of type J. Set Max, MaxIdle and Do
// before the first job; the zero value of the rest is ready.
type Pool[J any] struct {
	// Max bounds the live workers.
	Max int
	// MaxIdle is how long a worker may wait unused before it is let go.
	MaxIdle time.Duration
	// Do runs one job. Its result goes back to Run's caller (Go drops it).
	Do func(J) any

	mu     sync.Mutex
	idle   []*worker[J]
	n      int
	closed bool
}

type job[J any] struct {
	j    J
	wait bool
}

type worker[J any] struct {
	in       chan job[J] // one slot: an idle worker's is always empty
	out      chan any
	lastUsed time.Time
}

// Go hands j to an idle or new worker and returns at once; false when every
// worker is busy or the pool is closed (the caller runs j itself).
func (p *Pool[J]) Go(j J) bool {
	wk := p.get()
	if wk == nil {
		return false
	}
	wk.in <- job[J]{j: j}
	return true
}

// Run hands j to an idle or new worker and returns what Do returned, with
// ok true; ok is false when every worker is busy or the pool is closed.
func (p *Pool[J]) Run(j J) (v any, ok bool) {
	wk := p.get()
	if wk == nil {
		return nil, false
	}
	wk.in <- job[J]{j: j, wait: true}
	return <-wk.out, true
}

// get pops an idle worker, or starts one while under Max; nil when all are
// busy or the pool is closed.
func (p *Pool[J]) get() *worker[J] {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		wk := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return wk
	}
	if p.closed || p.n >= p.Max {
		p.mu.Unlock()
		return nil
	}
	p.n++
	p.mu.Unlock()
	wk := &worker[J]{in: make(chan job[J], 1), out: make(chan any)}
	go wk.loop(p)
	return wk
}

func (wk *worker[J]) loop(p *Pool[J]) {
	for jb := range wk.in {
		v := p.Do(jb.j)
		if jb.wait {
			wk.out <- v
		}
		if !p.put(wk) {
			return
		}
	}
}

// put returns wk to the idle list (false: the pool is closed, wk exits) and
// lets go of the longest-idle worker if it has waited past MaxIdle.
func (p *Pool[J]) put(wk *worker[J]) bool {
	now := time.Now()
	wk.lastUsed = now
	var stale *worker[J]
	p.mu.Lock()
	if p.closed {
		p.n--
		p.mu.Unlock()
		return false
	}
	if len(p.idle) > 0 && now.Sub(p.idle[0].lastUsed) > p.MaxIdle {
		stale = p.idle[0]
		copy(p.idle, p.idle[1:])
		p.idle[len(p.idle)-1] = nil
		p.idle = p.idle[:len(p.idle)-1]
		p.n--
	}
	p.idle = append(p.idle, wk)
	p.mu.Unlock()
	if stale != nil {
		close(stale.in)
	}
	return true
}

// Close lets every idle worker go; busy ones exit when their job ends. Later
// jobs get false from Go and Run.
func (p *Pool[J]) Close() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.n -= len(idle)
	p.closed = true
	p.mu.Unlock()
	for _, wk := range idle {
		close(wk.in)
	}
}

// Workers reports the live workers and how many of them are idle.
func (p *Pool[J]) Workers() (live, idle int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n, len(p.idle)
}
