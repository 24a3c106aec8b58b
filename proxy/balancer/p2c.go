package balancer

import (
	"github.com/novashop/edge/proxy/upstream"
	"github.com/valyala/fasthttp"
	"net"
)

// P2CEWMA is power of two choices on peak-EWMA latency: it draws two distinct hosts
// uniformly at random and sends the request to the cheaper one, where cost is
// EWMA latency × (in flight + 1) / effective weight. Comparing only two hosts keeps
// the herd off a single "best" host, and the peak EWMA reacts at once to a host that
// turns slow. An idle host that loses a comparison has its EWMA aged a little
// (Upstream.Age), so a host that recovered is tried again instead of starving.
type P2CEWMA struct {
	rnd Rand
}

// Name implements Policy.
func (*P2CEWMA) Name() string { return P2CEWMAName }

// Pick implements Policy.
func (p *P2CEWMA) Pick(set *upstream.Set, _ *fasthttp.Request, _ net.IP) *upstream.Upstream {
	n := len(set.Hosts)
	switch n {
	case 0:
		return nil
	case 1:
		return set.Hosts[0]
	}
	// Unbiased pair of distinct indexes: i uniform over n, j uniform over the other n-1.
	i := p.rnd.Intn(n)
	j := p.rnd.Intn(n - 1)
	if j >= i {
		j++
	}
	win, lose := set.Hosts[i], set.Hosts[j]
	if cost(set, j) < cost(set, i) {
		win, lose = lose, win
	}
	if lose.InFlight() == 0 {
		lose.Age() // see Upstream.Age: an idle loser gets no samples otherwise
	}
	return win
}

func cost(set *upstream.Set, i int) float64 {
	u := set.Hosts[i]
	// A host without samples yet costs its queue only, so it gets tried promptly.
	lat := float64(max(u.EWMA(), 1))
	return lat * float64(u.InFlight()+1) / float64(max(set.Weights[i], 1))
}
