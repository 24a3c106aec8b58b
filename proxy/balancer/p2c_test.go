package balancer

import (
	"testing"
	"time"
)

func TestP2CPicksCheaper(t *testing.T) {
	tests := []struct {
		name     string
		ewma     []time.Duration
		inFlight []int
		script   []int // i then j before the distinct shift
		want     string
	}{
		{"lower latency", []time.Duration{50 * time.Millisecond, 5 * time.Millisecond, time.Second}, []int{0, 0, 0}, []int{0, 0}, "h1"},
		{"queue matters", []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, time.Second}, []int{9, 1, 0}, []int{0, 0}, "h1"},
		{"third host never seen in pair", []time.Duration{50 * time.Millisecond, 40 * time.Millisecond, time.Millisecond}, []int{0, 0, 0}, []int{1, 0}, "h1"},
		{"distinct shift", []time.Duration{50 * time.Millisecond, 40 * time.Millisecond, time.Millisecond}, []int{0, 0, 0}, []int{1, 1}, "h2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := poolOf(t, 1, 1, 1)
			now := time.Now()
			for i, u := range pool.All() {
				u.Begin()
				u.Done(tt.ewma[i], true, now)
				load(u, tt.inFlight[i])
			}
			p := &P2CEWMA{rnd: &scripted{vals: tt.script}}
			if got := p.Pick(pool.Available(), nil, nil).Name; got != tt.want {
				t.Fatalf("picked %s, want %s", got, tt.want)
			}
		})
	}
}

// Property: the pair is unbiased: with equal costs, every host is picked equally
// often (±5% over 30000 picks).
func TestP2CUnbiased(t *testing.T) {
	set := poolOf(t, 1, 1, 1).Available()
	c := counts(&P2CEWMA{rnd: newSeeded(11)}, set, 30000)
	for _, name := range []string{"h0", "h1", "h2"} {
		if !within(c[name], 10000, 0.05) {
			t.Errorf("%s got %d, want 10000 ±5%%", name, c[name])
		}
	}
}

// Property: p2c moves load away from a slow host: with one host 20× slower than the
// others it gets a pick only when its queue-adjusted cost is lower, which with at
// most 8 requests open keeps it under 5% of the picks.
func TestP2CAvoidsSlowHost(t *testing.T) {
	pool := poolOf(t, 1, 1, 1)
	now := time.Now()
	lat := map[string]time.Duration{"h0": 100 * time.Millisecond, "h1": 5 * time.Millisecond, "h2": 5 * time.Millisecond}
	for _, u := range pool.All() {
		u.Begin()
		u.Done(lat[u.Name], true, now)
	}
	p := &P2CEWMA{rnd: newSeeded(5)}
	c := map[string]int{}
	// Simulate 3000 requests with up to 8 held open at once, as a closed loop would.
	var open []string
	for range 3000 {
		u := p.Pick(pool.Available(), nil, nil)
		u.Begin()
		c[u.Name]++
		open = append(open, u.Name)
		if len(open) > 8 {
			done := pool.Get(open[0])
			done.Done(lat[open[0]], true, now)
			open = open[1:]
		}
	}
	if c["h0"] > 3000/20 {
		t.Fatalf("slow host got %d of 3000 picks (want ≤ 5%%): %v", c["h0"], c)
	}
}

func BenchmarkP2CEWMA(b *testing.B) { benchPolicy(b, P2CEWMAName) }
