package balancer

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	"github.com/novashop/edge/proxy/upstream"
	"github.com/valyala/fasthttp"
)

// HashKeyKind says which part of the request the hash policy hashes.
type HashKeyKind uint8

const (
	// HashClientIP hashes the client's IP address (the zero value).
	HashClientIP HashKeyKind = iota
	// HashHeader hashes the value of a request header.
	HashHeader
	// HashCookie hashes the value of a request cookie.
	HashCookie
	// HashPath hashes the request path.
	HashPath
)

// HashKey is the configured hash key: a kind plus, for header and cookie, a name.
type HashKey struct {
	Kind HashKeyKind
	Name string
}

// String returns the configuration spelling ParseHashKey reads.
func (k HashKey) String() string {
	switch k.Kind {
	case HashHeader:
		return "header:" + k.Name
	case HashCookie:
		return "cookie:" + k.Name
	case HashPath:
		return "path"
	}
	return "ip"
}

// ParseHashKey reads "ip" (also ""), "path", "header:NAME" or "cookie:NAME".
func ParseHashKey(s string) (HashKey, error) {
	switch s {
	case "", "ip", "client-ip":
		return HashKey{Kind: HashClientIP}, nil
	case "path":
		return HashKey{Kind: HashPath}, nil
	}
	kind, name, ok := strings.Cut(s, ":")
	if ok && name != "" {
		switch kind {
		case "header":
			return HashKey{Kind: HashHeader, Name: name}, nil
		case "cookie":
			return HashKey{Kind: HashCookie, Name: name}, nil
		}
	}
	return HashKey{}, fmt.Errorf("%w %q (want ip, path, header:NAME or cookie:NAME)", ErrBadHashKey, s)
}

// vnodesPerWeight is how many ring points a host gets per unit of weight; about a
// hundred points keep each host's share within a few percent of its weight.
const vnodesPerWeight = 100

// maxVnodes bounds the points of one host whatever its weight.
const maxVnodes = 2000

// loadFactor is the bound of consistent hashing with bounded loads (Mirrokni et al.):
// no host takes more than 1.25× the average in-flight requests, so one hot key cannot
// swamp its host; extra requests move to the next host on the ring.
const loadFactor = 1.25

// Hash is consistent hashing with bounded loads on a configurable request key. The
// same key keeps reaching the same host while the Set is unchanged and that host is
// not overloaded; when a host leaves, only its keys move. Requests without the key
// (no such header or cookie) fall back to a uniform random host.
type Hash struct {
	key  HashKey
	rnd  Rand
	ring atomic.Pointer[ring]
	mu   sync.Mutex // one builder at a time when the Set changes
}

type ring struct {
	set    *upstream.Set
	points []uint64
	owners []uint16
}

// Name implements Policy.
func (*Hash) Name() string { return HashName }

// Key returns the configured hash key.
func (h *Hash) Key() HashKey { return h.key }

// Pick implements Policy.
func (h *Hash) Pick(set *upstream.Set, req *fasthttp.Request, clientIP net.IP) *upstream.Upstream {
	n := len(set.Hosts)
	if n == 0 {
		return nil
	}
	key := h.keyOf(req, clientIP)
	if len(key) == 0 {
		return set.Hosts[h.rnd.Intn(n)]
	}
	return h.PickKey(set, xxhash.Sum64(key))
}

// PickKey picks for an already hashed key; exported for tests and benchmarks.
func (h *Hash) PickKey(set *upstream.Set, sum uint64) *upstream.Upstream {
	n := len(set.Hosts)
	if n == 0 {
		return nil
	}
	r := h.ring.Load()
	if r == nil || r.set != set {
		r = h.rebuild(set)
	}
	var total int64
	for _, u := range set.Hosts {
		total += u.InFlight()
	}
	// Capacity per host: ceil(c × (total+1) / n); the +1 counts this request.
	limit := int64(loadFactor*float64(total+1)/float64(n)) + 1
	start := searchRing(r.points, sum)
	for k := range r.points {
		idx := start + k
		if idx >= len(r.points) {
			idx -= len(r.points)
		}
		u := set.Hosts[r.owners[idx]]
		if u.InFlight() < limit {
			return u
		}
	}
	return set.Hosts[r.owners[start]]
}

func (h *Hash) keyOf(req *fasthttp.Request, clientIP net.IP) []byte {
	if h.key.Kind == HashClientIP {
		return clientIP
	}
	if req == nil {
		return nil
	}
	switch h.key.Kind {
	case HashHeader:
		return req.Header.Peek(h.key.Name)
	case HashCookie:
		return req.Header.Cookie(h.key.Name)
	}
	return req.URI().Path()
}

// rebuild makes the ring for a new Set, once: concurrent picks wait for the one
// builder instead of all sorting their own ring. When only weights changed (slow
// start) the points are reused, since they follow the configured weights.
func (h *Hash) rebuild(set *upstream.Set) *ring {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.ring.Load()
	switch {
	case r != nil && r.set == set:
		return r
	case r != nil && slices.Equal(r.set.Hosts, set.Hosts):
		r = &ring{set: set, points: r.points, owners: r.owners}
	default:
		r = buildRing(set)
	}
	h.ring.Store(r)
	return r
}

func buildRing(set *upstream.Set) *ring {
	r := &ring{set: set}
	type point struct {
		sum   uint64
		owner uint16
	}
	var pts []point
	for i, u := range set.Hosts {
		// Points follow the configured weight, not the slow-start one, so a host's keys
		// stay put while it ramps up; bounded loads keep it from being swamped.
		nv := min(max(u.Weight, 1)*vnodesPerWeight, maxVnodes)
		for v := range nv {
			pts = append(pts, point{xxhash.Sum64String(u.Name + "#" + strconv.Itoa(v)), uint16(i)})
		}
	}
	slices.SortFunc(pts, func(a, b point) int {
		switch {
		case a.sum < b.sum:
			return -1
		case a.sum > b.sum:
			return 1
		}
		return int(a.owner) - int(b.owner)
	})
	r.points = make([]uint64, len(pts))
	r.owners = make([]uint16, len(pts))
	for i, p := range pts {
		r.points[i], r.owners[i] = p.sum, p.owner
	}
	return r
}

// searchRing returns the first point ≥ sum, wrapping to 0.
func searchRing(points []uint64, sum uint64) int {
	lo, hi := 0, len(points)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if points[mid] < sum {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == len(points) {
		return 0
	}
	return lo
}
