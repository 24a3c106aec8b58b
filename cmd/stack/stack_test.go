package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/internal/stack"
)

func TestParseWrk(t *testing.T) {
	out := `Running 2s test @ http://127.0.0.1:8080/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   1.05ms  300.00us   9.00ms   90.00%
  Latency Distribution
     50%  980.00us
     75%    1.10ms
     90%    1.30ms
     99%    2.50ms
  120000 requests in 2.00s, 30.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:  60000.50
Transfer/sec:     15.00MB
`
	r := parseWrk(out)
	want := wrkRun{RPS: 60000.50, P50ms: 0.98, P99ms: 2.5, Requests: 120000, Errors: 8}
	if r != want {
		t.Fatalf("parseWrk = %+v, want %+v", r, want)
	}
}

func TestSpreadAndMedian(t *testing.T) {
	cases := []struct {
		in   []float64
		want spread
	}{
		{nil, spread{}},
		{[]float64{3}, spread{3, 3, 3}},
		{[]float64{4, 1, 2, 3}, spread{1, 2.5, 4}},
		{[]float64{5, 1, 3}, spread{1, 3, 5}},
	}
	for _, c := range cases {
		if got := spreadOf(c.in); got != c.want {
			t.Errorf("spreadOf(%v) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestCPUTicksOfSelfGrows(t *testing.T) {
	pid := os.Getpid()
	before := cpuTicks([]int{pid})
	deadline := time.Now().Add(200 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	if after := cpuTicks([]int{pid}); after <= before {
		t.Fatalf("cpu ticks did not grow after 200ms of work: %d -> %d (x=%d)", before, after, x)
	}
}

func TestFixedJSONSize(t *testing.T) {
	for _, n := range []int{2048, 512, 10} {
		b := fixedJSON(n)
		if n >= 200 && len(b) != n {
			t.Errorf("fixedJSON(%d) has %d bytes", n, len(b))
		}
		if !bytes.HasPrefix(b, []byte("{")) || !bytes.HasSuffix(b, []byte("}")) {
			t.Errorf("fixedJSON(%d) is not an object", n)
		}
	}
}

// TestNginxPeer starts the nginx peer the demo and bench use in front of a
// real origin and checks both of its servers: round-robin passes every
// request through, proxy_cache answers repeats without the origin.
func TestNginxPeer(t *testing.T) {
	var hits atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		hits.Add(1)
		c.Response.Header.Set("Cache-Control", "public, s-maxage=60")
		c.SetBodyString(`{"ok":true}`)
	}}
	go srv.Serve(ln)     //nolint:errcheck
	defer srv.Shutdown() //nolint:errcheck

	dir := t.TempDir()
	conf, addrs, err := nginxConf(dir, []string{ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	// Install nginx (when missing) before its start's deadline begins.
	if _, err := stack.NginxBinary(os.Stderr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ng, err := stack.StartNginx(ctx, os.Stderr, conf, addrs...)
	if err != nil {
		t.Fatal(err)
	}
	defer ng.Stop()
	get := func(addr string) string {
		resp, err := http.Get("http://" + addr + "/api/products/1/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			el, _ := os.ReadFile(dir + "/error.log")
			t.Logf("error.log: %s", el)
			t.Fatalf("GET via %s: %d %s", addr, resp.StatusCode, b)
		}
		return string(b)
	}
	for i := 0; i < 3; i++ {
		if b := get(addrs[0]); !strings.Contains(b, "ok") {
			t.Fatalf("round-robin body %q", b)
		}
	}
	if n := hits.Load(); n != 3 {
		t.Fatalf("round-robin server: origin saw %d requests, want 3", n)
	}
	for i := 0; i < 3; i++ {
		get(addrs[1])
	}
	if n := hits.Load(); n != 4 {
		t.Fatalf("proxy_cache server: origin saw %d requests in all, want 4 (one miss, two hits)", n)
	}
}

// cpuArgs' process walk finds a child of a child, as it must for nginx's
// workers under a master and PostgreSQL's backends under the postmaster.
func TestWithDescendantsFindsGrandchildren(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 5 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	deadline := time.Now().Add(3 * time.Second)
	for {
		got := withDescendants(os.Getpid(), childrenByParent())
		if len(got) >= 3 && slices.Contains(got, cmd.Process.Pid) && got[0] == os.Getpid() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("descendants of the test = %v, want it, sh %d and sh's sleep", got, cmd.Process.Pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWithDescendantsTable(t *testing.T) {
	children := map[int][]int{1: {2, 3}, 3: {4}, 9: {10}}
	if got := withDescendants(1, children); !slices.Equal(got, []int{1, 2, 3, 4}) {
		t.Fatalf("withDescendants = %v", got)
	}
	if got := withDescendants(7, children); !slices.Equal(got, []int{7}) {
		t.Fatalf("leaf = %v", got)
	}
}

func TestParseH2Load(t *testing.T) {
	out := `starting benchmark...
finished in 5.00s, 12345.67 req/s, 150.00MB/s
requests: 61728 total, 61800 started, 61728 done, 61700 succeeded, 28 failed, 0 errored, 0 timeout
status codes: 61700 2xx, 0 3xx, 0 4xx, 28 5xx
`
	r := parseH2Load(out)
	if r.RPS != 12345.67 || r.Requests != 61700 || r.Errors != 28 {
		t.Fatalf("parseH2Load = %+v", r)
	}
}

// The tls scenario's page must compress like a real catalog page (3-6x with
// gzip), not like a run of one byte, and be about the size asked for.
func TestCatalogJSONCompressesLikeAPage(t *testing.T) {
	b := catalogJSON(13000)
	if len(b) < 12000 || len(b) > 13000 || !json.Valid(b) {
		t.Fatalf("catalogJSON(13000): %d bytes, valid JSON %v", len(b), json.Valid(b))
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(b)
	zw.Close()
	if r := float64(len(b)) / float64(z.Len()); r < 3 || r > 6 {
		t.Fatalf("gzip shrinks the page %.1fx, want 3-6x", r)
	}
}

// Bench's list flags and --edge-b are checked before anything starts.
func TestBenchFlagsValidate(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ok := benchFlags{scenarios: "proxy, hits,tls", tlsParts: "keepalive,h2,handshakes", io: "eventloop,goroutine", edgeBLoops: -1}
	for _, tc := range []struct {
		name string
		edit func(*benchFlags)
		want string // "" means valid
	}{
		{"defaults", func(*benchFlags) {}, ""},
		{"an older build", func(f *benchFlags) { f.edgeB = exe }, ""},
		{"unknown scenario", func(f *benchFlags) { f.scenarios = "proxy,hit" }, `--scenarios: unknown "hit"`},
		{"unknown tls part", func(f *benchFlags) { f.tlsParts = "h3" }, `--tls-parts: unknown "h3"`},
		{"unknown core", func(f *benchFlags) { f.io = "epoll" }, `--io: unknown "epoll"`},
		{"missing edge-b", func(f *benchFlags) { f.edgeB = "/nonexistent/edge" }, "--edge-b: stat /nonexistent/edge"},
		{"edge-b a directory", func(f *benchFlags) { f.edgeB = t.TempDir() }, "is not an executable file"},
		{"cost rates", func(f *benchFlags) { f.scenarios, f.costRates = "cost", "500, 3000" }, ""},
		{"cost rate not a number", func(f *benchFlags) { f.scenarios, f.costRates = "cost", "500,fast" }, `--cost-rates: "fast"`},
		{"cost rate zero", func(f *benchFlags) { f.scenarios, f.costRates = "cost", "0" }, `--cost-rates: "0"`},
		{"cost without a rate", func(f *benchFlags) { f.scenarios, f.costRates = "cost", " , " }, "--cost-rates: no rate"},
		{"cost rates ignored without cost", func(f *benchFlags) { f.costRates = "fast" }, ""},
		{"one edge loop", func(f *benchFlags) { f.edgeLoops, f.edgeBLoops = 1, 2 }, ""},
		{"negative edge loops", func(f *benchFlags) { f.edgeLoops = -1 }, "--edge-loops -1 must be 0..256"},
		{"too many edge loops", func(f *benchFlags) { f.edgeLoops = 257 }, "--edge-loops 257 must be 0..256"},
		{"edge-b loops below -1", func(f *benchFlags) { f.edgeBLoops = -2 }, "--edge-b-loops -2 must be -1..256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := ok
			tc.edit(&f)
			err := f.validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("valid flags refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestEdgeBuildsLoops: --edge-loops reaches every edge the bench starts, the
// --edge-b one too unless --edge-b-loops overrides it, and 0 passes no flag
// (the edge's default; an older build without --io-loops still starts).
func TestEdgeBuildsLoops(t *testing.T) {
	for _, tc := range []struct {
		name          string
		edgeB         string
		loops, bLoops int
		want          []string // per build: prefix and its loop args
	}{
		{"default", "", 0, -1, []string{"edge- []"}},
		{"one loop", "", 1, -1, []string{"edge- [--io-loops 1]"}},
		{"edge-b follows", "/x/edge", 1, -1, []string{"edge- [--io-loops 1]", "edge-b- [--io-loops 1]"}},
		{"1 vs 2 in one run", "/x/edge", 1, 2, []string{"edge- [--io-loops 1]", "edge-b- [--io-loops 2]"}},
		{"edge-b back to the default", "/x/edge", 1, 0, []string{"edge- [--io-loops 1]", "edge-b- []"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := benchFlags{edgeB: tc.edgeB, edgeLoops: tc.loops, edgeBLoops: tc.bLoops}
			var got []string
			for _, b := range f.edgeBuilds() {
				got = append(got, fmt.Sprintf("%s %v", b.prefix, loopArgs(b.loops)))
				if b.prefix == "edge-b-" && b.bin != tc.edgeB {
					t.Errorf("edge-b binary %q, want %q", b.bin, tc.edgeB)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("builds %q, want %q", got, tc.want)
			}
		})
	}
}

// The cost scenario's ratios are taken per repetition, and a target counts as
// met only when the median ratio is within its bound and the median p99 ratio
// is at most 1.
func TestCostRatios(t *testing.T) {
	run := func(cpu, p99 float64) costRun { return costRun{CPUusPerR: cpu, P99ms: p99} }
	for _, tc := range []struct {
		name    string
		edge    []costRun
		nginx   []costRun
		cache   []costRun
		wantMed map[string]float64
		wantMet map[string]bool
	}{
		{"both met", []costRun{run(10, 1), run(20, 1), run(30, 1)},
			[]costRun{run(200, 2), run(400, 2), run(300, 2)}, []costRun{run(40, 2), run(50, 2), run(60, 2)},
			map[string]float64{"edge/nginx": 0.05, "edge/nginx-cache": 0.4},
			map[string]bool{"edge/nginx": true, "edge/nginx-cache": true}},
		{"cpu met, p99 worse", []costRun{run(10, 3), run(10, 3), run(10, 3)},
			[]costRun{run(200, 2), run(200, 2), run(200, 2)}, []costRun{run(100, 2), run(100, 2), run(100, 2)},
			map[string]float64{"edge/nginx": 0.05, "edge/nginx-cache": 0.1},
			map[string]bool{"edge/nginx": false, "edge/nginx-cache": false}},
		{"cpu not met", []costRun{run(200, 1)}, []costRun{run(800, 2)}, []costRun{run(170, 2)},
			map[string]float64{"edge/nginx": 0.25, "edge/nginx-cache": 200.0 / 170},
			map[string]bool{"edge/nginx": false, "edge/nginx-cache": false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ratios, met := costRatios(map[string][]costRun{"edge": tc.edge, "nginx": tc.nginx, "nginx-cache": tc.cache})
			for name, want := range tc.wantMed {
				if got := ratios[name]["cpu_per_request"].Median; math.Abs(got-want) > 1e-9 {
					t.Errorf("%s median CPU ratio %v, want %v", name, got, want)
				}
				if met[name] != tc.wantMet[name] {
					t.Errorf("%s met %v, want %v", name, met[name], tc.wantMet[name])
				}
			}
		})
	}
}

// A target sustains a rate when its median p99 is within the bound and no
// repetition lost more than 0.1 % of its requests.
func TestCostSustained(t *testing.T) {
	runs := map[string][]costRun{
		"fast":   {{P99ms: 3, Success: 1}, {P99ms: 30, Success: 1}, {P99ms: 4, Success: 0.9995}},
		"slow":   {{P99ms: 25, Success: 1}, {P99ms: 30, Success: 1}, {P99ms: 4, Success: 1}},
		"lossy":  {{P99ms: 3, Success: 1}, {P99ms: 3, Success: 0.99}, {P99ms: 3, Success: 1}},
		"absent": nil,
	}
	want := map[string]bool{"fast": true, "slow": false, "lossy": false, "absent": false}
	got := sustained(runs, 20*time.Millisecond)
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s sustained %v, want %v", name, got[name], w)
		}
	}
}

// The cost scenario's edge runs the one core --io names (the default list of
// two leaves the edge's own default) and --edge-loops when set.
func TestCostEdgeEnv(t *testing.T) {
	tests := []struct {
		io    string
		loops int
		want  string
	}{
		{"eventloop,goroutine", 0, ""},
		{"eventloop", 0, "EDGE_IO=eventloop"},
		{"goroutine", 1, "EDGE_IO=goroutine EDGE_IO_LOOPS=1"},
		{"eventloop,goroutine", 2, "EDGE_IO_LOOPS=2"},
	}
	for _, tt := range tests {
		got := strings.Join(costEdgeEnv(benchFlags{io: tt.io, edgeLoops: tt.loops}), " ")
		if got != tt.want {
			t.Errorf("--io %s --edge-loops %d: %q, want %q", tt.io, tt.loops, got, tt.want)
		}
	}
}
