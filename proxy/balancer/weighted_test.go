package balancer

import (
	"strings"
	"testing"
)

func TestWeightedSmoothOrder(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
		want    string // one full cycle
	}{
		// nginx's documented example: weights 5,1,1 give a a b a c a a.
		{"nginx example", []int{5, 1, 1}, "0010200"},
		{"equal", []int{2, 2}, "01"},
		{"gcd reduced", []int{4, 2}, "010"},
		{"three to one", []int{3, 1}, "0010"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := poolOf(t, tt.weights...).Available()
			p := &Weighted{}
			var b strings.Builder
			for range len(tt.want) * 2 {
				b.WriteByte(p.Pick(set, nil, nil).Name[1])
			}
			if got := b.String(); got != tt.want+tt.want {
				t.Fatalf("order = %s, want %s twice", got, tt.want)
			}
		})
	}
}

// Property: weights are honoured within 1% over many cycles.
func TestWeightedHonoursWeights(t *testing.T) {
	set := poolOf(t, 10, 5, 3, 1, 1).Available()
	c := counts(&Weighted{}, set, 20000)
	want := map[string]int{"h0": 10000, "h1": 5000, "h2": 3000, "h3": 1000, "h4": 1000}
	for name, w := range want {
		if !within(c[name], w, 0.01) {
			t.Errorf("%s got %d, want %d ±1%%", name, c[name], w)
		}
	}
}

func TestWeightedLargeWeightsScaled(t *testing.T) {
	set := poolOf(t, 100000, 99999, 1).Available()
	s := buildSchedule(set)
	if len(s.order) > maxSchedule+3 {
		t.Fatalf("schedule length %d", len(s.order))
	}
	seen := map[uint16]bool{}
	for _, o := range s.order {
		seen[o] = true
	}
	if len(seen) != 3 {
		t.Fatalf("a host lost its slot: %v", seen)
	}
}

func TestWeightedFollowsSetChange(t *testing.T) {
	pool := poolOf(t, 3, 1)
	p := &Weighted{}
	p.Pick(pool.Available(), nil, nil)
	pool.SetHealthy(pool.Get("h0"), false, 0)
	for range 5 {
		if got := p.Pick(pool.Available(), nil, nil).Name; got != "h1" {
			t.Fatalf("picked %s after h0 went down", got)
		}
	}
}

func BenchmarkWeighted(b *testing.B) { benchPolicy(b, WeightedName) }
