package capacity

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/novashop/edge/loadgen/metrics"
)

// ErrConfig is returned for a search that cannot run.
var ErrConfig = errors.New("capacity: invalid config")

// Defaults, reused as flag defaults by cmd/loadgen.
const (
	DefaultP99        = 20 * time.Millisecond
	DefaultMinSuccess = 0.999
	DefaultStart      = 100.0
	DefaultMax        = 100000.0
	DefaultTrials     = 12
	// DefaultPrecision stops bisecting once the bracket is within 5%.
	DefaultPrecision = 0.05
)

// Config bounds the search.
type Config struct {
	// P99 is the latency bound a passing trial's p99 must stay within.
	P99 time.Duration
	// MinSuccess is the success ratio a passing trial must reach.
	MinSuccess float64
	// Start is the first rate tried; Max the highest ever tried.
	Start, Max float64
	// Trials bounds the number of runs.
	Trials int
	// Precision stops bisecting when (fail−pass)/pass falls below it.
	Precision float64
	// Confirm re-runs a failed trial once: a rate fails only when two runs
	// in a row fail it, so one transient stall of a shared machine does not
	// end the search. The confirming run counts as a trial.
	Confirm bool
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.P99 <= 0 {
		errs = append(errs, fmt.Errorf("%w: p99 bound must be positive", ErrConfig))
	}
	if c.MinSuccess < 0 || c.MinSuccess > 1 || math.IsNaN(c.MinSuccess) {
		errs = append(errs, fmt.Errorf("%w: min success %g must be within [0, 1]", ErrConfig, c.MinSuccess))
	}
	if !(c.Start > 0) || !(c.Max >= c.Start) || math.IsInf(c.Max, 0) {
		errs = append(errs, fmt.Errorf("%w: need 0 < start (%g) <= max (%g)", ErrConfig, c.Start, c.Max))
	}
	if c.Trials < 1 || c.Trials > 100 {
		errs = append(errs, fmt.Errorf("%w: trials %d must be within [1, 100]", ErrConfig, c.Trials))
	}
	if !(c.Precision > 0) {
		errs = append(errs, fmt.Errorf("%w: precision must be positive", ErrConfig))
	}
	return errors.Join(errs...)
}

// Trial is one run of the search.
type Trial struct {
	Rate    float64         `json:"rate"`
	Pass    bool            `json:"pass"`
	Summary metrics.Summary `json:"summary"`
}

// Result is the search's outcome for one target.
type Result struct {
	Target string `json:"target"`
	// Capacity is the highest passing rate, 0 when none passed.
	Capacity float64 `json:"capacity_rps"`
	// Best is the passing trial at Capacity.
	Best *Trial `json:"best,omitempty"`
	// Bounded is true when even Max passed: the capacity is at least Max.
	Bounded bool    `json:"reached_max"`
	Trials  []Trial `json:"trials"`
}

// RunFunc runs the campaign at rate and summarises it.
type RunFunc func(ctx context.Context, rate float64) (metrics.Summary, error)

// Pass reports whether s meets the bounds.
func (c Config) Pass(s metrics.Summary) bool {
	return s.Requests > 0 && s.SuccessRatio >= c.MinSuccess && s.Latency.P99 <= float64(c.P99)/float64(time.Millisecond)
}

// Search runs trials until the bracket is narrow enough, Trials are used
// up, Max passed, or ctx ends.
func Search(ctx context.Context, target string, c Config, run RunFunc) (*Result, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	res := &Result{Target: target}
	try := func(rate float64) (bool, error) {
		s, err := run(ctx, rate)
		if err != nil {
			return false, err
		}
		t := Trial{Rate: rate, Pass: c.Pass(s), Summary: s}
		res.Trials = append(res.Trials, t)
		if !t.Pass && c.Confirm && len(res.Trials) < c.Trials && ctx.Err() == nil {
			s, err = run(ctx, rate)
			if err != nil {
				return false, err
			}
			t = Trial{Rate: rate, Pass: c.Pass(s), Summary: s}
			res.Trials = append(res.Trials, t)
		}
		if t.Pass && rate > res.Capacity {
			res.Capacity = rate
			best := t
			res.Best = &best
		}
		return t.Pass, nil
	}
	pass, fail := 0.0, math.Inf(1)
	rate := c.Start
	// Grow: double until a failure or Max.
	for len(res.Trials) < c.Trials && ctx.Err() == nil {
		ok, err := try(rate)
		if err != nil {
			return res, err
		}
		if !ok {
			fail = rate
			break
		}
		pass = rate
		if rate >= c.Max {
			res.Bounded = true
			return res, nil
		}
		rate = math.Min(rate*2, c.Max)
	}
	// Bisect between the last pass (or 0) and the first failure.
	for len(res.Trials) < c.Trials && ctx.Err() == nil && !math.IsInf(fail, 1) {
		lo := pass
		if lo > 0 && (fail-lo)/lo <= c.Precision {
			break
		}
		if lo == 0 && fail <= 1 {
			break
		}
		mid := math.Round((lo + fail) / 2)
		if mid <= lo || mid >= fail {
			break
		}
		ok, err := try(mid)
		if err != nil {
			return res, err
		}
		if ok {
			pass = mid
		} else {
			fail = mid
		}
	}
	return res, nil
}
