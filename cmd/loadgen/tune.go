package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/novashop/edge/loadgen/attack"
	"github.com/novashop/edge/loadgen/campaign"
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
	fs := newFlagSet("tune", "--campaign FILE --edge URL --admin URL [--slow-edge URL --slow-admin URL] [--policies LIST] [--clients N] [--max-share-margin F] [--rounds N] [--rate R] [--duration D] [--json FILE]", stdout)
	var cf campaignFlags
	cf.register(fs)
	edge := fs.String("edge", "", "the edge's public base `URL`, e.g. http://127.0.0.1:8080")
	admin := fs.String("admin", "", "the edge's admin base `URL`, e.g. http://127.0.0.1:9090")
	slowEdge := fs.String("slow-edge", "", "optional second edge `URL` whose pool holds one origin started with --inject-latency")
	slowAdmin := fs.String("slow-admin", "", "admin `URL` of the --slow-edge")
	policies := fs.String("policies", strings.Join(tune.Policies, ","), "comma-separated policies to try; hash:KEY tries hash on KEY (ip, path, header:NAME, cookie:NAME), plain hash the edge's configured key")
	clients := fs.Int("clients", 1000, "simulated shoppers: every request carries "+tune.ClientHeader+": N for a random N in 1..`N`, the key of "+tune.HashPerClient)
	margin := fs.Float64("max-share-margin", tune.DefaultShareMargin, "never recommend a policy that sent one host more than its fair share plus this `fraction` of the requests")
	rounds := fs.Int("rounds", 1, "interleaved rounds: each round tries every policy in turn; scenario figures are medians over rounds")
	minSuccess := fs.Float64("min-success", capacity.DefaultMinSuccess, "success ratio a policy must keep in every scenario to be recommended")
	tokenEnv := fs.String("admin-token-env", "EDGE_ADMIN_TOKEN", "environment variable holding the edges' admin bearer token (their admin.token_env), sent as Authorization: Bearer; unset means none")
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
	if *clients < 1 {
		return usageErr("--clients must be at least 1")
	}
	if *margin < 0 || *margin > 1 {
		return usageErr("--max-share-margin must be 0..1")
	}
	var pols []string
	for _, p := range strings.Split(*policies, ",") {
		p = strings.TrimSpace(p)
		name, key := tune.SplitPolicy(p)
		known := false
		for _, k := range tune.Policies {
			kn, _ := tune.SplitPolicy(k)
			known = known || kn == name
		}
		if !known || strings.HasPrefix(p, "hash:") && key == "" {
			return usageErr(fmt.Sprintf("--policies: %q is not one of %s (or hash:KEY)", p, strings.Join(tune.Policies, ", ")))
		}
		pols = append(pols, p)
	}
	addClientKey(c, *clients)
	for _, u := range []string{*edge, *slowEdge} {
		if u != "" {
			if _, err := parseTargets(stringList{"edge=" + u}); err != nil {
				return err
			}
		}
	}
	scenarios := []tune.Scenario{{Name: "normal", Edge: *edge, Admin: tune.Admin{URL: *admin, Token: os.Getenv(*tokenEnv)}}}
	if *slowEdge != "" {
		scenarios = append(scenarios, tune.Scenario{Name: "slow-origin", Edge: *slowEdge, Admin: tune.Admin{URL: *slowAdmin, Token: os.Getenv(*tokenEnv)}})
	}
	progress := progressFor(stderr, cf.quiet)
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
	if rec, err := tune.Recommend(trials, *minSuccess, *margin); err == nil {
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

// tuneClientFeeder is the feeder addClientKey adds to the campaign.
const tuneClientFeeder = "tune_client"

// addClientKey makes every request of c carry tune.ClientHeader with a
// shopper number drawn from 1..clients, so hash balancing on that header sees
// as many clients as a shop would, although the load comes from one address.
func addClientKey(c *campaign.Campaign, clients int) {
	if c.Headers == nil {
		c.Headers = map[string]string{}
	}
	if c.Feeders == nil {
		c.Feeders = map[string]campaign.Feeder{}
	}
	c.Feeders[tuneClientFeeder] = campaign.Feeder{Range: []int{1, clients}}
	c.Headers[tune.ClientHeader] = "${" + tuneClientFeeder + "}"
}

// shareText prints each host's share of a trial's requests, e.g.
// "origin-1 49%, origin-2 51%".
func shareText(hs []tune.HostShare) string {
	if len(hs) == 0 {
		return "-"
	}
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = fmt.Sprintf("%s %.0f%%", h.Name, 100*h.Share)
	}
	return strings.Join(parts, ", ")
}

func writeTuneText(w io.Writer, d *tuneDoc) {
	fmt.Fprintf(w, "balancing policies under campaign %s\n", d.Campaign)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tround\tpolicy\tok/s\tsuccess\tp50\tp99\tmax\tshare of requests\tupstreams (ewma ms, failures)")
	for _, t := range d.Trials {
		var ups []string
		for _, u := range t.Upstreams {
			ups = append(ups, fmt.Sprintf("%s %s %.1f/%d", u.Name, u.State, u.EWMAms, u.Failures))
		}
		l := t.Summary.Latency
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.1f\t%.3f%%\t%.2fms\t%.2fms\t%.2fms\t%s\t%s\n", t.Scenario, t.Round, t.Policy, t.Summary.ThroughputRPS, 100*t.Summary.SuccessRatio, l.P50, l.P99, l.Max, shareText(t.Hosts), strings.Join(ups, ", "))
	}
	_ = tw.Flush()
	if d.Recommendation != nil {
		fmt.Fprintln(w, "worst case over scenarios (each the median over rounds), best first:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "policy\tsuccess\tp50\tp99\tok/s\tmost over fair share\tbalanced\teligible")
		for _, s := range d.Recommendation.Scores {
			fmt.Fprintf(tw, "%s\t%.3f%%\t%.2fms\t%.2fms\t%.1f\t%.0f%%\t%v\t%v\n", s.Policy, 100*s.MinSuccess, s.MaxP50, s.MaxP99, s.MinThroughput, 100*s.MaxExcess, s.Balanced, s.Eligible)
		}
		_ = tw.Flush()
		if d.Recommendation.Policy == "" {
			fmt.Fprintf(w, "recommended: none: %s\n", d.Recommendation.Reason)
		} else {
			fmt.Fprintf(w, "recommended: %s: %s\n", d.Recommendation.Policy, d.Recommendation.Reason)
		}
	}
	fmt.Fprintln(w, d.Note)
}
