package balancer

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
)

func TestParseHashKey(t *testing.T) {
	tests := []struct {
		in      string
		want    HashKey
		wantErr bool
	}{
		{"", HashKey{Kind: HashClientIP}, false},
		{"ip", HashKey{Kind: HashClientIP}, false},
		{"path", HashKey{Kind: HashPath}, false},
		{"header:X-User", HashKey{Kind: HashHeader, Name: "X-User"}, false},
		{"cookie:sid", HashKey{Kind: HashCookie, Name: "sid"}, false},
		{"header:", HashKey{}, true},
		{"query:x", HashKey{}, true},
		{"cookies", HashKey{}, true},
	}
	for _, tt := range tests {
		got, err := ParseHashKey(tt.in)
		if tt.wantErr {
			if !errors.Is(err, ErrBadHashKey) {
				t.Errorf("ParseHashKey(%q) err = %v", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseHashKey(%q) = %+v, %v", tt.in, got, err)
		}
		if tt.in != "" {
			if back, _ := ParseHashKey(got.String()); back != got {
				t.Errorf("round trip of %q: %+v", tt.in, back)
			}
		}
	}
}

func FuzzParseHashKey(f *testing.F) {
	for _, s := range []string{"", "ip", "path", "header:X", "cookie:a", "header:", ":", "x:y:z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseHashKey(s)
		if err != nil {
			return
		}
		back, err := ParseHashKey(k.String())
		if err != nil || back != k {
			t.Fatalf("%q parsed to %+v, re-parsed to %+v, %v", s, k, back, err)
		}
	})
}

func TestHashKeySources(t *testing.T) {
	set := poolOf(t, 1, 1, 1, 1).Available()
	tests := []struct {
		key   HashKey
		setup func(*call, string)
	}{
		{HashKey{Kind: HashClientIP}, nil},
		{HashKey{Kind: HashHeader, Name: "X-Shard"}, func(c *call, v string) { c.req.Header.Set("X-Shard", v) }},
		{HashKey{Kind: HashCookie, Name: "sid"}, func(c *call, v string) { c.req.Header.SetCookie("sid", v) }},
		{HashKey{Kind: HashPath}, func(c *call, v string) { c.req.SetRequestURI("/p/" + v) }},
	}
	for _, tt := range tests {
		t.Run(tt.key.String(), func(t *testing.T) {
			p := &Hash{key: tt.key, rnd: newSeeded(1)}
			seen := map[string]bool{}
			for i := range 40 {
				v := fmt.Sprintf("10.0.%d.%d", i/7, i)
				ctx := ctxFrom(v)
				if tt.setup != nil {
					tt.setup(ctx, v)
				}
				first := p.Pick(set, ctx.req, ctx.ip).Name
				for range 5 {
					if got := p.Pick(set, ctx.req, ctx.ip).Name; got != first {
						t.Fatalf("key %s moved from %s to %s", v, first, got)
					}
				}
				seen[first] = true
			}
			if len(seen) < 3 {
				t.Fatalf("40 keys reached only %v", seen)
			}
		})
	}
}

// Property: with equal weights, 20000 keys spread within 20% of the even share, and
// removing one host moves only that host's keys.
func TestHashConsistency(t *testing.T) {
	pool := poolOf(t, 1, 1, 1, 1)
	p := &Hash{rnd: newSeeded(1)}
	before := map[uint64]string{}
	c := map[string]int{}
	for k := range 20000 {
		sum := xxhash.Sum64String(fmt.Sprint("key", k))
		name := p.PickKey(pool.Available(), sum).Name
		before[sum] = name
		c[name]++
	}
	for name, n := range c {
		if !within(n, 5000, 0.2) {
			t.Errorf("%s holds %d keys, want 5000 ±20%%", name, n)
		}
	}
	pool.SetHealthy(pool.Get("h2"), false, 0)
	moved := 0
	for sum, was := range before {
		now := p.PickKey(pool.Available(), sum).Name
		if now != was {
			moved++
			if was != "h2" {
				t.Fatalf("key on %s moved to %s when h2 left", was, now)
			}
		}
	}
	if moved != c["h2"] {
		t.Fatalf("moved %d keys, h2 held %d", moved, c["h2"])
	}
}

// Property: bounded loads: a hot key's host stops taking requests above 1.25× the
// average in flight; the overflow goes elsewhere.
func TestHashBoundedLoads(t *testing.T) {
	pool := poolOf(t, 1, 1, 1, 1)
	p := &Hash{rnd: newSeeded(1)}
	sum := xxhash.Sum64String("hot")
	home := p.PickKey(pool.Available(), sum)
	for range 100 {
		p.PickKey(pool.Available(), sum).Begin()
	}
	var total int64
	for _, u := range pool.All() {
		total += u.InFlight()
	}
	limit := int64(loadFactor*float64(total)/4) + 1
	if home.InFlight() > limit {
		t.Fatalf("home host holds %d of %d in flight (limit %d)", home.InFlight(), total, limit)
	}
	for _, u := range pool.All() {
		if u.InFlight() > limit {
			t.Fatalf("%s holds %d > %d", u.Name, u.InFlight(), limit)
		}
	}
}

func TestHashMissingKeyFallsBack(t *testing.T) {
	set := poolOf(t, 1, 1).Available()
	p := &Hash{key: HashKey{Kind: HashHeader, Name: "X-None"}, rnd: &scripted{vals: []int{0, 1}}}
	ctx := ctxFrom("10.0.0.1")
	if a, b := p.Pick(set, ctx.req, ctx.ip).Name, p.Pick(set, ctx.req, ctx.ip).Name; a == b {
		t.Fatalf("keyless requests not spread: %s, %s", a, b)
	}
}

func BenchmarkHash(b *testing.B) { benchPolicy(b, HashName) }

// TestHashRingSurvivesSlowStart: a weight-only change (slow start ramping) makes a
// new Set but keeps the ring points, so keys do not move while a host ramps up.
func TestHashRingSurvivesSlowStart(t *testing.T) {
	pool := poolOf(t, 1, 1, 1)
	now := time.Unix(1000, 0)
	pool.SetClock(func() time.Time { return now })
	pool.SetHealthy(pool.Get("h1"), false, 0)
	pool.SetHealthy(pool.Get("h1"), true, 10*time.Second)
	p := &Hash{rnd: newSeeded(1)}
	before := map[uint64]string{}
	for k := range 300 {
		sum := xxhash.Sum64String(fmt.Sprint("k", k))
		before[sum] = p.PickKey(pool.Available(), sum).Name
	}
	points := &p.ring.Load().points[0]
	now = now.Add(5 * time.Second)
	pool.Refresh()
	for sum, was := range before {
		if got := p.PickKey(pool.Available(), sum).Name; got != was {
			t.Fatalf("key moved from %s to %s during slow start", was, got)
		}
	}
	if r := p.ring.Load(); r.set != pool.Available() || &r.points[0] != points {
		t.Fatal("ring rebuilt for a weight-only change")
	}
}
