package proxy

import (
	"net/http"
	"sync"
	"time"
)

// h2Workers runs bridged HTTP/2 and HTTP/3 streams on long-lived goroutines.
//
// x/net (and quic-go) start a fresh goroutine per stream, with a small stack;
// the edge's handler path is deep enough that every stream grew it
// (runtime.copystack was 14% of the edge's CPU under h2load). A worker's
// stack stays grown between streams, so handing the stream over costs two
// goroutine switches instead of a stack copy. The pool is bounded: when every
// worker is busy (slow origins, streamed answers) the stream runs in its own
// goroutine as before, so the pool never queues or limits streams; the
// per-connection stream limits stay x/net's.
type h2Workers struct {
	mu   sync.Mutex
	idle []*h2Worker // LIFO: the most recently used (warm) worker first
	n    int         // live workers
	max  int
	// maxIdle is how long a worker may wait unused before it is let go
	// (checked when another worker goes idle: no timer per worker).
	maxIdle time.Duration
	closed  bool
}

type h2Worker struct {
	in       chan h2Job
	out      chan any // the job's panic value, or nil
	lastUsed time.Time
}

type h2Job struct {
	b h2Bridger
	w http.ResponseWriter
	r *http.Request
}

// h2Bridger is what a worker runs: *h2Front's bridge (an interface holding a
// pointer, so handing a job over allocates nothing, unlike a method value).
type h2Bridger interface {
	bridge(http.ResponseWriter, *http.Request)
}

const (
	h2WorkersMax     = 256
	h2WorkersMaxIdle = 10 * time.Second
)

// run calls b.bridge(w, r) on a pooled worker, or in the calling goroutine
// when none is free. A panic in it (http.ErrAbortHandler resets the stream)
// is raised again in the caller, where x/net or quic-go recover it.
func (p *h2Workers) run(b h2Bridger, w http.ResponseWriter, r *http.Request) {
	wk := p.get()
	if wk == nil {
		b.bridge(w, r)
		return
	}
	wk.in <- h2Job{b: b, w: w, r: r}
	if v := <-wk.out; v != nil {
		panic(v)
	}
}

// get pops an idle worker, or starts one while under max; nil when all are busy.
func (p *h2Workers) get() *h2Worker {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		wk := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return wk
	}
	if p.closed || p.n >= p.max {
		p.mu.Unlock()
		return nil
	}
	p.n++
	p.mu.Unlock()
	wk := &h2Worker{in: make(chan h2Job), out: make(chan any)}
	go wk.loop(p)
	return wk
}

// put returns wk to the idle list (false: the pool is closed, wk exits) and
// lets go of the longest-idle worker if it has waited past maxIdle.
func (p *h2Workers) put(wk *h2Worker) bool {
	now := time.Now()
	wk.lastUsed = now
	var stale *h2Worker
	p.mu.Lock()
	if p.closed {
		p.n--
		p.mu.Unlock()
		return false
	}
	if len(p.idle) > 0 && now.Sub(p.idle[0].lastUsed) > p.maxIdle {
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

// close lets every idle worker go; busy ones exit when their stream ends.
func (p *h2Workers) close() {
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

func (wk *h2Worker) loop(p *h2Workers) {
	for j := range wk.in {
		wk.out <- wk.do(j)
		if !p.put(wk) {
			return
		}
	}
}

func (wk *h2Worker) do(j h2Job) (v any) {
	defer func() { v = recover() }()
	j.b.bridge(j.w, j.r)
	return nil
}
