package balancer

import "testing"

func TestRandomScripted(t *testing.T) {
	tests := []struct {
		weights []int
		draw    int
		want    string
	}{
		{[]int{1, 1, 1}, 0, "h0"},
		{[]int{1, 1, 1}, 2, "h2"},
		{[]int{3, 1}, 2, "h0"},
		{[]int{3, 1}, 3, "h1"},
		{[]int{1, 5, 1}, 5, "h1"},
		{[]int{1, 5, 1}, 6, "h2"},
	}
	for _, tt := range tests {
		set := poolOf(t, tt.weights...).Available()
		p := &Random{rnd: &scripted{vals: []int{tt.draw}}}
		if got := p.Pick(set, nil, nil).Name; got != tt.want {
			t.Errorf("weights %v draw %d: got %s, want %s", tt.weights, tt.draw, got, tt.want)
		}
	}
}

// Property: shares follow weights within 5% over 40000 picks.
func TestRandomDistribution(t *testing.T) {
	set := poolOf(t, 1, 2, 5).Available()
	c := counts(&Random{rnd: newSeeded(9)}, set, 40000)
	want := map[string]int{"h0": 5000, "h1": 10000, "h2": 25000}
	for name, w := range want {
		if !within(c[name], w, 0.05) {
			t.Errorf("%s got %d, want %d ±5%%", name, c[name], w)
		}
	}
}

func BenchmarkRandom(b *testing.B) { benchPolicy(b, RandomName) }
