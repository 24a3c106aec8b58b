package balancer

import (
	"fmt"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/novashop/edge/proxy/upstream"
	"github.com/valyala/fasthttp"
)

// seeded is a deterministic Rand for tests (not safe for concurrent use).
type seeded struct{ r *rand.Rand }

func newSeeded(seed uint64) *seeded {
	return &seeded{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (s *seeded) Intn(n int) int { return s.r.IntN(n) }

// scripted returns the given numbers in turn (mod n), to pin exact choices.
type scripted struct {
	vals []int
	i    int
}

func (s *scripted) Intn(n int) int {
	v := s.vals[s.i%len(s.vals)] % n
	s.i++
	return v
}

// poolOf builds a pool of hosts named h0, h1, … with the given weights.
func poolOf(t testing.TB, weights ...int) *upstream.Pool {
	t.Helper()
	hosts := make([]*upstream.Upstream, len(weights))
	for i, w := range weights {
		u, err := upstream.New(fmt.Sprintf("h%d", i), fmt.Sprintf("http://127.0.0.1:%d", 10000+i), w, upstream.Options{})
		if err != nil {
			t.Fatal(err)
		}
		hosts[i] = u
	}
	p, err := upstream.NewPool(hosts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// counts picks n times and returns picks per host name.
func counts(p Policy, set *upstream.Set, n int) map[string]int {
	c := map[string]int{}
	for range n {
		c[p.Pick(set, nil, nil).Name]++
	}
	return c
}

// within reports whether got is within tol (a fraction) of want.
func within(got, want int, tol float64) bool {
	d := float64(got - want)
	return d <= tol*float64(want) && -d <= tol*float64(want)
}

// call is what Pick reads of a request: the request and the client IP.
type call struct {
	req *fasthttp.Request
	ip  net.IP
}

func ctxFrom(ip string) *call {
	return &call{req: &fasthttp.Request{}, ip: net.ParseIP(ip)}
}

// load marks n requests in flight on u.
func load(u *upstream.Upstream, n int) {
	for range n {
		u.Begin()
	}
}

// TestEmptySetGivesNil checks every policy's nil answer on an empty Set.
func TestEmptySetGivesNil(t *testing.T) {
	empty := &upstream.Set{}
	for _, name := range Names {
		p, err := New(name, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Pick(empty, nil, net.ParseIP("10.0.0.1")); got != nil {
			t.Errorf("%s: Pick(empty) = %v, want nil", name, got.Name)
		}
		if p.Name() != name {
			t.Errorf("Name() = %q, want %q", p.Name(), name)
		}
	}
	if _, err := New("fastest", Options{}); err == nil {
		t.Error("New(fastest) succeeded")
	}
}

// TestPickAllocatesNothing pins the zero-allocation pick for every policy once its
// per-Set structures exist.
func TestPickAllocatesNothing(t *testing.T) {
	pool := poolOf(t, 3, 2, 1, 1)
	set := pool.Available()
	ctx := ctxFrom("10.1.2.3")
	ctx.req.Header.Set("X-Shard", "abc")
	for _, name := range Names {
		p, _ := New(name, Options{HashKey: HashKey{Kind: HashHeader, Name: "X-Shard"}})
		p.Pick(set, ctx.req, ctx.ip) // builds per-Set state
		allocs := testing.AllocsPerRun(1000, func() {
			if p.Pick(set, ctx.req, ctx.ip) == nil {
				t.Fatal("nil pick")
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per pick", name, allocs)
		}
	}
}

func TestSingleHost(t *testing.T) {
	set := poolOf(t, 1).Available()
	for _, name := range Names {
		p, _ := New(name, Options{})
		for range 10 {
			if got := p.Pick(set, nil, net.ParseIP("10.0.0.9")); got == nil || got.Name != "h0" {
				t.Fatalf("%s: single host pick = %v", name, got)
			}
		}
	}
}

func benchPolicy(b *testing.B, name string) {
	pool := poolOf(b, 1, 1, 1, 1, 1, 1, 1, 1)
	set := pool.Available()
	p, _ := New(name, Options{})
	ctx := ctxFrom("10.9.8.7")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_ = p.Pick(set, ctx.req, ctx.ip)
	}
}
