package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/novashop/edge/loadgen/metrics"
)

// Spread is a figure's minimum, median and maximum over rounds.
type Spread struct {
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

// Document is DESIGN.md's loadgen JSON; fields after Ratios are additions.
type Document struct {
	Campaign string                       `json:"campaign"`
	Started  string                       `json:"started"`
	Rounds   int                          `json:"rounds"`
	Targets  []metrics.Summary            `json:"targets"`
	Ratios   map[string]map[string]Spread `json:"ratios"`

	// Note states the load model (open, latency from intended send time).
	Note string `json:"note"`
	// Profile describes the rate profile each round ran.
	Profile string `json:"profile,omitempty"`
	// Interrupted is true when Ctrl-C cut the run short.
	Interrupted bool `json:"interrupted,omitempty"`
	// MaxSendLagMs is how far behind schedule the generator fell at worst.
	MaxSendLagMs float64 `json:"max_send_lag_ms"`
	// PerRound holds each target's throughput, p50 and p99 per round.
	PerRound map[string][]RoundFigures `json:"per_round,omitempty"`
	// Shards is set when the report merged the shards of a distributed
	// campaign (loadgen attack --shard).
	Shards *Shards `json:"shards,omitempty"`
	// CPU is each measured name's CPU µs per request over all runs.
	CPU map[string]CPUFigure `json:"cpu,omitempty"`
	// Settle says how long compare paused between runs (--settle).
	Settle *Settle `json:"settle,omitempty"`
}

// Settle sums the pauses between runs (loadgen compare/capacity
// --settle): with CPU measured, each pause lasts until the measured
// processes go quiet or BoundMs passes, and the CPU they used meanwhile
// is charged to the run that just ended, so none lands on the next.
type Settle struct {
	BoundMs float64 `json:"bound_ms"`
	// QuietCores is the rate under which the processes counted as quiet;
	// 0 when no CPU was measured (each pause then lasts BoundMs).
	QuietCores float64 `json:"quiet_cores"`
	Waits      int     `json:"waits"`
	MeanMs     float64 `json:"mean_ms"`
	MaxMs      float64 `json:"max_ms"`
	// NotQuiet counts the waits the bound ended before the processes went
	// quiet: their leftover work from then on landed on the next run.
	NotQuiet int `json:"not_quiet"`
	total    float64
}

// Add records one pause.
func (s *Settle) Add(waited time.Duration, quiet bool) {
	ms := float64(waited.Microseconds()) / 1000
	s.Waits++
	s.total += ms
	s.MeanMs = math.Round(s.total/float64(s.Waits)*10) / 10
	s.MaxMs = max(s.MaxMs, math.Round(ms*10)/10)
	if !quiet {
		s.NotQuiet++
	}
}

// String is the report's settle line.
func (s *Settle) String() string {
	if s.QuietCores == 0 {
		return fmt.Sprintf("settle: paused %d times for %.0f ms each between runs", s.Waits, s.BoundMs)
	}
	return fmt.Sprintf("settle: waited %d times for the measured processes to go quiet (< %.2f cores) before each CPU reading: mean %.0f ms, max %.0f ms, bound %.0f ms, %d times not quiet by the bound",
		s.Waits, s.QuietCores, s.MeanMs, s.MaxMs, s.BoundMs, s.NotQuiet)
}

// Shards describes a merged distributed campaign.
type Shards struct {
	Files int    `json:"files"`
	Note  string `json:"note"`
	// StartSpreadMs is how far apart the shards' first sends were.
	StartSpreadMs float64 `json:"start_spread_ms"`
}

// CPUFigure is one measured name's cost (see loadgen/cpu.Ledger).
type CPUFigure struct {
	CPUUsPerRequest float64 `json:"cpu_us_per_request"`
}

// RoundFigures are one target's headline figures in one round.
type RoundFigures struct {
	ThroughputRPS float64 `json:"throughput_rps"`
	SuccessRatio  float64 `json:"success_ratio"`
	P50           float64 `json:"p50_ms"`
	P99           float64 `json:"p99_ms"`
}

// SpreadOf returns min, median and max of vs, ignoring NaN and infinities
// (a ratio over a zero). The median of an even count is the mean of the two
// middle values. No usable value gives a zero Spread and false.
func SpreadOf(vs []float64) (Spread, bool) {
	xs := make([]float64, 0, len(vs))
	for _, v := range vs {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			xs = append(xs, v)
		}
	}
	if len(xs) == 0 {
		return Spread{}, false
	}
	sort.Float64s(xs)
	n := len(xs)
	med := xs[n/2]
	if n%2 == 0 {
		med = (xs[n/2-1] + xs[n/2]) / 2
	}
	return Spread{Min: round4(xs[0]), Median: round4(med), Max: round4(xs[n-1])}, true
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

// Ratios compares every pair of targets (in the order given, "a/b" for a
// before b) round by round: throughput a/b (higher means a serves more)
// and p50, p99 latency a/b (lower means a answers faster), each as a
// spread over the rounds. rounds[r][t] is target t in round r.
func Ratios(names []string, rounds [][]metrics.Summary) map[string]map[string]Spread {
	out := map[string]map[string]Spread{}
	for i := range names {
		for j := i + 1; j < len(names); j++ {
			var thr, p50, p99 []float64
			for _, r := range rounds {
				if i >= len(r) || j >= len(r) {
					continue
				}
				a, b := r[i], r[j]
				thr = append(thr, a.ThroughputRPS/b.ThroughputRPS)
				p50 = append(p50, a.Latency.P50/b.Latency.P50)
				p99 = append(p99, a.Latency.P99/b.Latency.P99)
			}
			m := map[string]Spread{}
			for k, vs := range map[string][]float64{"throughput": thr, "p50": p50, "p99": p99} {
				if s, ok := SpreadOf(vs); ok {
					m[k] = s
				}
			}
			out[names[i]+"/"+names[j]] = m
		}
	}
	return out
}

// WriteJSON writes d indented.
func WriteJSON(w io.Writer, d *Document) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return fmt.Errorf("report: json: %w", err)
	}
	return nil
}

func fmtMs(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.2fs", v/1000)
	case v >= 10:
		return fmt.Sprintf("%.1fms", v)
	default:
		return fmt.Sprintf("%.2fms", v)
	}
}

func fmtCounts(m map[string]uint64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func fmtFloats(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.1f", k, m[k]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// WriteText writes the table people read on a terminal.
func WriteText(w io.Writer, d *Document) error {
	fmt.Fprintf(w, "campaign %s, %d round(s), started %s\n", d.Campaign, d.Rounds, d.Started)
	if d.Profile != "" {
		fmt.Fprintf(w, "rate profile: %s\n", d.Profile)
	}
	if s := d.Shards; s != nil {
		fmt.Fprintf(w, "%s; first sends %s apart\n", s.Note, fmtMs(s.StartSpreadMs))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	cpuCol := ""
	if len(d.CPU) > 0 {
		cpuCol = "cpu µs/req\t"
	}
	fmt.Fprintln(tw, "target\trequests\tok/s\tsuccess\tmean\tp50\tp90\tp99\tp99.9\tmax\t"+cpuCol)
	for _, t := range d.Targets {
		l := t.Latency
		cpu := ""
		if cpuCol != "" {
			cpu = fmt.Sprintf("%.1f\t", t.CPUUsPerRequest)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.3f%%\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Requests, t.ThroughputRPS, 100*t.SuccessRatio,
			fmtMs(l.Mean), fmtMs(l.P50), fmtMs(l.P90), fmtMs(l.P99), fmtMs(l.P999), fmtMs(l.Max), cpu)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(d.CPU) > 0 {
		fmt.Fprintln(w, "cpu µs per request: each target's runs charge every measured process's CPU to that target's requests")
		for _, t := range d.Targets {
			fmt.Fprintf(w, "  %s: %s\n", t.Name, fmtFloats(t.CPUByLabel))
		}
		all := map[string]float64{}
		for k, v := range d.CPU {
			all[k] = v.CPUUsPerRequest
		}
		fmt.Fprintf(w, "  all runs: %s\n", fmtFloats(all))
	}
	if d.Settle != nil {
		fmt.Fprintln(w, d.Settle)
	}
	for _, t := range d.Targets {
		fmt.Fprintf(w, "%s: status %s; cache %s\n", t.Name, fmtCounts(t.StatusCodes), fmtCounts(t.CacheStatus))
		if len(t.Errors) > 0 {
			fmt.Fprintf(w, "%s: errors %s\n", t.Name, fmtCounts(t.Errors))
		}
		if j := t.Journeys; j != nil {
			fmt.Fprintf(w, "%s: journeys started %d, completed %d, aborted %d\n", t.Name, j.Started, j.Completed, j.Aborted)
		}
	}
	if len(d.Ratios) > 0 {
		fmt.Fprintln(w, "ratios over rounds (min / median / max):")
		pairs := make([]string, 0, len(d.Ratios))
		for k := range d.Ratios {
			pairs = append(pairs, k)
		}
		sort.Strings(pairs)
		for _, k := range pairs {
			r := d.Ratios[k]
			var parts []string
			for _, f := range []string{"throughput", "p50", "p99"} {
				if s, ok := r[f]; ok {
					parts = append(parts, fmt.Sprintf("%s %.3g / %.3g / %.3g", f, s.Min, s.Median, s.Max))
				}
			}
			fmt.Fprintf(w, "  %s: %s\n", k, strings.Join(parts, ", "))
		}
	}
	if d.MaxSendLagMs > 100 {
		fmt.Fprintf(w, "warning: the load generator fell up to %s behind its schedule; late sends are counted in the latencies\n", fmtMs(d.MaxSendLagMs))
	}
	if d.Interrupted {
		fmt.Fprintln(w, "interrupted: these figures cover only what ran")
	}
	_, err := fmt.Fprintln(w, d.Note)
	return err
}
