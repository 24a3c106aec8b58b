package balancer

import (
	"net"
	"sync/atomic"

	"github.com/novashop/edge/proxy/upstream"
	"github.com/valyala/fasthttp"
)

// RoundRobin sends requests to each available host in turn, ignoring weights: one
// atomic add per pick.
type RoundRobin struct {
	next atomic.Uint64
}

// Name implements Policy.
func (*RoundRobin) Name() string { return RoundRobinName }

// Pick implements Policy.
func (r *RoundRobin) Pick(set *upstream.Set, _ *fasthttp.Request, _ net.IP) *upstream.Upstream {
	n := uint64(len(set.Hosts))
	if n == 0 {
		return nil
	}
	return set.Hosts[(r.next.Add(1)-1)%n]
}
