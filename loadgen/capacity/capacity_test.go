package capacity

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/novashop/edge/loadgen/metrics"
)

// model is a fake target: p99 1 ms up to its capacity, 100 ms above.
func model(capacity float64, calls *[]float64) RunFunc {
	return func(_ context.Context, rate float64) (metrics.Summary, error) {
		*calls = append(*calls, rate)
		s := metrics.Summary{Requests: 1000, SuccessRatio: 1, Latency: metrics.Latency{P99: 1}}
		if rate > capacity {
			s.Latency.P99 = 100
		}
		return s, nil
	}
}

func cfg() Config {
	return Config{P99: DefaultP99, MinSuccess: DefaultMinSuccess, Start: 100, Max: 100000, Trials: DefaultTrials, Precision: DefaultPrecision}
}

func TestSearch(t *testing.T) {
	tests := []struct {
		name     string
		capacity float64
		mod      func(*Config)
		wantLo   float64
		wantHi   float64
		bounded  bool
		maxCalls int
	}{
		{"grows then bisects", 1000, nil, 950, 1000, false, 12},
		{"exact start", 100, nil, 100, 100, false, 12},
		{"below start bisects down", 30, nil, 25, 30, false, 12},
		{"reaches max", 1e9, func(c *Config) { c.Max = 800 }, 800, 800, true, 5},
		{"trial budget", 1e9, func(c *Config) { c.Trials = 3 }, 400, 400, false, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg()
			if tt.mod != nil {
				tt.mod(&c)
			}
			var calls []float64
			res, err := Search(context.Background(), "x", c, model(tt.capacity, &calls))
			if err != nil {
				t.Fatal(err)
			}
			if res.Capacity < tt.wantLo || res.Capacity > tt.wantHi {
				t.Errorf("capacity = %g, want within [%g, %g]; trials %v", res.Capacity, tt.wantLo, tt.wantHi, calls)
			}
			if res.Bounded != tt.bounded {
				t.Errorf("bounded = %v", res.Bounded)
			}
			if len(calls) > tt.maxCalls {
				t.Errorf("%d trials, at most %d allowed: %v", len(calls), tt.maxCalls, calls)
			}
			for _, r := range calls {
				if r > c.Max {
					t.Errorf("tried %g above max %g", r, c.Max)
				}
			}
			if res.Capacity > 0 && (res.Best == nil || res.Best.Rate != res.Capacity) {
				t.Errorf("best trial %+v does not match capacity", res.Best)
			}
		})
	}
}

func TestPass(t *testing.T) {
	c := cfg()
	tests := []struct {
		name string
		s    metrics.Summary
		want bool
	}{
		{"ok", metrics.Summary{Requests: 1, SuccessRatio: 1, Latency: metrics.Latency{P99: 20}}, true},
		{"p99 over", metrics.Summary{Requests: 1, SuccessRatio: 1, Latency: metrics.Latency{P99: 20.001}}, false},
		{"success under", metrics.Summary{Requests: 1, SuccessRatio: 0.9989, Latency: metrics.Latency{P99: 1}}, false},
		{"nothing ran", metrics.Summary{}, false},
	}
	for _, tt := range tests {
		if got := c.Pass(tt.s); got != tt.want {
			t.Errorf("%s: Pass = %v", tt.name, got)
		}
	}
}

func TestSearchStopsOnErrorAndCancel(t *testing.T) {
	boom := errors.New("boom")
	_, err := Search(context.Background(), "x", cfg(), func(context.Context, float64) (metrics.Summary, error) { return metrics.Summary{}, boom })
	if !errors.Is(err, boom) {
		t.Errorf("err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var calls []float64
	run := model(1e9, &calls)
	res, err := Search(ctx, "x", cfg(), func(ctx context.Context, r float64) (metrics.Summary, error) {
		cancel()
		return run(ctx, r)
	})
	if err != nil || len(res.Trials) != 1 {
		t.Errorf("after cancel: %d trials, err %v", len(res.Trials), err)
	}
}

func TestValidate(t *testing.T) {
	bad := []Config{
		{},
		{P99: time.Millisecond, MinSuccess: 2, Start: 1, Max: 2, Trials: 1, Precision: 0.1},
		{P99: time.Millisecond, MinSuccess: 1, Start: 10, Max: 2, Trials: 1, Precision: 0.1},
		{P99: time.Millisecond, MinSuccess: 1, Start: 1, Max: 2, Trials: 0, Precision: 0.1},
	}
	for _, c := range bad {
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("Validate(%+v) = %v", c, err)
		}
	}
	if err := cfg().Validate(); err != nil {
		t.Error(err)
	}
}

// TestConfirmIgnoresOneTransientFailure: with Confirm, a rate that fails
// once (a stall of the shared machine) and passes on the re-run counts as
// passed; without it the same stall ends the growth phase.
func TestConfirmIgnoresOneTransientFailure(t *testing.T) {
	flaky := func(stallAt float64) RunFunc {
		stalled := false
		return func(_ context.Context, rate float64) (metrics.Summary, error) {
			s := metrics.Summary{Requests: 1000, SuccessRatio: 1, Latency: metrics.Latency{P99: 1}}
			if rate > 1000 || (rate == stallAt && !stalled) {
				stalled = stalled || rate == stallAt
				s.Latency.P99 = 500
			}
			return s, nil
		}
	}
	c := cfg()
	c.Trials = 30
	plain, err := Search(context.Background(), "t", c, flaky(400))
	if err != nil {
		t.Fatal(err)
	}
	if plain.Capacity >= 400 {
		t.Fatalf("without Confirm a stall at 400 should end growth; capacity %g", plain.Capacity)
	}
	c.Confirm = true
	confirmed, err := Search(context.Background(), "t", c, flaky(400))
	if err != nil {
		t.Fatal(err)
	}
	if confirmed.Capacity < 950 || confirmed.Capacity > 1000 {
		t.Fatalf("with Confirm capacity = %g, want 950..1000; trials %+v", confirmed.Capacity, confirmed.Trials)
	}
	reruns := 0
	for i := 1; i < len(confirmed.Trials); i++ {
		if confirmed.Trials[i].Rate == confirmed.Trials[i-1].Rate {
			reruns++
		}
	}
	if reruns == 0 {
		t.Fatal("no failed trial was re-run")
	}
}
