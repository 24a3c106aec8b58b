package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/novashop/edge/loadgen/attack"
	"github.com/novashop/edge/loadgen/capacity"
	"github.com/novashop/edge/loadgen/metrics"
	"github.com/novashop/edge/loadgen/tune"
)

// tuneDoc is tune's JSON output.
type tuneDoc struct {
	Campaign       string               `json:"campaign"`
	Started        string               `json:"started"`
	Trials         []tune.Trial         `json:"trials"`
	Recommendation *tune.Recommendation `json:"recommendation,omitempty"`
	Note           string               `json:"note"`
}

func runTune(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tune", "--campaign FILE --edge URL --admin URL [--slow-edge URL --slow-admin URL] [--policies LIST] [--rounds N] [--rate R] [--duration D] [--json FILE]", stdout)
	var cf campaignFlags
	cf.register(fs)
	edge := fs.String("edge", "", "the edge's public base `URL`, e.g. http://127.0.0.1:8080")
	admin := fs.String("admin", "", "the edge's admin base `URL`, e.g. http://127.0.0.1:9090")
	slowEdge := fs.String("slow-edge", "", "optional second edge `URL` whose pool holds one origin started with --inject-latency")
	slowAdmin := fs.String("slow-admin", "", "admin `URL` of the --slow-edge")
	policies := fs.String("policies", strings.Join(tune.Policies, ","), "comma-separated policies to try")
	rounds := fs.Int("rounds", 1, "interleaved rounds: each round tries every policy in turn; scenario figures are medians over rounds")
	minSuccess := fs.Float64("min-success", capacity.DefaultMinSuccess, "success ratio a policy must keep in every scenario to be recommended")
	jsonPath := fs.String("json", "", "write the JSON result to `FILE` (- for stdout instead of the table)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := cf.load()
	if err != nil {
		return err
	}
	if *edge == "" || *admin == "" {
		return usageErr("--edge and --admin are required")
	}
	if (*slowEdge == "") != (*slowAdmin == "") {
		return usageErr("--slow-edge and --slow-admin go together")
	}
	if *rounds < 1 {
		return usageErr("--rounds must be at least 1")
	}
	var pols []string
	for _, p := range strings.Split(*policies, ",") {
		p = strings.TrimSpace(p)
		known := false
		for _, k := range tune.Policies {
			known = known || k == p
		}
		if !known {
			return usageErr(fmt.Sprintf("--policies: %q is not one of %s", p, strings.Join(tune.Policies, ", ")))
		}
		pols = append(pols, p)
	}
	for _, u := range []string{*edge, *slowEdge} {
		if u != "" {
			if _, err := parseTargets(stringList{"edge=" + u}); err != nil {
				return err
			}
		}
	}
	scenarios := []tune.Scenario{{Name: "normal", Edge: *edge, Admin: tune.Admin{URL: *admin}}}
	if *slowEdge != "" {
		scenarios = append(scenarios, tune.Scenario{Name: "slow-origin", Edge: *slowEdge, Admin: tune.Admin{URL: *slowAdmin}})
	}
	progress := progressFor(stdout, stderr)
	interrupted := false
	trials, runErr := tune.Run(ctx, scenarios, pols, *rounds, func(ctx context.Context, sc tune.Scenario, policy string) (metrics.Summary, error) {
		out, err := attack.Run(ctx, c, attack.Options{Name: sc.Name + ":" + policy, URL: sc.Edge, Rate: cf.rate, Duration: cf.duration, Progress: progress, Log: cf.logger(stderr)})
		if err != nil {
			return metrics.Summary{}, err
		}
		interrupted = interrupted || out.Interrupted
		return out.Metrics.Summary(), nil
	})
	if runErr != nil && len(trials) == 0 {
		return runErr
	}
	doc := tuneDoc{Campaign: c.Name, Started: time.Now().UTC().Format(time.RFC3339), Trials: trials, Note: attack.Note}
	if rec, err := tune.Recommend(trials, *minSuccess); err == nil {
		doc.Recommendation = rec
	}
	if *jsonPath != "-" {
		writeTuneText(stdout, &doc)
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
	if runErr != nil {
		return runErr
	}
	if interrupted || ctx.Err() != nil {
		return errInterrupted
	}
	return nil
}

func writeTuneText(w io.Writer, d *tuneDoc) {
	fmt.Fprintf(w, "balancing policies under campaign %s\n", d.Campaign)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tround\tpolicy\tok/s\tsuccess\tp50\tp99\tmax\tupstreams (ewma ms, failures)")
	for _, t := range d.Trials {
		var ups []string
		for _, u := range t.Upstreams {
			ups = append(ups, fmt.Sprintf("%s %s %.1f/%d", u.Name, u.State, u.EWMAms, u.Failures))
		}
		l := t.Summary.Latency
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.1f\t%.3f%%\t%.2fms\t%.2fms\t%.2fms\t%s\n", t.Scenario, t.Round, t.Policy, t.Summary.ThroughputRPS, 100*t.Summary.SuccessRatio, l.P50, l.P99, l.Max, strings.Join(ups, ", "))
	}
	_ = tw.Flush()
	if d.Recommendation != nil {
		fmt.Fprintln(w, "worst case over scenarios (each the median over rounds), best first:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "policy\tsuccess\tp50\tp99\tok/s\teligible")
		for _, s := range d.Recommendation.Scores {
			fmt.Fprintf(tw, "%s\t%.3f%%\t%.2fms\t%.2fms\t%.1f\t%v\n", s.Policy, 100*s.MinSuccess, s.MaxP50, s.MaxP99, s.MinThroughput, s.Eligible)
		}
		_ = tw.Flush()
		fmt.Fprintf(w, "recommended: %s: %s\n", d.Recommendation.Policy, d.Recommendation.Reason)
	}
	fmt.Fprintln(w, d.Note)
}
