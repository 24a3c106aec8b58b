package proxy

import (
	"net/http"
	"time"

	"github.com/novashop/edge/proxy/internal/workpool"
)

// h2Workers runs bridged HTTP/2 and HTTP/3 streams on long-lived goroutines
// (proxy/internal/workpool: x/net and quic-go start a fresh goroutine per
// stream, whose small stack the edge's deep handler path grew every time).
// When every worker is busy the stream runs in x/net's own goroutine as
// before; the per-connection stream limits stay x/net's.
type h2Workers struct {
	pool workpool.Pool[h2Job]
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

func (p *h2Workers) init(max int, maxIdle time.Duration) {
	p.pool.Max, p.pool.MaxIdle, p.pool.Do = max, maxIdle, runH2Job
}

// run calls b.bridge(w, r) on a pooled worker, or in the calling goroutine
// when none is free. A panic in it (http.ErrAbortHandler resets the stream)
// is raised again in the caller, where x/net or quic-go recover it.
func (p *h2Workers) run(b h2Bridger, w http.ResponseWriter, r *http.Request) {
	v, ok := p.pool.Run(h2Job{b: b, w: w, r: r})
	if !ok {
		b.bridge(w, r)
		return
	}
	if v != nil {
		panic(v)
	}
}

// close lets every idle worker go; busy ones exit when their stream ends.
func (p *h2Workers) close() { p.pool.Close() }

// runH2Job is the pool's Do: the bridge, with a panic returned to run.
func runH2Job(j h2Job) (v any) {
	defer func() { v = recover() }()
	j.b.bridge(j.w, j.r)
	return nil
}
