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
	"strings"
	"time"

	"github.com/novashop/edge/loadgen/metrics"
)

// Policies are the edge's balancing policies, in DESIGN.md's order.
var Policies = []string{"round-robin", "weighted", "least-conn", "p2c-ewma", "random", "hash"}

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

// SetPolicy switches the edge's balancer.
func (a Admin) SetPolicy(ctx context.Context, policy string) error {
	return a.do(ctx, http.MethodPut, "/admin/balancer", map[string]string{"policy": policy}, nil)
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
	Eligible      bool    `json:"eligible"`
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
// does not decide): policies whose success ratio reached minSuccess in
// every round of every scenario come first, ordered by worst p99 (within
// 5% counts as a tie, broken by worst throughput, then worst p50); when
// none qualifies, the most successful wins.
func Recommend(trials []Trial, minSuccess float64) (*Recommendation, error) {
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
		s.Eligible = s.MinSuccess >= minSuccess
		scores = append(scores, *s)
	}
	better := func(a, b Score) bool {
		if a.Eligible != b.Eligible {
			return a.Eligible
		}
		if !a.Eligible && a.MinSuccess != b.MinSuccess {
			return a.MinSuccess > b.MinSuccess
		}
		lo := math.Min(a.MaxP99, b.MaxP99)
		if math.Abs(a.MaxP99-b.MaxP99) > 0.05*lo {
			return a.MaxP99 < b.MaxP99
		}
		if a.MinThroughput != b.MinThroughput {
			return a.MinThroughput > b.MinThroughput
		}
		return a.MaxP50 < b.MaxP50
	}
	sort.SliceStable(scores, func(i, j int) bool { return better(scores[i], scores[j]) })
	best := scores[0]
	rec := &Recommendation{Policy: best.Policy, Scores: scores}
	switch {
	case !best.Eligible:
		rec.Reason = fmt.Sprintf("no policy kept the success ratio at %.3f%% in every scenario; %s came closest (%.3f%% worst case, p99 %.2f ms)",
			100*minSuccess, best.Policy, 100*best.MinSuccess, best.MaxP99)
	case len(scores) == 1:
		rec.Reason = fmt.Sprintf("%s was the only policy tried: worst p99 %.2f ms, worst success %.3f%%", best.Policy, best.MaxP99, 100*best.MinSuccess)
	default:
		next := scores[1]
		rec.Reason = fmt.Sprintf("%s has the lowest worst-case p99 (%.2f ms against %.2f ms for the runner-up %s) with a worst success ratio of %.3f%% and %.1f req/s served at worst",
			best.Policy, best.MaxP99, next.MaxP99, next.Policy, 100*best.MinSuccess, best.MinThroughput)
		if math.Abs(best.MaxP99-next.MaxP99) <= 0.05*math.Min(best.MaxP99, next.MaxP99) {
			rec.Reason = fmt.Sprintf("%s and %s tie on worst-case p99 (%.2f ms vs %.2f ms, within 5%%); %s serves more at worst (%.1f vs %.1f req/s)",
				best.Policy, next.Policy, best.MaxP99, next.MaxP99, best.Policy, best.MinThroughput, next.MinThroughput)
		}
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
					s, err := run(ctx, sc, p)
					if err != nil {
						return fmt.Errorf("scenario %s, policy %s: %w", sc.Name, p, err)
					}
					t := Trial{Scenario: sc.Name, Policy: p, Round: r, Summary: s}
					if u, err := sc.Admin.Upstreams(ctx); err == nil {
						t.Upstreams = u.Upstreams
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
