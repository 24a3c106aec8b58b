package tune

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/novashop/edge/loadgen/metrics"
	"github.com/valyala/fasthttp"
)

func sum(success, p50, p99, thr float64) metrics.Summary {
	return metrics.Summary{SuccessRatio: success, ThroughputRPS: thr, Latency: metrics.Latency{P50: p50, P99: p99}}
}

// shares builds equal-weight host shares h0, h1, … from the given fractions.
func shares(fracs ...float64) []HostShare {
	hs := make([]HostShare, len(fracs))
	for i, f := range fracs {
		hs[i] = HostShare{Name: fmt.Sprintf("h%d", i), Requests: 1000 * f, Share: f, Fair: 1 / float64(len(fracs))}
	}
	return hs
}

func TestRecommend(t *testing.T) {
	tests := []struct {
		name   string
		trials []Trial
		want   string
		reason string
	}{
		{
			name: "worst case decides: p2c-ewma avoids the slow origin",
			trials: []Trial{
				{Scenario: "normal", Policy: "round-robin", Summary: sum(1, 1, 3, 500)},
				{Scenario: "slow-origin", Policy: "round-robin", Summary: sum(1, 2, 250, 500)},
				{Scenario: "normal", Policy: "p2c-ewma", Summary: sum(1, 1, 4, 500)},
				{Scenario: "slow-origin", Policy: "p2c-ewma", Summary: sum(1, 1, 9, 500)},
			},
			want: "p2c-ewma", reason: "lowest worst-case p99 (9.00 ms against 250.00 ms",
		},
		{
			name: "failures disqualify",
			trials: []Trial{
				{Policy: "hash", Summary: sum(0.98, 1, 2, 500)},
				{Policy: "least-conn", Summary: sum(1, 2, 8, 500)},
			},
			want: "least-conn",
		},
		{
			// At a fixed offered rate, throughput is the offered rate give or
			// take noise: it must not decide.
			name: "tie on p99 broken by p50, not by throughput",
			trials: []Trial{
				{Policy: "random", Summary: sum(1, 1, 10.2, 500)},
				{Policy: "weighted", Summary: sum(1, 2, 10, 501)},
			},
			want: "random", reason: "lower worst-case p50",
		},
		{
			name: "tie on p99 and p50 broken by the more even spread",
			trials: []Trial{
				{Policy: "least-conn", Summary: sum(1, 1, 10, 501), Hosts: shares(0.6, 0.4)},
				{Policy: "random", Summary: sum(1, 1, 10.2, 499), Hosts: shares(0.52, 0.48)},
			},
			want: "random", reason: "spreads the load more evenly",
		},
		{
			// make tune on one machine: every request from one address, so
			// hash by client IP sent everything to one (fast) host and had
			// the best p99 while the spreading policies paid the slow host.
			name: "hash on one client address is never recommended",
			trials: []Trial{
				{Scenario: "normal", Policy: "hash", Summary: sum(1, 1, 3, 300), Hosts: shares(1, 0)},
				{Scenario: "slow-origin", Policy: "hash", Summary: sum(1, 1, 8, 300), Hosts: shares(1, 0, 0)},
				{Scenario: "normal", Policy: "p2c-ewma", Summary: sum(1, 1, 4, 300), Hosts: shares(0.5, 0.5)},
				{Scenario: "slow-origin", Policy: "p2c-ewma", Summary: sum(1, 1, 12, 300), Hosts: shares(0.49, 0.48, 0.03)},
				{Scenario: "normal", Policy: HashPerClient, Summary: sum(1, 1, 4, 300), Hosts: shares(0.51, 0.49)},
				{Scenario: "slow-origin", Policy: HashPerClient, Summary: sum(1, 1, 20, 300), Hosts: shares(0.34, 0.33, 0.33)},
			},
			want: "p2c-ewma", reason: "not recommended because unbalanced: hash (one host got 67% over its fair share)",
		},
		{
			name: "avoiding a slow host is within the margin",
			trials: []Trial{
				{Policy: "p2c-ewma", Summary: sum(1, 1, 5, 300), Hosts: shares(0.55, 0.45, 0)},
				{Policy: "round-robin", Summary: sum(1, 1, 20, 300), Hosts: shares(0.34, 0.33, 0.33)},
			},
			want: "p2c-ewma", reason: "lowest worst-case p99",
		},
		{
			name: "none balanced: no recommendation",
			trials: []Trial{
				{Policy: "hash", Summary: sum(1, 1, 3, 300), Hosts: shares(1, 0)},
				{Policy: "hash:path", Summary: sum(1, 1, 3, 300), Hosts: shares(0.9, 0.1)},
			},
			want: "", reason: "no recommendation: every policy sent one host more than its fair share plus 25%",
		},
		{
			name: "an unbalanced policy loses to a balanced one that fails more",
			trials: []Trial{
				{Policy: "hash", Summary: sum(1, 1, 3, 300), Hosts: shares(1, 0)},
				{Policy: "random", Summary: sum(0.9, 1, 30, 300), Hosts: shares(0.5, 0.5)},
			},
			want: "random", reason: "came closest",
		},
		{
			name: "the median over rounds, not one noisy round, decides",
			trials: []Trial{
				{Policy: "random", Round: 1, Summary: sum(1, 1, 5, 500)},
				{Policy: "random", Round: 2, Summary: sum(1, 1, 90, 500)},
				{Policy: "random", Round: 3, Summary: sum(1, 1, 6, 500)},
				{Policy: "hash", Round: 1, Summary: sum(1, 1, 20, 500)},
				{Policy: "hash", Round: 2, Summary: sum(1, 1, 21, 500)},
				{Policy: "hash", Round: 3, Summary: sum(1, 1, 22, 500)},
			},
			want: "random", reason: "(6.00 ms against 21.00 ms",
		},
		{
			name: "none eligible: the most successful",
			trials: []Trial{
				{Policy: "a", Summary: sum(0.5, 1, 1, 1)},
				{Policy: "b", Summary: sum(0.9, 1, 100, 1)},
			},
			want: "b", reason: "came closest",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := Recommend(tt.trials, 0.999, DefaultShareMargin)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Policy != tt.want {
				t.Errorf("recommended %s, want %s (%s)", rec.Policy, tt.want, rec.Reason)
			}
			if !strings.Contains(rec.Reason, tt.reason) {
				t.Errorf("reason %q lacks %q", rec.Reason, tt.reason)
			}
		})
	}
	if _, err := Recommend(nil, 1, DefaultShareMargin); !errors.Is(err, ErrNoTrials) {
		t.Errorf("err = %v", err)
	}
}

// fakeAdmin imitates the edge admin API of DESIGN.md.
func fakeAdmin(t *testing.T) (string, *[]string) {
	t.Helper()
	var mu sync.Mutex
	policy := "round-robin"
	var log []string
	metricsReads := 0
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		defer mu.Unlock()
		ctx.SetContentType("application/json")
		switch string(ctx.Path()) {
		case "/admin/balancer":
			var b struct {
				Policy  string
				HashKey string `json:"hash_key"`
			}
			if err := json.Unmarshal(ctx.PostBody(), &b); err != nil || b.Policy == "bogus" {
				ctx.SetStatusCode(400)
				ctx.SetBodyString(`{"error": "unknown policy \"bogus\""}`)
				return
			}
			policy = b.Policy
			if b.HashKey != "" {
				log = append(log, b.Policy+":"+b.HashKey)
			} else {
				log = append(log, b.Policy)
			}
			ctx.SetBodyString(`{"balancer": "` + policy + `"}`)
		case "/metrics":
			// Every read counts three more answers for o1 and one for o2.
			metricsReads++
			fmt.Fprintf(ctx, "edge_upstream_requests_total{upstream=\"o1\",status=\"200\"} %d\n", 3*metricsReads)
			fmt.Fprintf(ctx, "edge_upstream_errors_total{upstream=\"o2\"} %d\n", metricsReads)
		case "/admin/upstreams":
			ctx.SetBodyString(`{"balancer": "` + policy + `", "upstreams": [{"name": "o1", "url": "http://127.0.0.1:1", "state": "up", "weight": 1, "in_flight": 0, "ewma_ms": 1.5, "failures": 0}]}`)
		default:
			ctx.SetStatusCode(404)
		}
	}}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown() })
	return "http://" + ln.Addr().String(), &log
}

func TestAdmin(t *testing.T) {
	url, log := fakeAdmin(t)
	a := Admin{URL: url}
	ctx := context.Background()
	if err := a.SetPolicy(ctx, "p2c-ewma"); err != nil {
		t.Fatal(err)
	}
	u, err := a.Upstreams(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if u.Balancer != "p2c-ewma" || len(u.Upstreams) != 1 || u.Upstreams[0].EWMAms != 1.5 {
		t.Errorf("upstreams = %+v", u)
	}
	err = a.SetPolicy(ctx, "bogus")
	if !errors.Is(err, ErrAdmin) || !strings.Contains(err.Error(), `unknown policy "bogus"`) {
		t.Errorf("err = %v, want the edge's error text", err)
	}
	if len(*log) != 1 {
		t.Errorf("policy log = %v", *log)
	}
	if _, err := (Admin{URL: "http://127.0.0.1:1"}).Upstreams(ctx); !errors.Is(err, ErrAdmin) {
		t.Errorf("unreachable admin: err = %v", err)
	}
}

func TestRunTriesEveryPolicyAndRestores(t *testing.T) {
	url, log := fakeAdmin(t)
	sc := []Scenario{{Name: "normal", Edge: "http://127.0.0.1:1", Admin: Admin{URL: url}}, {Name: "slow", Edge: "http://127.0.0.1:2", Admin: Admin{URL: url}}}
	var ran []string
	trials, err := Run(context.Background(), sc, Policies, 1, func(_ context.Context, s Scenario, p string) (metrics.Summary, error) {
		ran = append(ran, s.Name+":"+p)
		return sum(1, 1, 1, 1), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(trials) != 12 || len(ran) != 12 {
		t.Fatalf("%d trials, ran %v", len(trials), ran)
	}
	if trials[3].Policy != "p2c-ewma" || trials[3].Upstreams[0].Name != "o1" {
		t.Errorf("trial 3 = %+v", trials[3])
	}
	// The fake's counters move by 3 (o1) and 1 (o2) between two reads.
	if h := trials[3].Hosts; len(h) != 2 || h[0].Name != "o1" || h[0].Share != 0.75 || h[1].Share != 0.25 || h[0].Fair != 0.5 {
		t.Errorf("trial 3 hosts = %+v", h)
	}
	// Six policies, then the original round-robin back, per scenario.
	want := strings.Join(append(append(append([]string{}, Policies...), "round-robin"), append(append([]string{}, Policies...), "round-robin")...), ",")
	if got := strings.Join(*log, ","); got != want {
		t.Errorf("policy changes = %s\nwant %s", got, want)
	}
}

func TestRunInterleavesRounds(t *testing.T) {
	url, _ := fakeAdmin(t)
	var ran []string
	trials, err := Run(context.Background(), []Scenario{{Name: "n", Admin: Admin{URL: url}}}, []string{"hash", "random"}, 2, func(_ context.Context, _ Scenario, p string) (metrics.Summary, error) {
		ran = append(ran, p)
		return sum(1, 1, 1, 1), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ran, ","); got != "hash,random,hash,random" || trials[3].Round != 2 {
		t.Errorf("ran %s, last round %d", got, trials[3].Round)
	}
}

func TestRunRestoresAfterFailure(t *testing.T) {
	url, log := fakeAdmin(t)
	_, err := Run(context.Background(), []Scenario{{Name: "n", Admin: Admin{URL: url}}}, []string{"hash", "bogus"}, 1, func(context.Context, Scenario, string) (metrics.Summary, error) {
		return sum(1, 1, 1, 1), nil
	})
	if !errors.Is(err, ErrAdmin) {
		t.Fatalf("err = %v", err)
	}
	if got := strings.Join(*log, ","); got != "hash,round-robin" {
		t.Errorf("policy changes = %s, want hash then the original back", got)
	}
}

func TestParseHostRequests(t *testing.T) {
	text := `# HELP ignored
edge_upstream_requests_total{upstream="origin-1",status="200"} 120
edge_upstream_requests_total{upstream="origin-1",status="503"} 5
edge_upstream_errors_total{upstream="origin-1"} 2
edge_upstream_requests_total{upstream="origin-slow",status="200"} 7
edge_upstream_request_duration_seconds_bucket{upstream="origin-1",le="0.1"} 99
edge_requests_total{status="200"} 1000
edge_upstream_requests_total{upstream="broken",status="200"} x
`
	got := ParseHostRequests(text)
	if len(got) != 2 || got["origin-1"] != 127 || got["origin-slow"] != 7 {
		t.Errorf("ParseHostRequests = %v", got)
	}
}

func TestShares(t *testing.T) {
	before := map[string]float64{"a": 10, "b": 10}
	after := map[string]float64{"a": 70, "b": 30}
	ups := []Upstream{{Name: "a", Weight: 3}, {Name: "b", Weight: 1}, {Name: "c", Weight: 1}}
	hs := Shares(before, after, ups)
	want := []HostShare{{"a", 60, 0.75, 0.6}, {"b", 20, 0.25, 0.2}, {"c", 0, 0, 0.2}}
	if len(hs) != 3 {
		t.Fatalf("Shares = %+v", hs)
	}
	for i := range want {
		if hs[i] != want[i] {
			t.Errorf("host %d = %+v, want %+v", i, hs[i], want[i])
		}
	}
	if ex := maxExcess(hs); ex < 0.149 || ex > 0.151 {
		t.Errorf("maxExcess = %v, want 0.15", ex)
	}
}

func TestSplitPolicy(t *testing.T) {
	for _, tt := range []struct{ in, name, key string }{
		{"p2c-ewma", "p2c-ewma", ""},
		{"hash", "hash", ""},
		{"hash:path", "hash", "path"},
		{HashPerClient, "hash", "header:X-Tune-Client"},
	} {
		if n, k := SplitPolicy(tt.in); n != tt.name || k != tt.key {
			t.Errorf("SplitPolicy(%q) = %q, %q", tt.in, n, k)
		}
	}
}
