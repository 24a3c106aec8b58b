package tune

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/novashop/edge/loadgen/metrics"
)

// ClientHeader carries the simulated shopper's key on every request of a tune
// run (cmd/loadgen adds it to the campaign with a range of client numbers), so
// hash balancing sees many clients although the load comes from one address.
const ClientHeader = "X-Tune-Client"

// HashPerClient is the hash policy keyed on ClientHeader: what hashing by client
// does with many shoppers. Plain "hash" uses the edge's configured key, by
// default the client IP, which from one load generator is a single key that
// sends everything to one host.
const HashPerClient = "hash:header:" + ClientHeader

// Policies are the policies tune tries by default, in DESIGN.md's order; a
// policy is a name, or hash:KEY for the hash policy on KEY (ip, path,
// header:NAME or cookie:NAME).
var Policies = []string{"round-robin", "weighted", "least-conn", "p2c-ewma", "random", HashPerClient}

// DefaultShareMargin is how far above its fair share of the requests (its
// weight over the pool's) one host may go before the policy is not recommended.
// It leaves room for a policy that rightly avoids a slow origin (with three
// hosts and one avoided, the other two take about half each).
const DefaultShareMargin = 0.25

// SplitPolicy splits a policy as Policies spells it into the edge's policy name
// and hash key ("" for the edge's configured key).
func SplitPolicy(policy string) (name, hashKey string) {
	if k, ok := strings.CutPrefix(policy, "hash:"); ok {
		return "hash", k
	}
	return policy, ""
}

// ErrAdmin is returned when the edge's admin API refuses or is unreachable.
var ErrAdmin = errors.New("tune: edge admin API")

// ErrNoTrials is returned by Recommend without any trial.
var ErrNoTrials = errors.New("tune: no trial to recommend from")

// Upstream is one entry of GET /admin/upstreams.
type Upstream struct {
	Name     string  `json:"name"`
	URL      string  `json:"url"`
	State    string  `json:"state"`
	Weight   float64 `json:"weight"`
	InFlight int64   `json:"in_flight"`
	EWMAms   float64 `json:"ewma_ms"`
	Failures int64   `json:"failures"`
}

// Upstreams is GET /admin/upstreams.
type Upstreams struct {
	Balancer  string     `json:"balancer"`
	Upstreams []Upstream `json:"upstreams"`
}

// Admin talks to one edge's admin API.
type Admin struct {
	// URL is the admin base URL, e.g. http://127.0.0.1:9090.
	URL string
	// Client defaults to a client with a 5 s timeout.
	Client *http.Client
	// Token, when set, is sent as Authorization: Bearer on every call
	// (the edge's admin.token_env token; switching the balancer needs it).
	Token string
}

func (a Admin) client() *http.Client {
	if a.Client != nil {
		return a.Client
	}
	return &http.Client{Timeout: 5 * time.Second}
}

func (a Admin) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.URL, "/")+path, rd)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrAdmin, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.Token)
	}
	resp, err := a.client().Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrAdmin, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return fmt.Errorf("%w: %s %s: %d %s", ErrAdmin, method, path, resp.StatusCode, e.Error)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%w: %s %s: bad JSON: %v", ErrAdmin, method, path, err)
		}
	}
	return nil
}

// SetPolicy switches the edge's balancer; policy is a name or hash:KEY (see
// Policies). A plain name puts back the configured hash key.
func (a Admin) SetPolicy(ctx context.Context, policy string) error {
	name, key := SplitPolicy(policy)
	body := map[string]string{"policy": name}
	if key != "" {
		body["hash_key"] = key
	}
	return a.do(ctx, http.MethodPut, "/admin/balancer", body, nil)
}

// HostRequests reads, from the edge's Prometheus metrics, how many tries each
// host has taken so far (answers and failures): the edge's
// edge_upstream_requests_total and edge_upstream_errors_total, summed per
// upstream label.
func (a Admin) HostRequests(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(a.URL, "/")+"/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAdmin, err)
	}
	resp, err := a.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAdmin, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: GET /metrics: %d", ErrAdmin, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: GET /metrics: %v", ErrAdmin, err)
	}
	return ParseHostRequests(string(b)), nil
}

// ParseHostRequests sums the per-upstream request and error counters of a
// Prometheus text exposition by upstream name.
func ParseHostRequests(text string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, "edge_upstream_requests_total{")
		if !ok {
			rest, ok = strings.CutPrefix(line, "edge_upstream_errors_total{")
		}
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		_, name, ok := strings.Cut(labels, `upstream="`)
		if !ok {
			continue
		}
		name, _, ok = strings.Cut(name, `"`)
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if !ok || err != nil {
			continue
		}
		out[name] += v
	}
	return out
}

// settleWait bounds how long Run waits for the previous trial's requests to
// leave the edge.
const settleWait = 3 * time.Second

// settle waits, at most wait, until no host has a request in flight, so that a
// trial's counters do not include the previous trial's last answers.
func (a Admin) settle(ctx context.Context, wait time.Duration) {
	deadline := time.Now().Add(wait)
	for {
		u, err := a.Upstreams(ctx)
		if err != nil {
			return
		}
		var n int64
		for _, h := range u.Upstreams {
			n += h.InFlight
		}
		if n == 0 || time.Now().After(deadline) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// HostShare is one host's part of a trial's requests.
type HostShare struct {
	Name     string  `json:"name"`
	Requests float64 `json:"requests"`
	// Share is Requests over all hosts' requests in the trial.
	Share float64 `json:"share"`
	// Fair is the host's weight over the pool's total weight.
	Fair float64 `json:"fair_share"`
}

// Shares turns the per-host request counts before and after a trial into
// shares, with each host's fair share from its weight in ups (1 when ups does
// not list it). Hosts that took no request are listed with share 0.
func Shares(before, after map[string]float64, ups []Upstream) []HostShare {
	weight := map[string]float64{}
	for _, u := range ups {
		weight[u.Name] = max(u.Weight, 1)
	}
	names := map[string]bool{}
	for n := range after {
		names[n] = true
	}
	for n := range weight {
		names[n] = true
	}
	var total, wsum float64
	hs := make([]HostShare, 0, len(names))
	for n := range names {
		d := max(after[n]-before[n], 0)
		w, ok := weight[n]
		if !ok {
			w = 1
		}
		total += d
		wsum += w
		hs = append(hs, HostShare{Name: n, Requests: d, Fair: w})
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].Name < hs[j].Name })
	for i := range hs {
		hs[i].Fair /= wsum
		if total > 0 {
			hs[i].Share = hs[i].Requests / total
		}
	}
	return hs
}

// maxExcess is how far the most over-served host went above its fair share.
func maxExcess(hs []HostShare) float64 {
	ex := 0.0
	for _, h := range hs {
		ex = math.Max(ex, h.Share-h.Fair)
	}
	return ex
}

// Upstreams reads the edge's upstream pool.
func (a Admin) Upstreams(ctx context.Context) (*Upstreams, error) {
	var u Upstreams
	if err := a.do(ctx, http.MethodGet, "/admin/upstreams", nil, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// Trial is one policy under one scenario in one round.
type Trial struct {
	Scenario  string          `json:"scenario"`
	Policy    string          `json:"policy"`
	Round     int             `json:"round"`
	Summary   metrics.Summary `json:"summary"`
	Upstreams []Upstream      `json:"upstreams,omitempty"`
	// Hosts is each host's share of the trial's requests (from the edge's
	// metrics); empty when the edge did not say.
	Hosts []HostShare `json:"hosts,omitempty"`
}

// Score is one policy's worst case across scenarios.
type Score struct {
	Policy string `json:"policy"`
	// MinSuccess, MaxP99 and MinThroughput are the worst figures over the
	// policy's scenarios.
	MinSuccess    float64 `json:"min_success_ratio"`
	MaxP99        float64 `json:"max_p99_ms"`
	MaxP50        float64 `json:"max_p50_ms"`
	MinThroughput float64 `json:"min_throughput_rps"`
	// MaxExcess is the most any host got above its fair share of the requests
	// in any trial (0.5 = half of all requests more than its share).
	MaxExcess float64 `json:"max_share_over_fair"`
	// Balanced is MaxExcess within the margin given to Recommend.
	Balanced bool `json:"balanced"`
	// Eligible is Balanced and MinSuccess at least the minimum.
	Eligible bool `json:"eligible"`
}

// Recommendation names the best policy and why.
type Recommendation struct {
	Policy string  `json:"policy"`
	Reason string  `json:"reason"`
	Scores []Score `json:"scores"`
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Recommend ranks policies by their worst case over scenarios, each
// scenario's figure being the median over its rounds (so one noisy round
// does not decide). A policy that sent one host more than its fair share plus
// margin in any trial is never recommended: it measured one host, not the
// pool (hash on one client address sends everything to one host, and looked
// best when that host was a fast one). Among the others, those whose success
// ratio reached minSuccess in every round of every scenario come first,
// ordered by worst p99 (within 5% counts as a tie), then worst p50 (same),
// then the more even spread. Throughput does not break ties: at the fixed
// offered rate every policy that keeps up serves that rate, and the
// differences are noise. When none qualifies on success, the most successful
// balanced policy wins; when none is balanced, there is no recommendation
// (Policy is empty).
func Recommend(trials []Trial, minSuccess, margin float64) (*Recommendation, error) {
	if len(trials) == 0 {
		return nil, ErrNoTrials
	}
	type key struct{ policy, scenario string }
	type runs struct{ p50, p99, thr []float64 }
	cells := map[key]*runs{}
	by := map[string]*Score{}
	var order []string
	for _, t := range trials {
		s := by[t.Policy]
		if s == nil {
			s = &Score{Policy: t.Policy, MinSuccess: 1, MinThroughput: math.Inf(1)}
			by[t.Policy] = s
			order = append(order, t.Policy)
		}
		s.MinSuccess = math.Min(s.MinSuccess, t.Summary.SuccessRatio)
		s.MaxExcess = math.Max(s.MaxExcess, maxExcess(t.Hosts))
		k := key{t.Policy, t.Scenario}
		c := cells[k]
		if c == nil {
			c = &runs{}
			cells[k] = c
		}
		c.p50 = append(c.p50, t.Summary.Latency.P50)
		c.p99 = append(c.p99, t.Summary.Latency.P99)
		c.thr = append(c.thr, t.Summary.ThroughputRPS)
	}
	for k, c := range cells {
		s := by[k.policy]
		s.MaxP99 = math.Max(s.MaxP99, median(c.p99))
		s.MaxP50 = math.Max(s.MaxP50, median(c.p50))
		s.MinThroughput = math.Min(s.MinThroughput, median(c.thr))
	}
	scores := make([]Score, 0, len(order))
	for _, p := range order {
		s := by[p]
		s.Balanced = s.MaxExcess <= margin
		s.Eligible = s.Balanced && s.MinSuccess >= minSuccess
		scores = append(scores, *s)
	}
	tie := func(a, b float64) bool { return math.Abs(a-b) <= 0.05*math.Min(a, b) }
	better := func(a, b Score) bool {
		if a.Balanced != b.Balanced {
			return a.Balanced
		}
		if a.Eligible != b.Eligible {
			return a.Eligible
		}
		if !a.Eligible && a.MinSuccess != b.MinSuccess {
			return a.MinSuccess > b.MinSuccess
		}
		if !tie(a.MaxP99, b.MaxP99) {
			return a.MaxP99 < b.MaxP99
		}
		if !tie(a.MaxP50, b.MaxP50) {
			return a.MaxP50 < b.MaxP50
		}
		return a.MaxExcess < b.MaxExcess
	}
	sort.SliceStable(scores, func(i, j int) bool { return better(scores[i], scores[j]) })
	best := scores[0]
	rec := &Recommendation{Policy: best.Policy, Scores: scores}
	var skipped []string
	for _, s := range scores {
		if !s.Balanced {
			skipped = append(skipped, fmt.Sprintf("%s (one host got %.0f%% over its fair share)", s.Policy, 100*s.MaxExcess))
		}
	}
	switch {
	case !best.Balanced:
		rec.Policy = ""
		rec.Reason = fmt.Sprintf("no recommendation: every policy sent one host more than its fair share plus %.0f%%: %s",
			100*margin, strings.Join(skipped, ", "))
	case !best.Eligible:
		rec.Reason = fmt.Sprintf("no policy kept the success ratio at %.3f%% in every scenario; %s came closest (%.3f%% worst case, p99 %.2f ms)",
			100*minSuccess, best.Policy, 100*best.MinSuccess, best.MaxP99)
	case len(scores) == 1 || !scores[1].Balanced:
		rec.Reason = fmt.Sprintf("%s was the only balanced policy: worst p99 %.2f ms, worst success %.3f%%", best.Policy, best.MaxP99, 100*best.MinSuccess)
	default:
		next := scores[1]
		switch {
		case !tie(best.MaxP99, next.MaxP99):
			rec.Reason = fmt.Sprintf("%s has the lowest worst-case p99 (%.2f ms against %.2f ms for the runner-up %s) with a worst success ratio of %.3f%%",
				best.Policy, best.MaxP99, next.MaxP99, next.Policy, 100*best.MinSuccess)
		case !tie(best.MaxP50, next.MaxP50):
			rec.Reason = fmt.Sprintf("%s and %s tie on worst-case p99 (%.2f ms vs %.2f ms, within 5%%); %s has the lower worst-case p50 (%.2f vs %.2f ms)",
				best.Policy, next.Policy, best.MaxP99, next.MaxP99, best.Policy, best.MaxP50, next.MaxP50)
		default:
			rec.Reason = fmt.Sprintf("%s and %s tie on worst-case p99 and p50 (within 5%%); %s spreads the load more evenly (at most %.0f%% over a fair share, against %.0f%%)",
				best.Policy, next.Policy, best.Policy, 100*best.MaxExcess, 100*next.MaxExcess)
		}
	}
	if len(skipped) > 0 && best.Balanced {
		rec.Reason += "; not recommended because unbalanced: " + strings.Join(skipped, ", ")
	}
	return rec, nil
}

// Scenario is one edge set-up to tune under, e.g. "normal" and
// "slow-origin" (an edge whose pool holds an origin started with
// --inject-latency).
type Scenario struct {
	Name string
	// Edge is the edge's public base URL the campaign runs against.
	Edge  string
	Admin Admin
}

// RunFunc runs the campaign against a scenario's edge.
type RunFunc func(ctx context.Context, sc Scenario, policy string) (metrics.Summary, error)

// Run tries every policy under every scenario, in rounds interleaved like
// compare's (round 1 tries each policy in turn, then round 2, ...), and
// puts each edge's original policy back afterwards, even when ctx ends
// early. It returns the trials that completed.
func Run(ctx context.Context, scenarios []Scenario, policies []string, rounds int, run RunFunc) ([]Trial, error) {
	if rounds < 1 {
		rounds = 1
	}
	var trials []Trial
	for _, sc := range scenarios {
		before, err := sc.Admin.Upstreams(ctx)
		if err != nil {
			return trials, fmt.Errorf("scenario %s: %w", sc.Name, err)
		}
		err = func() error {
			defer func() {
				// A fresh context: restoring must happen even after Ctrl-C.
				rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = sc.Admin.SetPolicy(rctx, before.Balancer)
			}()
			for r := 1; r <= rounds; r++ {
				for _, p := range policies {
					if ctx.Err() != nil {
						return nil
					}
					if err := sc.Admin.SetPolicy(ctx, p); err != nil {
						return fmt.Errorf("scenario %s: %w", sc.Name, err)
					}
					// The counters before and after give each host's share; an
					// edge without them still gets its trial, without shares.
					// The previous trial's last requests must not count here.
					sc.Admin.settle(ctx, settleWait)
					hostsBefore, herr := sc.Admin.HostRequests(ctx)
					s, err := run(ctx, sc, p)
					if err != nil {
						return fmt.Errorf("scenario %s, policy %s: %w", sc.Name, p, err)
					}
					t := Trial{Scenario: sc.Name, Policy: p, Round: r, Summary: s}
					if u, err := sc.Admin.Upstreams(ctx); err == nil {
						t.Upstreams = u.Upstreams
					}
					if hostsAfter, err := sc.Admin.HostRequests(ctx); herr == nil && err == nil {
						t.Hosts = Shares(hostsBefore, hostsAfter, t.Upstreams)
					}
					trials = append(trials, t)
				}
			}
			return nil
		}()
		if err != nil {
			return trials, err
		}
	}
	return trials, nil
}
