package balancer

import (
	"github.com/novashop/edge/proxy/upstream"
	"github.com/valyala/fasthttp"
	"net"
)

// LeastConn sends each request to the host with the fewest requests in flight per unit
// of effective weight; ties are broken uniformly at random (reservoir sampling), so
// idle hosts share a burst instead of the first one taking it all.
type LeastConn struct {
	rnd Rand
}

// Name implements Policy.
func (*LeastConn) Name() string { return LeastConnName }

// Pick implements Policy.
func (l *LeastConn) Pick(set *upstream.Set, _ *fasthttp.Request, _ net.IP) *upstream.Upstream {
	var best *upstream.Upstream
	var bestLoad, bestWeight int64
	ties := 0
	for i, u := range set.Hosts {
		load, w := u.InFlight(), int64(set.Weights[i])
		switch {
		case best == nil || load*bestWeight < bestLoad*w:
			best, bestLoad, bestWeight, ties = u, load, w, 1
		case load*bestWeight == bestLoad*w:
			ties++
			if l.rnd.Intn(ties) == 0 {
				best, bestLoad, bestWeight = u, load, w
			}
		}
	}
	return best
}
