package compare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/novashop/edge/loadgen/attack"
	"github.com/novashop/edge/loadgen/campaign"
	"github.com/novashop/edge/loadgen/cpu"
	"github.com/novashop/edge/loadgen/metrics"
	"github.com/novashop/edge/loadgen/report"
	"go.uber.org/zap"
)

// ErrTargets is returned for a target list that cannot be compared.
var ErrTargets = errors.New("compare: invalid targets")

// DefaultRounds is the number of interleaved rounds.
const DefaultRounds = 3

// Target is one system under test.
type Target struct {
	Name, URL string
}

// ParseTarget reads NAME=URL.
func ParseTarget(s string) (Target, error) {
	name, u, ok := strings.Cut(s, "=")
	if !ok || name == "" || u == "" {
		return Target{}, fmt.Errorf("%w: %q is not NAME=URL", ErrTargets, s)
	}
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return Target{}, fmt.Errorf("%w: %q: URL must be http(s)://host:port", ErrTargets, s)
	}
	return Target{Name: name, URL: u}, nil
}

// RoundOrder is the order in which round r (from 0) runs n targets: it
// starts with target r mod n and goes on in the given order, wrapping
// around. Rotating the start means no target is always the one that runs
// first, on a stack still settling from its start, or always right after
// the same neighbour; over n rounds every target runs in every position once.
func RoundOrder(n, r int) []int {
	order := make([]int, n)
	for k := range order {
		order[k] = (r + k) % n
	}
	return order
}

// Options configure a comparison.
type Options struct {
	// Rounds is the number of interleaved rounds; DefaultRounds when 0.
	// Round r runs the targets in RoundOrder(len(targets), r).
	Rounds int
	// Rate and Duration override the campaign's (see attack.Options).
	Rate     float64
	Duration time.Duration
	// Warmup, when > 0, runs each target once for this long before round
	// 1 and discards the figures, so caches, connection pools and the
	// stack's own start-up are behind every target alike before anything
	// is measured.
	Warmup time.Duration
	// Progress receives the live progress line; nil keeps quiet.
	Progress io.Writer
	// Log receives debug events.
	Log *zap.Logger
	// CPU, when set, is read around every counted run; each run's CPU is
	// charged to the target that ran (cpu.Ledger).
	CPU *cpu.Meter
	// Settle is the pause between runs (--settle). With CPU set, each
	// pause ends as soon as the measured processes go quiet (cpu.Settle)
	// and at the latest after Settle; the run's CPU is read at its end, so
	// a run's leftover work (nginx's queue, origin and PostgreSQL work
	// still running, background refreshes) is charged to the run that
	// caused it, and the next run's reading starts only after the pause.
	// Without CPU it is a plain pause of Settle. 0: no pause.
	Settle time.Duration
	// SettleWindow is cpu.Settle's window; cpu.SettleWindow when 0.
	SettleWindow time.Duration
}

// Result is a comparison's outcome.
type Result struct {
	Doc *report.Document
	// Metrics are the merged metrics per target, in the targets' order.
	Metrics []*metrics.Metrics
}

// Run compares targets with c. When ctx ends early it returns what ran,
// with Doc.Interrupted set.
func Run(ctx context.Context, c *campaign.Campaign, targets []Target, o Options) (*Result, error) {
	if len(targets) == 0 {
		return nil, fmt.Errorf("%w: give at least one --target NAME=URL", ErrTargets)
	}
	seen := map[string]bool{}
	for _, t := range targets {
		if seen[t.Name] {
			return nil, fmt.Errorf("%w: name %q used twice", ErrTargets, t.Name)
		}
		seen[t.Name] = true
	}
	rounds := o.Rounds
	if rounds == 0 {
		rounds = DefaultRounds
	}
	if rounds < 0 {
		return nil, fmt.Errorf("%w: rounds %d must be positive", ErrTargets, rounds)
	}
	doc := &report.Document{
		Campaign: c.Name,
		Started:  time.Now().UTC().Format(time.RFC3339),
		Note:     attack.Note,
	}
	merged := make([]*metrics.Metrics, len(targets))
	var perRound [][]metrics.Summary
	var lag time.Duration
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.Name
	}
	doc.PerRound = map[string][]report.RoundFigures{}
	if o.Warmup < 0 {
		return nil, fmt.Errorf("%w: warm-up %s must be positive", ErrTargets, o.Warmup)
	}
	if o.Warmup > 0 {
		for _, t := range targets {
			if ctx.Err() != nil {
				break
			}
			if _, err := attack.Run(ctx, c, attack.Options{
				Name: t.Name + " (warm-up)", URL: t.URL, Rate: o.Rate, Duration: o.Warmup,
				Progress: o.Progress, Log: o.Log,
			}); err != nil {
				return nil, err
			}
		}
	}
	var ledger *cpu.Ledger
	if o.CPU != nil {
		ledger = cpu.NewLedger(o.CPU.Names())
	}
	if o.Settle < 0 {
		return nil, fmt.Errorf("%w: settle %s must not be negative", ErrTargets, o.Settle)
	}
	if o.Settle > 0 {
		doc.Settle = &report.Settle{BoundMs: float64(o.Settle.Microseconds()) / 1000}
		if o.CPU != nil {
			doc.Settle.QuietCores = cpu.QuietCores
		}
	}
	// settle pauses between runs and returns the CPU reading at its end
	// (nil without CPU).
	settle := func() (cpu.Reading, error) {
		if o.CPU != nil {
			s, err := o.CPU.Settle(ctx, o.Settle, o.SettleWindow)
			if err != nil {
				return nil, err
			}
			if o.Settle > 0 {
				doc.Settle.Add(s.Waited, s.Quiet)
			}
			return s.Reading, nil
		}
		if o.Settle > 0 {
			start := time.Now()
			t := time.NewTimer(o.Settle)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			doc.Settle.Add(time.Since(start), true)
		}
		return nil, nil
	}
	// last is the reading at the end of the previous settle: the next
	// run's "before". Something ran before round 1 when there was a
	// warm-up (or the stack just started), so the first run settles too.
	var last cpu.Reading
	pending := o.Warmup > 0 || o.CPU != nil
rounds:
	for r := 0; r < rounds; r++ {
		// row is indexed like targets (the ratios read it so), whatever
		// order the round runs them in.
		row := make([]metrics.Summary, len(targets))
		ran := 0
		for _, i := range RoundOrder(len(targets), r) {
			t := targets[i]
			if ctx.Err() != nil {
				doc.Interrupted = true
				break rounds
			}
			if pending {
				r, err := settle()
				if err != nil {
					return nil, err
				}
				last, pending = r, false
			}
			before := last
			out, err := attack.Run(ctx, c, attack.Options{
				Name: t.Name, URL: t.URL, Rate: o.Rate, Duration: o.Duration,
				Progress: o.Progress, Log: o.Log,
			})
			if err != nil {
				return nil, err
			}
			pending = true
			if ledger != nil {
				// The pause after the run is read as part of it: whatever
				// the run left running is this target's cost.
				after, err := settle()
				if err != nil {
					return nil, err
				}
				ledger.Add(t.Name, out.Metrics.Requests, cpu.Delta(before, after))
				last, pending = after, false
			}
			ran++
			doc.Profile = out.Profile
			lag = max(lag, out.MaxSendLag)
			s := out.Metrics.Summary()
			row[i] = s
			doc.PerRound[t.Name] = append(doc.PerRound[t.Name], report.RoundFigures{
				ThroughputRPS: s.ThroughputRPS, SuccessRatio: s.SuccessRatio, P50: s.Latency.P50, P99: s.Latency.P99,
			})
			if merged[i] == nil {
				merged[i] = out.Metrics
			} else {
				merged[i].Merge(out.Metrics)
			}
			if out.Interrupted {
				doc.Interrupted = true
			}
		}
		if ran > 0 {
			doc.Rounds = r + 1
		}
		// Only complete rounds enter the ratios: a round cut short would
		// compare a target's full run with another's fragment.
		if ran == len(targets) && !doc.Interrupted {
			perRound = append(perRound, row)
		}
		if doc.Interrupted {
			break
		}
	}
	res := &Result{Doc: doc}
	for i, m := range merged {
		if m == nil {
			m = metrics.New(targets[i].Name, targets[i].URL, time.Now())
		}
		res.Metrics = append(res.Metrics, m)
		s := m.Summary()
		if ledger != nil {
			s.CPUUsPerRequest, s.CPUByLabel, _ = ledger.Target(targets[i].Name)
		}
		doc.Targets = append(doc.Targets, s)
	}
	if ledger != nil {
		doc.CPU = map[string]report.CPUFigure{}
		for _, n := range o.CPU.Names() {
			doc.CPU[n] = report.CPUFigure{CPUUsPerRequest: ledger.Label(n)}
		}
	}
	doc.Ratios = report.Ratios(names, perRound)
	doc.MaxSendLagMs = float64(lag.Microseconds()) / 1000
	return res, nil
}
