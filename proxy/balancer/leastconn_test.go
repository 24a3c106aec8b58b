package balancer

import "testing"

func TestLeastConn(t *testing.T) {
	tests := []struct {
		name     string
		weights  []int
		inFlight []int
		want     string
	}{
		{"fewest wins", []int{1, 1, 1}, []int{5, 2, 7}, "h1"},
		{"idle host wins", []int{1, 1, 1}, []int{1, 1, 0}, "h2"},
		{"weight scales load", []int{4, 1}, []int{4, 2}, "h0"},
		{"weight scales load other way", []int{1, 4}, []int{1, 8}, "h0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := poolOf(t, tt.weights...)
			for i, n := range tt.inFlight {
				load(pool.All()[i], n)
			}
			p := &LeastConn{rnd: newSeeded(1)}
			if got := p.Pick(pool.Available(), nil, nil).Name; got != tt.want {
				t.Fatalf("picked %s, want %s", got, tt.want)
			}
		})
	}
}

// Property: ties are shared uniformly (±10% over 9000 picks across three idle hosts).
func TestLeastConnTiesShared(t *testing.T) {
	set := poolOf(t, 1, 1, 1).Available()
	c := counts(&LeastConn{rnd: newSeeded(7)}, set, 9000)
	for _, name := range []string{"h0", "h1", "h2"} {
		if !within(c[name], 3000, 0.1) {
			t.Errorf("%s got %d, want 3000 ±10%%", name, c[name])
		}
	}
}

// Property: least-conn follows in-flight counts: with requests held open, the picks
// keep the hosts' in-flight counts level.
func TestLeastConnFollowsInFlight(t *testing.T) {
	pool := poolOf(t, 1, 1, 1)
	load(pool.Get("h0"), 10)
	p := &LeastConn{rnd: newSeeded(3)}
	for range 20 {
		p.Pick(pool.Available(), nil, nil).Begin()
	}
	for _, name := range []string{"h0", "h1", "h2"} {
		if got := pool.Get(name).InFlight(); got != 10 {
			t.Errorf("%s in flight = %d, want 10", name, got)
		}
	}
}

func BenchmarkLeastConn(b *testing.B) { benchPolicy(b, LeastConnName) }
