package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/novashop/edge/loadgen/attack"
	"github.com/novashop/edge/loadgen/capacity"
	"github.com/novashop/edge/loadgen/cpu"
	"github.com/novashop/edge/loadgen/metrics"
	"github.com/novashop/edge/loadgen/report"
)

// capacityDoc is capacity's JSON output.
type capacityDoc struct {
	Campaign   string             `json:"campaign"`
	Started    string             `json:"started"`
	P99BoundMs float64            `json:"p99_bound_ms"`
	MinSuccess float64            `json:"min_success_ratio"`
	TrialS     float64            `json:"trial_duration_s"`
	Targets    []*capacity.Result `json:"targets"`
	// CPU is each measured name's CPU µs per request over every trial.
	CPU map[string]report.CPUFigure `json:"cpu,omitempty"`
	// Settle says how long the search paused between trials (--settle).
	Settle *report.Settle `json:"settle,omitempty"`
	Note   string         `json:"note"`
}

func runCapacity(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("capacity", "--campaign FILE --target NAME=URL ... [--p99 20ms] [--min-success 0.999] [--start R] [--max R] [--trials N] [--duration D] [--warmup D] [--cpu NAME=PID,...] [--cgroup NAME=PATH] [--settle D] [--json FILE]", stdout)
	var cf campaignFlags
	cf.register(fs)
	var cpuf cpuFlags
	cpuf.register(fs)
	var targets stringList
	fs.Var(&targets, "target", "a system under test, `NAME=URL` (repeatable)")
	p99 := fs.Duration("p99", capacity.DefaultP99, "p99 latency bound a passing rate must meet")
	minSuccess := fs.Float64("min-success", capacity.DefaultMinSuccess, "success ratio a passing rate must reach")
	start := fs.Float64("start", capacity.DefaultStart, "first rate tried, requests/s")
	maxRate := fs.Float64("max", capacity.DefaultMax, "highest rate ever tried, requests/s")
	trials := fs.Int("trials", capacity.DefaultTrials, "most runs per target")
	jsonPath := fs.String("json", "", "write the JSON result to `FILE` (- for stdout instead of the table)")
	confirm := fs.Bool("confirm", false, "re-run a failed trial once: a rate fails only when two runs in a row fail it (for shared, noisy machines)")
	warmup := fs.Duration("warmup", 0, "before a target's search, run the campaign this long at --warmup-rate, uncounted, so every target's caches start warm alike")
	warmupRate := fs.Float64("warmup-rate", 500, "rate of the warm-up run, requests/s")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *warmup < 0 || *warmupRate <= 0 {
		return usageErr("--warmup must not be negative and --warmup-rate must be positive")
	}
	if cf.rate != 0 {
		return usageErr("capacity chooses the rates itself: use --start and --max, not --rate")
	}
	c, err := cf.load()
	if err != nil {
		return err
	}
	ts, err := parseTargets(targets)
	if err != nil {
		return err
	}
	meter, err := cpuf.meter()
	if err != nil {
		return err
	}
	settle, err := cpuf.settleBound()
	if err != nil {
		return err
	}
	var ledger *cpu.Ledger
	if meter != nil {
		ledger = cpu.NewLedger(meter.Names())
	}
	cfg := capacity.Config{P99: *p99, MinSuccess: *minSuccess, Start: *start, Max: *maxRate, Trials: *trials, Precision: capacity.DefaultPrecision, Confirm: *confirm}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	du := cf.duration
	if du == 0 {
		du = min(time.Duration(c.Duration), 10*time.Second)
	}
	doc := capacityDoc{Campaign: c.Name, Started: time.Now().UTC().Format(time.RFC3339), P99BoundMs: float64(*p99) / 1e6, MinSuccess: *minSuccess, TrialS: du.Seconds(), Note: attack.Note}
	progress := progressFor(stderr, cf.quiet)
	if settle > 0 {
		doc.Settle = &report.Settle{BoundMs: float64(settle.Microseconds()) / 1000}
		if meter != nil {
			doc.Settle.QuietCores = cpu.QuietCores
		}
	}
	// pause waits between runs like compare's --settle and returns the CPU
	// reading at its end (nil without --cpu/--cgroup).
	pause := func(ctx context.Context) (cpu.Reading, error) {
		if meter != nil {
			s, err := meter.Settle(ctx, settle, 0)
			if err != nil {
				return nil, err
			}
			if settle > 0 {
				doc.Settle.Add(s.Waited, s.Quiet)
			}
			return s.Reading, nil
		}
		if settle > 0 {
			start := time.Now()
			t := time.NewTimer(settle)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			doc.Settle.Add(time.Since(start), true)
		}
		return nil, nil
	}
	// last is the reading at the end of the previous pause, the next
	// trial's "before"; pending says a run happened since that pause.
	var last cpu.Reading
	pending := meter != nil
	interrupted := false
	for _, t := range ts {
		if *warmup > 0 {
			pending = true
			if _, err := attack.Run(ctx, c, attack.Options{Name: t.Name + " (warm-up)", URL: t.URL, Rate: *warmupRate, Duration: *warmup, Progress: progress, Log: cf.logger(stderr)}); err != nil {
				return err
			}
		}
		res, err := capacity.Search(ctx, t.Name, cfg, func(ctx context.Context, rate float64) (metrics.Summary, error) {
			if pending {
				r, err := pause(ctx)
				if err != nil {
					return metrics.Summary{}, err
				}
				last, pending = r, false
			}
			before := last
			out, err := attack.Run(ctx, c, attack.Options{Name: t.Name, URL: t.URL, Rate: rate, Duration: du, Progress: progress, Log: cf.logger(stderr)})
			if err != nil {
				return metrics.Summary{}, err
			}
			s := out.Metrics.Summary()
			pending = true
			if meter != nil {
				// The pause after the trial is read as part of it: what
				// the trial left running is its own cost.
				after, err := pause(ctx)
				if err != nil {
					return metrics.Summary{}, err
				}
				last, pending = after, false
				// Each trial is a ledger of its own (its figure stands
				// beside its rate) and also enters the overall one.
				trial := cpu.NewLedger(meter.Names())
				d := cpu.Delta(before, after)
				trial.Add(t.Name, out.Metrics.Requests, d)
				ledger.Add(t.Name, out.Metrics.Requests, d)
				s.CPUUsPerRequest, s.CPUByLabel, _ = trial.Target(t.Name)
			}
			if out.Interrupted {
				interrupted = true
			}
			return s, nil
		})
		if err != nil {
			return err
		}
		doc.Targets = append(doc.Targets, res)
		if ctx.Err() != nil {
			break
		}
	}
	if ledger != nil {
		doc.CPU = map[string]report.CPUFigure{}
		for _, n := range meter.Names() {
			doc.CPU[n] = report.CPUFigure{CPUUsPerRequest: ledger.Label(n)}
		}
	}
	if *jsonPath != "-" {
		writeCapacityText(stdout, &doc)
	}
	if *jsonPath != "" {
		err := writeFile(*jsonPath, stdout, func(w io.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(doc)
		})
		if err != nil {
			return fmt.Errorf("--json: %w", err)
		}
	}
	if interrupted || ctx.Err() != nil {
		return errInterrupted
	}
	return nil
}

func writeCapacityText(w io.Writer, d *capacityDoc) {
	fmt.Fprintf(w, "capacity of campaign %s: highest rate with p99 <= %gms and success >= %.3f%% (%gs trials)\n", d.Campaign, d.P99BoundMs, 100*d.MinSuccess, d.TrialS)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tcapacity req/s\tp99 at capacity\tsuccess\tcpu µs/req at capacity\ttrials (rate: p99, success)")
	for _, r := range d.Targets {
		capStr, p99, succ, cpuStr := "none passed", "-", "-", "-"
		if r.Best != nil {
			capStr = fmt.Sprintf("%.0f", r.Capacity)
			if r.Bounded {
				capStr = ">= " + capStr + " (max)"
			}
			p99 = fmt.Sprintf("%.2fms", r.Best.Summary.Latency.P99)
			succ = fmt.Sprintf("%.3f%%", 100*r.Best.Summary.SuccessRatio)
			if d.CPU != nil {
				cpuStr = fmt.Sprintf("%.1f", r.Best.Summary.CPUUsPerRequest)
			}
		}
		trials := ""
		for i, t := range r.Trials {
			if i > 0 {
				trials += "; "
			}
			mark := "fail"
			if t.Pass {
				mark = "pass"
			}
			trials += fmt.Sprintf("%.0f: %.2fms %.2f%% %s", t.Rate, t.Summary.Latency.P99, 100*t.Summary.SuccessRatio, mark)
			if t.Summary.MaxSendLagMs > d.P99BoundMs/2 {
				// The generator itself fell behind: this trial measured
				// the load generator as much as the target.
				trials += fmt.Sprintf(" (generator lag %.0fms)", t.Summary.MaxSendLagMs)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Target, capStr, p99, succ, cpuStr, trials)
	}
	_ = tw.Flush()
	if len(d.CPU) > 0 {
		fmt.Fprint(w, "cpu µs per request over every trial:")
		for _, n := range sortedNames(d.CPU) {
			fmt.Fprintf(w, " %s %.1f", n, d.CPU[n].CPUUsPerRequest)
		}
		fmt.Fprintln(w)
	}
	if d.Settle != nil {
		fmt.Fprintln(w, d.Settle)
	}
	fmt.Fprintln(w, d.Note)
}

func sortedNames(m map[string]report.CPUFigure) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
