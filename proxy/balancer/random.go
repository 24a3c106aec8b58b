package balancer

import (
	"github.com/novashop/edge/proxy/upstream"
	"github.com/valyala/fasthttp"
	"net"
)

// Random picks a host at random in proportion to its effective weight, by a binary
// search over the Set's cumulative weights.
type Random struct {
	rnd Rand
}

// Name implements Policy.
func (*Random) Name() string { return RandomName }

// Pick implements Policy.
func (r *Random) Pick(set *upstream.Set, _ *fasthttp.Request, _ net.IP) *upstream.Upstream {
	if len(set.Hosts) == 0 || set.Total <= 0 {
		return nil
	}
	return set.Hosts[searchCum(set.Cum, r.rnd.Intn(set.Total))]
}

// searchCum returns the first index whose cumulative weight exceeds x.
func searchCum(cum []int, x int) int {
	lo, hi := 0, len(cum)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if cum[mid] > x {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}
