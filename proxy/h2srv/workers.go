package h2srv

import (
	"sync"
	"time"
)

// workers runs handlers on long-lived goroutines whose stacks stay grown
// (the edge's handler path is deep: a fresh goroutine per stream grew its
// stack every time; see proxy/h2workers.go, the same idea for the x/net
// bridge). Bounded: with every worker busy a job runs in a goroutine of its
// own, so the pool never queues (the per-connection limits bound the work).
type workers struct {
	mu     sync.Mutex
	idle   []*worker // LIFO: the warmest first
	n, max int
	closed bool
}

type worker struct {
	in       chan *stream
	lastUsed time.Time
}

// workerMaxIdle is how long a worker may wait unused before it is let go
// (checked when another goes idle: no timer per worker).
const workerMaxIdle = 10 * time.Second

func (p *workers) run(st *stream) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		wk := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		wk.in <- st
		return
	}
	if p.closed || p.n >= p.max {
		p.mu.Unlock()
		go st.run()
		return
	}
	p.n++
	p.mu.Unlock()
	wk := &worker{in: make(chan *stream, 1)}
	wk.in <- st
	go wk.loop(p)
}

func (wk *worker) loop(p *workers) {
	for st := range wk.in {
		st.run()
		if !p.put(wk) {
			return
		}
	}
}

func (p *workers) put(wk *worker) bool {
	now := time.Now()
	wk.lastUsed = now
	var stale *worker
	p.mu.Lock()
	if p.closed {
		p.n--
		p.mu.Unlock()
		return false
	}
	if len(p.idle) > 0 && now.Sub(p.idle[0].lastUsed) > workerMaxIdle {
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

func (p *workers) close() {
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
