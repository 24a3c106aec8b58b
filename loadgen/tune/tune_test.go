package tune

import (
	"context"
	"encoding/json"
	"errors"
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
			name: "tie on p99 broken by throughput",
			trials: []Trial{
				{Policy: "random", Summary: sum(1, 1, 10.2, 480)},
				{Policy: "weighted", Summary: sum(1, 1, 10, 500)},
			},
			want: "weighted", reason: "tie on worst-case p99",
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
			rec, err := Recommend(tt.trials, 0.999)
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
	if _, err := Recommend(nil, 1); !errors.Is(err, ErrNoTrials) {
		t.Errorf("err = %v", err)
	}
}

// fakeAdmin imitates the edge admin API of DESIGN.md.
func fakeAdmin(t *testing.T) (string, *[]string) {
	t.Helper()
	var mu sync.Mutex
	policy := "round-robin"
	var log []string
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
			var b struct{ Policy string }
			if err := json.Unmarshal(ctx.PostBody(), &b); err != nil || b.Policy == "bogus" {
				ctx.SetStatusCode(400)
				ctx.SetBodyString(`{"error": "unknown policy \"bogus\""}`)
				return
			}
			policy = b.Policy
			log = append(log, b.Policy)
			ctx.SetBodyString(`{"balancer": "` + policy + `"}`)
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
