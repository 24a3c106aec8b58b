//go:build linux

package evloop

import (
	"sync"

	"github.com/valyala/fasthttp"
)

// job is one handed-off request.
type job struct {
	c   *conn
	ctx *fasthttp.RequestCtx
	h   fasthttp.RequestHandler
}

// workers keeps the hand-off goroutines alive between requests. A fresh
// goroutine per request starts on a small stack and grows it through the edge's
// handler and fasthttp's client every time: stack copying was 15 % of the
// event-loop edge's CPU on uncached requests. A parked worker keeps its grown
// stack; handing it a job is one channel send to a goroutine known to be waiting.
type workers struct {
	s    *Server
	mu   sync.Mutex
	idle []*worker
}

type worker struct {
	jobs chan job
}

// maxIdleWorkers bounds the parked goroutines (their stacks are the cost).
const maxIdleWorkers = 512

func (w *workers) run(j job) {
	w.mu.Lock()
	var wk *worker
	if n := len(w.idle); n > 0 {
		wk, w.idle = w.idle[n-1], w.idle[:n-1]
	}
	w.mu.Unlock()
	if wk == nil {
		wk = &worker{jobs: make(chan job, 1)}
		go w.loop(wk)
	}
	wk.jobs <- j
}

func (w *workers) loop(wk *worker) {
	for {
		j, ok := park(wk)
		if !ok {
			return
		}
		w.s.serveHandedOff(j.c, j.ctx, j.h)
		w.mu.Lock()
		if len(w.idle) >= maxIdleWorkers || w.s.closed.Load() {
			w.mu.Unlock()
			return
		}
		w.idle = append(w.idle, wk)
		w.mu.Unlock()
	}
}

// stop ends the parked workers.
func (w *workers) stop() {
	w.mu.Lock()
	idle := w.idle
	w.idle = nil
	w.mu.Unlock()
	for _, wk := range idle {
		close(wk.jobs)
	}
}

// parkPad is the stack a parked worker keeps in use. The garbage collector
// halves a goroutine's stack when less than a quarter of it is in use; a worker
// parked in a shallow frame would have its stack shrunk at every GC and grown
// again (copied, frame by frame) by the next request through fasthttp's client.
// Parking below a 12 KiB frame keeps stacks up to 48 KiB as they are.
const parkPad = 12 << 10

// padIndex is never negative; the compiler cannot know, so pad stays in the frame.
//
//lint:ignore U1000 written, never read: the write is what keeps pad in the frame.
var padIndex, padSink = 0, byte(0)

//go:noinline
func park(wk *worker) (job, bool) {
	var pad [parkPad]byte
	j, ok := <-wk.jobs
	if padIndex < 0 {
		padSink = pad[-padIndex]
	}
	return j, ok
}
