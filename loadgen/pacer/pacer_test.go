package pacer

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"
)

func mustNew(t *testing.T, segs ...Segment) *Profile {
	t.Helper()
	p, err := New(segs...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func near(a, b, tol time.Duration) bool {
	d := a - b
	return d <= tol && d >= -tol
}

func TestAt(t *testing.T) {
	ramp := mustNew(t, Ramp{From: 0, To: 100, Duration: 10 * time.Second})
	down := mustNew(t, Ramp{From: 100, To: 0, Duration: 10 * time.Second})
	seq := mustNew(t, Constant{Rate: 10, Duration: time.Second}, Constant{Rate: 0, Duration: time.Second}, Constant{Rate: 100, Duration: time.Second})
	sine := mustNew(t, Sine{Mean: 100, Amplitude: 50, Period: 4 * time.Second, Duration: 8 * time.Second})
	tests := []struct {
		name string
		p    *Profile
		n    uint64
		want time.Duration
	}{
		{"constant first hit after one interval", mustNew(t, Constant{Rate: 100, Duration: time.Second}), 0, 10 * time.Millisecond},
		{"constant hit 99", mustNew(t, Constant{Rate: 100, Duration: time.Second}), 99, time.Second},
		{"constant tail keeps the rate", mustNew(t, Constant{Rate: 100, Duration: time.Second}), 199, 2 * time.Second},
		// Hits(t) = 5t²: 500 hits at 10 s, 125 hits at 5 s.
		{"ramp up end", ramp, 499, 10 * time.Second},
		{"ramp up middle", ramp, 124, 5 * time.Second},
		{"ramp up past end holds 100/s", ramp, 599, 11 * time.Second},
		// Hits(t) = 100t − 5t²: 375 hits at 5 s.
		{"ramp down middle", down, 374, 5 * time.Second},
		{"sequence first stage", seq, 9, time.Second},
		{"sequence skips the zero stage", seq, 10, 2*time.Second + 10*time.Millisecond},
		{"sequence last", seq, 109, 3 * time.Second},
		// A whole period of a sine sends exactly Mean·Period hits.
		{"sine whole period", sine, 399, 4 * time.Second},
		{"sine two periods", sine, 799, 8 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.p.At(tt.n)
			if !ok {
				t.Fatalf("At(%d) not ok", tt.n)
			}
			if !near(got, tt.want, time.Microsecond) {
				t.Errorf("At(%d) = %s, want %s", tt.n, got, tt.want)
			}
		})
	}
}

func TestAtStopsAfterZeroTail(t *testing.T) {
	p := mustNew(t, Ramp{From: 10, To: 0, Duration: 2 * time.Second})
	if _, ok := p.At(9); !ok {
		t.Fatal("hit 9 of 10 should be sent")
	}
	if _, ok := p.At(10); ok {
		t.Fatal("a ramp to zero must stop after its 10 hits")
	}
	if _, stop := p.Pace(3*time.Second, 10); !stop {
		t.Fatal("Pace must stop once the profile has no hit left")
	}
}

func TestAtIsMonotone(t *testing.T) {
	steps, err := Steps(10, 50, 20, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	segs := append([]Segment{Ramp{From: 1, To: 300, Duration: time.Second}, Sine{Mean: 200, Amplitude: 200, Period: time.Second, Duration: 2 * time.Second}}, steps...)
	p := mustNew(t, segs...)
	var prev time.Duration
	for n := uint64(0); n < 2000; n++ {
		at, ok := p.At(n)
		if !ok {
			t.Fatalf("At(%d) not ok", n)
		}
		if at < prev {
			t.Fatalf("At(%d) = %s < At(%d) = %s", n, at, n-1, prev)
		}
		prev = at
		// Inverse property: Hits(At(n)) == n+1.
		if h := p.Hits(at); math.Abs(h-float64(n+1)) > 1e-3 {
			t.Fatalf("Hits(At(%d)) = %g, want %d", n, h, n+1)
		}
	}
}

func TestPace(t *testing.T) {
	p := mustNew(t, Constant{Rate: 10, Duration: time.Second})
	tests := []struct {
		name    string
		elapsed time.Duration
		hits    uint64
		want    time.Duration
	}{
		{"waits for the first hit", 0, 0, 100 * time.Millisecond},
		{"on time", 250 * time.Millisecond, 2, 50 * time.Millisecond},
		{"behind sends now", 900 * time.Millisecond, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wait, stop := p.Pace(tt.elapsed, tt.hits)
			if stop || !near(wait, tt.want, time.Microsecond) {
				t.Errorf("Pace(%s, %d) = %s, %v; want %s, false", tt.elapsed, tt.hits, wait, stop, tt.want)
			}
		})
	}
	if r := p.Rate(500 * time.Millisecond); r != 10 {
		t.Errorf("Rate = %g, want 10", r)
	}
}

func TestRate(t *testing.T) {
	p := mustNew(t, Ramp{From: 0, To: 100, Duration: 10 * time.Second}, Sine{Mean: 100, Amplitude: 50, Period: 4 * time.Second, Duration: 4 * time.Second})
	tests := []struct {
		at   time.Duration
		want float64
	}{
		{0, 0}, {5 * time.Second, 50}, {11 * time.Second, 150}, {13 * time.Second, 50}, {time.Minute, 100},
	}
	for _, tt := range tests {
		if got := p.Rate(tt.at); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("Rate(%s) = %g, want %g", tt.at, got, tt.want)
		}
	}
}

func TestSteps(t *testing.T) {
	segs, err := Steps(100, 400, 100, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 4 {
		t.Fatalf("got %d levels, want 4", len(segs))
	}
	p := mustNew(t, segs...)
	if got := p.Hits(4 * time.Second); got != 1000 {
		t.Errorf("Hits(4s) = %g, want 1000", got)
	}
	if _, err := Steps(100, 400, -100, time.Second); !errors.Is(err, ErrInvalidProfile) {
		t.Errorf("steps going the wrong way: err = %v", err)
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		segs []Segment
	}{
		{"none", nil},
		{"negative rate", []Segment{Constant{Rate: -1, Duration: time.Second}}},
		{"ramp without duration", []Segment{Ramp{From: 1, To: 2}}},
		{"sine below zero", []Segment{Sine{Mean: 10, Amplitude: 20, Period: time.Second, Duration: time.Second}}},
		{"open stage in the middle", []Segment{Constant{Rate: 1}, Constant{Rate: 2, Duration: time.Second}}},
		{"NaN", []Segment{Constant{Rate: math.NaN(), Duration: time.Second}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.segs...); !errors.Is(err, ErrInvalidProfile) {
				t.Errorf("err = %v, want ErrInvalidProfile", err)
			}
		})
	}
}

func BenchmarkAtSine(b *testing.B) {
	p, _ := New(Sine{Mean: 1000, Amplitude: 500, Period: 10 * time.Second, Duration: time.Minute})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.At(uint64(i % 60000))
	}
}

func TestString(t *testing.T) {
	steps, _ := Steps(10, 20, 10, time.Second)
	p := mustNew(t, append([]Segment{Ramp{From: 1, To: 2, Duration: time.Second}}, append(steps, Constant{Rate: 5})...)...)
	want := "ramp 1/s to 2/s over 1s, then constant 10/s for 1s, then constant 20/s for 1s, then constant 5/s"
	if got := p.String(); got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

// The N shards of a profile send exactly its hits, each at its time.
func TestShardPartitionsProfile(t *testing.T) {
	p, err := New(Ramp{From: 10, To: 200, Duration: 2 * time.Second}, Constant{Rate: 150, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []uint64{1, 2, 3, 7} {
		var merged []time.Duration
		for i := range n {
			s := &Shard{P: p, I: i, N: n}
			for k := uint64(0); ; k++ {
				at, ok := s.At(k)
				if !ok || at >= p.Length() {
					break
				}
				merged = append(merged, at)
			}
			if got, want := s.Rate(time.Second), p.Rate(time.Second)/float64(n); got != want {
				t.Errorf("shard %d/%d rate %g, want %g", i+1, n, got, want)
			}
		}
		var full []time.Duration
		for k := uint64(0); ; k++ {
			at, ok := p.At(k)
			if !ok || at >= p.Length() {
				break
			}
			full = append(full, at)
		}
		slices.Sort(merged)
		if !slices.Equal(merged, full) {
			t.Errorf("%d shards: %d hits, the profile %d", n, len(merged), len(full))
		}
	}
}
