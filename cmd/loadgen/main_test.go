package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// shop is a stand-in for an edge or nginx on 127.0.0.1: it answers every
// path, with a cursor on product lists, and counts requests.
func shop(t *testing.T, cacheStatus string, hits *atomic.Int64) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if hits != nil {
			hits.Add(1)
		}
		if cacheStatus != "" {
			ctx.Response.Header.Set("Cache-Status", cacheStatus)
		}
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"results": [], "next": "cur/1+2="}`)
	}}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown() })
	return "http://" + ln.Addr().String()
}

func runArgs(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), err
}

const browse = "../../configs/campaigns/browse.yaml"

func TestCompareWithShippedCampaign(t *testing.T) {
	var edgeHits, nginxHits atomic.Int64
	edge := shop(t, "novashop-edge; hit", &edgeHits)
	nginx := shop(t, "", &nginxHits)
	dir := t.TempDir()
	jsonPath, htmlPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.html")
	out, _, err := runArgs(t, "compare", "--campaign", browse, "--target", "edge="+edge, "--target", "nginx="+nginx,
		"--rate", "80", "--duration", "1s", "--rounds", "2", "--json", jsonPath, "--html", htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"edge", "nginx", "edge/nginx", "intended send time", "cache hit:"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	var doc struct {
		Campaign string `json:"campaign"`
		Rounds   int    `json:"rounds"`
		Targets  []struct {
			Name         string            `json:"name"`
			Requests     int64             `json:"requests"`
			SuccessRatio float64           `json:"success_ratio"`
			CacheStatus  map[string]int64  `json:"cache_status"`
			ByRequest    map[string]any    `json:"by_request"`
			StatusCodes  map[string]uint64 `json:"status_codes"`
		} `json:"targets"`
		Ratios map[string]map[string]map[string]float64 `json:"ratios"`
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Campaign != "browse" || doc.Rounds != 2 || len(doc.Targets) != 2 {
		t.Fatalf("doc = %+v", doc)
	}
	if got := doc.Targets[0]; got.Requests != edgeHits.Load() || got.SuccessRatio != 1 || got.CacheStatus["hit"] != got.Requests {
		t.Errorf("edge: %+v, server saw %d", got, edgeHits.Load())
	}
	if _, ok := doc.Targets[0].ByRequest["api-list-next"]; !ok {
		t.Errorf("cursor requests never ran: %v", doc.Targets[0].ByRequest)
	}
	if _, ok := doc.Ratios["edge/nginx"]["throughput"]["median"]; !ok {
		t.Errorf("ratios = %v", doc.Ratios)
	}
	page, err := os.ReadFile(htmlPath)
	if err != nil || !bytes.Contains(page, []byte("<svg")) {
		t.Errorf("html report: %v", err)
	}
}

func TestAttackThenReportMergesExactly(t *testing.T) {
	srv := shop(t, "novashop-edge; fwd=miss", nil)
	dir := t.TempDir()
	var files []string
	for i, format := range []string{"gob", "json"} {
		f := filepath.Join(dir, "r"+string(rune('0'+i)))
		_, errOut, err := runArgs(t, "attack", "--campaign", browse, "--target", "edge="+srv, "--rate", "50", "--duration", "500ms", "--output", f, "--format", format)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(errOut, "edge") {
			t.Errorf("attack summary on stderr = %q", errOut)
		}
		files = append(files, f)
	}
	one := func(args ...string) map[string]any {
		out, _, err := runArgs(t, append([]string{"report", "--json", "-"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		var d map[string]any
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return d["targets"].([]any)[0].(map[string]any)
	}
	a, b, both := one(files[0]), one(files[1]), one(files...)
	if got, want := both["requests"].(float64), a["requests"].(float64)+b["requests"].(float64); got != want || want < 40 {
		t.Errorf("merged requests = %g, want %g", got, want)
	}
	cs := both["cache_status"].(map[string]any)
	if cs["miss"].(float64) != both["requests"].(float64) {
		t.Errorf("cache status = %v", cs)
	}
	lat := both["latency_ms"].(map[string]any)
	if lat["max"].(float64) != max(a["latency_ms"].(map[string]any)["max"].(float64), b["latency_ms"].(map[string]any)["max"].(float64)) {
		t.Errorf("merged max latency %v is not the max of the parts", lat["max"])
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage")
	_ = os.WriteFile(garbage, []byte("not results"), 0o644)
	badCampaign := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(badCampaign, []byte("rate: []\n"), 0o644)
	tests := []struct {
		name  string
		args  []string
		usage bool
		text  string
	}{
		{"no command", nil, true, "no command"},
		{"unknown command", []string{"smash"}, true, `unknown command "smash"`},
		{"unknown flag", []string{"compare", "--bogus"}, true, "-bogus"},
		{"missing campaign", []string{"compare", "--target", "a=http://127.0.0.1:1"}, true, "--campaign"},
		{"no target", []string{"compare", "--campaign", browse}, true, "--target"},
		{"bad target", []string{"compare", "--campaign", browse, "--target", "127.0.0.1:1"}, true, "NAME=URL"},
		{"campaign file missing", []string{"compare", "--campaign", filepath.Join(dir, "none.yaml"), "--target", "a=http://127.0.0.1:1"}, false, "no such file"},
		{"invalid campaign", []string{"compare", "--campaign", badCampaign, "--target", "a=http://127.0.0.1:1"}, false, "at least one stage"},
		{"bad range", []string{"compare", "--campaign", browse, "--target", "a=http://127.0.0.1:1", "--range", "product=9-1"}, true, "MIN <= MAX"},
		{"range of a list", []string{"compare", "--campaign", browse, "--target", "a=http://127.0.0.1:1", "--range", "ordering=1-2"}, true, "no range feeder"},
		{"zero rounds", []string{"compare", "--campaign", browse, "--target", "a=http://127.0.0.1:1", "--rounds", "0"}, true, "--rounds"},
		{"capacity with rate", []string{"capacity", "--campaign", browse, "--target", "a=http://127.0.0.1:1", "--rate", "5"}, true, "--start"},
		{"capacity bad bound", []string{"capacity", "--campaign", browse, "--target", "a=http://127.0.0.1:1", "--p99", "-1ms"}, true, "p99"},
		{"tune without admin", []string{"tune", "--campaign", browse, "--edge", "http://127.0.0.1:1"}, true, "--admin"},
		{"tune bad policy", []string{"tune", "--campaign", browse, "--edge", "http://127.0.0.1:1", "--admin", "http://127.0.0.1:2", "--policies", "fastest"}, true, `"fastest"`},
		{"tune unreachable admin", []string{"tune", "--campaign", browse, "--edge", "http://127.0.0.1:1", "--admin", "http://127.0.0.1:1"}, false, "edge admin API"},
		{"attack two targets", []string{"attack", "--campaign", browse, "--target", "a=http://127.0.0.1:1", "--target", "b=http://127.0.0.1:1"}, true, "exactly one"},
		{"attack bad format", []string{"attack", "--campaign", browse, "--target", "a=http://127.0.0.1:1", "--output", filepath.Join(dir, "x"), "--format", "xml"}, true, "--format"},
		{"report no files", []string{"report"}, true, "results files"},
		{"report garbage", []string{"report", garbage}, false, "not vegeta's"},
		{"report missing file", []string{"report", filepath.Join(dir, "nope")}, false, "no such file"},
		{"coherence no writer", []string{"coherence"}, true, "--writer"},
		{"coherence no credentials", []string{"coherence", "--writer", "a=http://127.0.0.1:1", "--reader", "b=http://127.0.0.1:2"}, true, "--token"},
		{"stray argument", []string{"compare", "extra"}, true, `unexpected argument "extra"`},
		{"shard 0/3", []string{"attack", "--campaign", browse, "--target", "a=http://127.0.0.1:1", "--output", filepath.Join(dir, "s"), "--shard", "0/3", "--start-at", "2099-01-01T00:00:00Z"}, true, "I must be between 1 and N"},
		{"shard 4/3", []string{"attack", "--campaign", browse, "--target", "a=http://127.0.0.1:1", "--output", filepath.Join(dir, "s"), "--shard", "4/3", "--start-at", "2099-01-01T00:00:00Z"}, true, "I must be between 1 and N"},
		{"shard 1/0", []string{"attack", "--campaign", browse, "--target", "a=http://127.0.0.1:1", "--output", filepath.Join(dir, "s"), "--shard", "1/0", "--start-at", "2099-01-01T00:00:00Z"}, true, "N must be"},
		{"shard without start", []string{"attack", "--campaign", browse, "--target", "a=http://127.0.0.1:1", "--output", filepath.Join(dir, "s"), "--shard", "1/3"}, true, "--start-at"},
		{"shard to stdout", []string{"attack", "--campaign", browse, "--target", "a=http://127.0.0.1:1", "--shard", "1/3", "--start-at", "2099-01-01T00:00:00Z"}, true, "--output FILE"},
		{"start in the past", []string{"attack", "--campaign", browse, "--target", "a=http://127.0.0.1:1", "--output", filepath.Join(dir, "s"), "--shard", "1/3", "--start-at", "2020-01-01T00:00:00Z"}, true, "already passed"},
		{"start not a time", []string{"attack", "--campaign", browse, "--target", "a=http://127.0.0.1:1", "--output", filepath.Join(dir, "s"), "--start-at", "tomorrow"}, true, "RFC 3339"},
		{"cpu bad syntax", []string{"compare", "--campaign", browse, "--target", "a=http://127.0.0.1:1", "--cpu", "edge"}, true, "NAME=PID"},
		{"cpu bad pid", []string{"compare", "--campaign", browse, "--target", "a=http://127.0.0.1:1", "--cpu", "edge=12,x"}, true, "not a process id"},
		{"cpu unreadable pid", []string{"compare", "--campaign", browse, "--target", "a=http://127.0.0.1:1", "--cpu", "edge=1073741824"}, true, "process 1073741824"},
		{"cgroup bad syntax", []string{"capacity", "--campaign", browse, "--target", "a=http://127.0.0.1:1", "--cgroup", "pg"}, true, "NAME=PATH"},
		{"settle negative", []string{"compare", "--campaign", browse, "--target", "a=http://127.0.0.1:1", "--settle", "-1s"}, true, "--settle -1s must be within"},
		{"settle too long", []string{"capacity", "--campaign", browse, "--target", "a=http://127.0.0.1:1", "--settle", "2m"}, true, "--settle 2m0s must be within"},
		{"settle not a duration", []string{"compare", "--campaign", browse, "--target", "a=http://127.0.0.1:1", "--settle", "soon"}, true, `--settle "soon" is not a duration`},
		{"cgroup missing", []string{"capacity", "--campaign", browse, "--target", "a=http://127.0.0.1:1", "--cgroup", "pg=" + dir}, true, "cpu.stat"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runArgs(t, tt.args...)
			if err == nil {
				t.Fatal("bad input accepted")
			}
			if errors.Is(err, errUsage) != tt.usage || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("err = %v (usage %v), want usage=%v mentioning %q", err, errors.Is(err, errUsage), tt.usage, tt.text)
			}
			var stderr bytes.Buffer
			if code := exitCode(err, &stderr); code == 0 || strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("exit %d, stderr %q: want non-zero and one line", code, stderr.String())
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, c := range append([]string{""}, "compare", "capacity", "tune", "attack", "report", "coherence") {
		args := []string{"--help"}
		if c != "" {
			args = []string{c, "--help"}
		}
		out, _, err := runArgs(t, args...)
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%s --help: %v", c, err)
		}
		if !strings.Contains(out, "usage: loadgen") {
			t.Errorf("%s --help printed %q", c, out)
		}
		if exitCode(err, &bytes.Buffer{}) != 0 {
			t.Errorf("%s --help exits non-zero", c)
		}
	}
}

func TestInterruptedCompareStillReports(t *testing.T) {
	srv := shop(t, "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, []string{"compare", "--campaign", browse, "--target", "a=" + srv, "--rate", "50", "--duration", "30s"}, &out, &bytes.Buffer{})
	if !errors.Is(err, errInterrupted) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(out.String(), "interrupted") || !strings.Contains(out.String(), "a ") {
		t.Errorf("no report of what ran:\n%s", out.String())
	}
	var stderr bytes.Buffer
	if exitCode(err, &stderr) != 130 {
		t.Error("Ctrl-C must exit 130")
	}
}

// TestShopJourneys runs the shipped shop campaign against a fake shop that
// logs users in and insists on the token afterwards: every journey that
// starts early enough completes.
func TestShopJourneys(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var unauthorized atomic.Int64
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		path := string(ctx.Path())
		switch {
		case path == "/api/login/":
			var b struct{ Username, Password string }
			if json.Unmarshal(ctx.PostBody(), &b) != nil || !strings.HasPrefix(b.Username, "user") || b.Password != "shopper123" {
				ctx.SetStatusCode(401)
				return
			}
			ctx.SetBodyString(`{"access": "tok-` + b.Username + `", "refresh": "r"}`)
		case strings.HasPrefix(path, "/api/") && path != "/api/products/" && !strings.HasPrefix(path, "/api/products/"):
			if !strings.HasPrefix(string(ctx.Request.Header.Peek("Authorization")), "Bearer tok-user") {
				unauthorized.Add(1)
				ctx.SetStatusCode(401)
				ctx.SetBodyString(`{"error": "login required"}`)
				return
			}
			if ctx.IsPost() {
				ctx.SetStatusCode(201)
			}
			ctx.SetBodyString(`{}`)
		default:
			ctx.SetBodyString(`{"results": [], "next": null}`)
		}
	}}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown() })
	out, _, err := runArgs(t, "compare", "--campaign", "../../configs/campaigns/shop.yaml", "--target", "shop=http://"+ln.Addr().String(),
		"--rate", "100", "--duration", "1s", "--rounds", "1", "--users", "10", "--json", "-")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Targets []struct {
			SuccessRatio float64 `json:"success_ratio"`
			Journeys     struct{ Started, Completed, Aborted int }
			ByRequest    map[string]struct{ Requests int } `json:"by_request"`
		} `json:"targets"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	tg := doc.Targets[0]
	if unauthorized.Load() != 0 || tg.SuccessRatio != 1 {
		t.Errorf("%d requests went without the login token; success %g", unauthorized.Load(), tg.SuccessRatio)
	}
	if tg.Journeys.Started < 10 || tg.Journeys.Completed == 0 || tg.Journeys.Aborted != 0 {
		t.Errorf("journeys = %+v", tg.Journeys)
	}
	if tg.ByRequest["checkout/order"].Requests == 0 || tg.ByRequest["checkout/login"].Requests < tg.ByRequest["checkout/order"].Requests {
		t.Errorf("by request = %+v", tg.ByRequest)
	}
}

func TestCapacity(t *testing.T) {
	srv := shop(t, "", nil)
	out, _, err := runArgs(t, "capacity", "--campaign", browse, "--target", "a="+srv, "--start", "50", "--max", "100",
		"--trials", "3", "--duration", "300ms", "--p99", "10s", "--min-success", "0.99")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, ">= 100 (max)") || !strings.Contains(out, "50: ") {
		t.Errorf("capacity output:\n%s", out)
	}
}

func TestTune(t *testing.T) {
	edge := shop(t, "novashop-edge; hit", nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var policy atomic.Value
	policy.Store("round-robin")
	var puts atomic.Int64
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		switch string(ctx.Path()) {
		case "/admin/balancer":
			var b struct{ Policy string }
			_ = json.Unmarshal(ctx.PostBody(), &b)
			policy.Store(b.Policy)
			puts.Add(1)
			ctx.SetBodyString(`{}`)
		case "/admin/upstreams":
			ctx.SetBodyString(`{"balancer": "` + policy.Load().(string) + `", "upstreams": [{"name": "origin-1", "state": "up", "ewma_ms": 2}]}`)
		}
	}}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown() })
	out, _, err := runArgs(t, "tune", "--campaign", browse, "--edge", edge, "--admin", "http://"+ln.Addr().String(),
		"--policies", "round-robin,p2c-ewma", "--rate", "50", "--duration", "300ms")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "recommended: ") || !strings.Contains(out, "origin-1 up 2.0/0") || puts.Load() != 3 {
		t.Errorf("tune output (%d policy changes):\n%s", puts.Load(), out)
	}
	if policy.Load().(string) != "round-robin" {
		t.Errorf("policy left at %v", policy.Load())
	}
}

func TestApplyCatalogEnv(t *testing.T) {
	cf := campaignFlags{file: "../../configs/campaigns/shop.yaml"}
	cp, err := cf.load()
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"NOVASHOP_PRODUCTS": "20000", "NOVASHOP_CATEGORIES": "20", "NOVASHOP_USERS": "7"}
	if err := applyCatalogEnv(cp, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if got := cp.Feeders["product"].Range; got[0] != 1 || got[1] != 20000 {
		t.Errorf("product range = %v", got)
	}
	if got := cp.Feeders["category"].Range; got[1] != 20 {
		t.Errorf("category range = %v", got)
	}
	if got := cp.Feeders["user"].Users.Count; got != 7 {
		t.Errorf("users = %d", got)
	}
	if got := cp.Feeders["quantity"].Range; got[1] != 2 {
		t.Errorf("an unrelated range changed: %v", got)
	}
	for _, bad := range []string{"0", "-3", "many"} {
		err := applyCatalogEnv(cp, func(k string) string {
			if k == "NOVASHOP_PRODUCTS" {
				return bad
			}
			return ""
		})
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "NOVASHOP_PRODUCTS") {
			t.Errorf("NOVASHOP_PRODUCTS=%s: err = %v", bad, err)
		}
	}
}

// TestCapacityWarmupIsNotATrial: the warm-up reaches the target but is not
// one of the search's trials.
func TestCapacityWarmupIsNotATrial(t *testing.T) {
	var hits atomic.Int64
	srv := shop(t, "", &hits)
	out, _, err := runArgs(t, "capacity", "--campaign", browse, "--target", "a="+srv, "--start", "50", "--max", "50",
		"--trials", "1", "--duration", "200ms", "--p99", "10s", "--min-success", "0.99",
		"--warmup", "400ms", "--warmup-rate", "100")
	if err != nil {
		t.Fatal(err)
	}
	// One 200 ms trial at 50/s is about 10 requests; the 400 ms warm-up at
	// 100/s adds about 40 more.
	if n := hits.Load(); n < 30 {
		t.Errorf("the target saw %d requests; the warm-up did not run", n)
	}
	if strings.Count(out, " pass")+strings.Count(out, " fail") != 1 || strings.Contains(out, "100: ") {
		t.Errorf("capacity output lists the warm-up as a trial:\n%s", out)
	}
	if _, _, err := runArgs(t, "capacity", "--campaign", browse, "--target", "a="+srv, "--warmup", "-1s"); err == nil {
		t.Error("a negative --warmup was accepted")
	}
}

// --cpu on compare and capacity: the test process is both the load
// generator and the servers, so its CPU per request must be positive and
// show up per target, per label and in the table.
func TestCPUPerRequest(t *testing.T) {
	a, b := shop(t, "", nil), shop(t, "", nil)
	dir := t.TempDir()
	cg := filepath.Join(dir, "cg")
	if err := os.MkdirAll(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	// A frozen cgroup: its CPU never moves, so its figure is exactly 0.
	if err := os.WriteFile(filepath.Join(cg, "cpu.stat"), []byte("usage_usec 100\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(os.Getpid())
	jsonPath := filepath.Join(dir, "r.json")
	out, _, err := runArgs(t, "compare", "--campaign", browse, "--target", "a="+a, "--target", "b="+b,
		"--rate", "100", "--duration", "500ms", "--rounds", "2", "--cpu", "self="+pid, "--cgroup", "frozen="+cg, "--json", jsonPath,
		"--html", filepath.Join(dir, "r.html"))
	if err != nil {
		t.Fatal(err)
	}
	// --settle is left at auto: 2s at most with --cpu, and the report says
	// how long it waited.
	if !strings.Contains(out, "cpu µs/req") || !strings.Contains(out, "all runs: frozen 0.0, self ") || !strings.Contains(out, "settle: waited 5 times") {
		t.Errorf("table lacks the cpu figures:\n%s", out)
	}
	var doc struct {
		Targets []struct {
			Name    string             `json:"name"`
			CPU     float64            `json:"cpu_us_per_request"`
			ByLabel map[string]float64 `json:"cpu_us_per_request_by_label"`
		} `json:"targets"`
		CPU map[string]struct {
			PerRequest *float64 `json:"cpu_us_per_request"`
		} `json:"cpu"`
	}
	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, tg := range doc.Targets {
		if tg.CPU <= 0 || tg.ByLabel["self"] != tg.CPU || tg.ByLabel["frozen"] != 0 {
			t.Errorf("target %s: cpu %v by label %v", tg.Name, tg.CPU, tg.ByLabel)
		}
	}
	if p := doc.CPU["self"].PerRequest; p == nil || *p <= 0 {
		t.Errorf("top-level cpu = %s", raw)
	}
	page, err := os.ReadFile(filepath.Join(dir, "r.html"))
	if err != nil || !bytes.Contains(page, []byte("CPU per request")) || !bytes.Contains(page, []byte("settle: waited 5 times")) {
		t.Errorf("html lacks the cpu chart or the settle note: %v", err)
	}
	out, _, err = runArgs(t, "capacity", "--campaign", browse, "--target", "a="+a, "--start", "50", "--max", "100",
		"--trials", "2", "--duration", "300ms", "--p99", "10s", "--min-success", "0.99", "--cpu", "self="+pid)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "cpu µs/req at capacity") || !strings.Contains(out, "cpu µs per request over every trial: self ") || !strings.Contains(out, "settle: waited ") {
		t.Errorf("capacity output:\n%s", out)
	}
}
