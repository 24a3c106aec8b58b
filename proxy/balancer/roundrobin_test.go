package balancer

import "testing"

func TestRoundRobin(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
		picks   int
		want    []string
	}{
		{"three hosts cycle", []int{1, 1, 1}, 7, []string{"h0", "h1", "h2", "h0", "h1", "h2", "h0"}},
		{"weights ignored", []int{5, 1}, 4, []string{"h0", "h1", "h0", "h1"}},
		{"one host", []int{1}, 3, []string{"h0", "h0", "h0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := poolOf(t, tt.weights...).Available()
			p := &RoundRobin{}
			for i := range tt.picks {
				if got := p.Pick(set, nil, nil).Name; got != tt.want[i] {
					t.Fatalf("pick %d = %s, want %s", i, got, tt.want[i])
				}
			}
		})
	}
}

// Property: over many picks each host gets exactly its share (round-robin is exact
// to within one request).
func TestRoundRobinDistribution(t *testing.T) {
	set := poolOf(t, 1, 1, 1, 1, 1).Available()
	c := counts(&RoundRobin{}, set, 10001)
	for name, n := range c {
		if n < 2000 || n > 2001 {
			t.Errorf("%s got %d of 10001", name, n)
		}
	}
}

func TestRoundRobinSkipsDownHost(t *testing.T) {
	pool := poolOf(t, 1, 1, 1)
	pool.SetHealthy(pool.Get("h1"), false, 0)
	c := counts(&RoundRobin{}, pool.Available(), 100)
	if c["h1"] != 0 || c["h0"] != 50 || c["h2"] != 50 {
		t.Fatalf("counts = %v", c)
	}
}

func BenchmarkRoundRobin(b *testing.B) { benchPolicy(b, RoundRobinName) }
