package balancer

import (
	"net"
	"sync"
	"sync/atomic"

	"github.com/novashop/edge/proxy/upstream"
	"github.com/valyala/fasthttp"
)

// maxSchedule bounds the smooth weighted round-robin schedule; larger weight sums are
// scaled down proportionally (every host keeps at least one slot).
const maxSchedule = 4096

// Weighted is smooth weighted round-robin (nginx's algorithm): over every cycle each
// host gets its weight's share, interleaved rather than in bursts (weights 5,1,1 give
// a a b a c a a). The schedule is computed once per upstream.Set, so a pick is one
// atomic load and one atomic add; slow-start weights apply through the Set.
type Weighted struct {
	sched atomic.Pointer[schedule]
	next  atomic.Uint64
	mu    sync.Mutex // one builder at a time when the Set changes
}

type schedule struct {
	set   *upstream.Set
	order []uint16
}

// Name implements Policy.
func (*Weighted) Name() string { return WeightedName }

// Pick implements Policy.
func (w *Weighted) Pick(set *upstream.Set, _ *fasthttp.Request, _ net.IP) *upstream.Upstream {
	if len(set.Hosts) == 0 {
		return nil
	}
	s := w.sched.Load()
	if s == nil || s.set != set {
		s = w.rebuild(set)
	}
	return set.Hosts[s.order[(w.next.Add(1)-1)%uint64(len(s.order))]]
}

// rebuild computes the schedule for a new Set once; concurrent picks wait for the
// one builder instead of each computing its own.
func (w *Weighted) rebuild(set *upstream.Set) *schedule {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s := w.sched.Load(); s != nil && s.set == set {
		return s
	}
	s := buildSchedule(set)
	w.sched.Store(s)
	return s
}

func buildSchedule(set *upstream.Set) *schedule {
	weights := make([]int, len(set.Weights))
	g := 0
	for i, wt := range set.Weights {
		weights[i] = max(wt, 1)
		g = gcd(g, weights[i])
	}
	total := 0
	for i := range weights {
		weights[i] /= g
		total += weights[i]
	}
	if total > maxSchedule {
		scaled := 0
		for i := range weights {
			weights[i] = max(weights[i]*maxSchedule/total, 1)
			scaled += weights[i]
		}
		total = scaled
	}
	current := make([]int, len(weights))
	order := make([]uint16, total)
	for k := range order {
		best := 0
		for i, wt := range weights {
			current[i] += wt
			if current[i] > current[best] {
				best = i
			}
		}
		current[best] -= total
		order[k] = uint16(best)
	}
	return &schedule{set: set, order: order}
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
