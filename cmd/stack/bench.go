package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/internal/stack"
)

// The benchmark drives each target with wrk (a C load generator, so the
// measuring tool costs the same for every peer), in interleaved rounds, and
// reads each proxy's own CPU time from /proc around every run: on two
// shared cores CPU time per request is steadier than requests per second.

type benchFlags struct {
	duration    time.Duration
	rounds      int
	conns       int
	scenarios   string
	jsonOut     string
	bodySize    int
	browseBound time.Duration
	io          string
	idleConns   int
	// haproxy is HAProxy's path when --haproxy is on (a peer in the proxy scenario).
	haproxy string
	// varnish is varnishd's path when --varnish is on (a peer in the hits scenario).
	varnish string
	// tlsBody is the tls scenario's page size; tlsProfile, when set, is
	// where it writes a CPU profile of the edge under TLS keep-alive load.
	tlsBody    int
	tlsProfile string
	// edgeB, when set, is a second edge binary measured beside this build's
	// in the same interleaved rounds (targets edge-b-CORE): an A/B of two builds.
	edgeB string
	// edgeLoops is the --io-loops every edge the bench starts gets (0: the
	// edge's default, one loop per GOMAXPROCS; 1 unless told, so the edge has
	// as many serving threads as its one-worker peers); edgeBLoops, when not -1,
	// overrides it for the --edge-b build, so one run can compare loop counts
	// (--edge-b bin/edge --edge-loops 1 --edge-b-loops 2).
	edgeLoops, edgeBLoops int
	// h2Profile, when set, is where the tls scenario writes a CPU profile of
	// the edge under h2load; tlsParts narrows the tls scenario to some of its
	// parts (keepalive, h2, handshakes) so one of them can be measured alone.
	h2Profile string
	tlsParts  string
	// costRates are the cost scenario's offered rates (req/s, comma-separated)
	// and costWarmup its uncounted warm-up of every target at each rate.
	costRates  string
	costWarmup time.Duration
	// costRRMax is the highest rate at which the cost scenario also runs
	// nginx round-robin (which saturates the origins well below the caches).
	costRRMax int
}

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	var f benchFlags
	fs.DurationVar(&f.duration, "duration", 8*time.Second, "length of one wrk run")
	fs.IntVar(&f.rounds, "rounds", 5, "interleaved rounds per scenario")
	fs.IntVar(&f.conns, "connections", 64, "wrk connections")
	fs.StringVar(&f.scenarios, "scenarios", "proxy,hits,tls,browse,cost", "comma-separated: cost (the browse campaign's whole-system CPU per request, edge set-up vs nginx round-robin vs nginx proxy_cache, at each --cost-rates), proxy (uncached proxying), hits (cache hits), accesslog (cache hits with the access log on, edge vs nginx), idle (RSS per idle keep-alive connection), browse (browse campaign capacity), tls (TLS, HTTP/2, handshakes and compressed hits against nginx)")
	fs.StringVar(&f.jsonOut, "json", "out/bench.json", "where to write the results as JSON")
	fs.IntVar(&f.bodySize, "body", 2048, "response body size of the fixed origins, bytes")
	fs.DurationVar(&f.browseBound, "p99", 20*time.Millisecond, "p99 bound of the browse capacity search")
	fs.StringVar(&f.io, "io", "eventloop,goroutine", "the edge's I/O cores to measure, comma-separated (each is a target: edge-goroutine, edge-eventloop); one core alone is also the cost scenario's edge core")
	fs.IntVar(&f.idleConns, "idle-conns", 12000, "idle keep-alive connections of the idle scenario")
	fs.IntVar(&f.tlsBody, "tls-body", 13000, "page size of the tls scenario, bytes (catalog-like JSON, about 4x compressible)")
	fs.StringVar(&f.tlsProfile, "tls-profile", "out/bench-tls-edge.pprof", "where the tls scenario writes a CPU profile of the edge under TLS keep-alive load (empty: none)")
	fs.StringVar(&f.edgeB, "edge-b", "", "a second edge binary (an older build, say) measured beside bin/edge in the proxy, hits and idle scenarios, each core as target edge-b-CORE; the ratios edge-CORE/edge-b-CORE compare the two builds in the same interleaved rounds")
	fs.IntVar(&f.edgeLoops, "edge-loops", 1, "event loops (the edge's --io-loops) of the edges of the proxy, hits, accesslog, idle and cost scenarios, --edge-b's too (0: the edge's default, one per GOMAXPROCS); 1 by default, as nginx and HAProxy run 1 worker/thread")
	fs.IntVar(&f.edgeBLoops, "edge-b-loops", -1, "event loops of the --edge-b edges (-1: as --edge-loops), to compare loop counts in one run")
	fs.StringVar(&f.h2Profile, "h2-profile", "out/bench-h2-edge.pprof", "where the tls scenario writes a CPU profile of the edge under HTTP/2 load (h2load; empty: none)")
	fs.StringVar(&f.tlsParts, "tls-parts", "keepalive,h2,handshakes", "parts of the tls scenario to run, comma-separated: keepalive (HTTP/1.1 over TLS, wrk), h2 (HTTP/2, h2load), handshakes")
	fs.StringVar(&f.costRates, "cost-rates", "500,3000", "offered rates (req/s) of the cost scenario: the campaign's 500 and a higher one every set-up sustains")
	fs.IntVar(&f.costRRMax, "cost-rr-max", 1000, "highest rate (req/s) at which the cost scenario also runs nginx round-robin: above what it sustains, its backlog in the origins and PostgreSQL spills into the next target's run")
	fs.DurationVar(&f.costWarmup, "cost-warmup", 10*time.Second, "uncounted warm-up of every target at each rate of the cost scenario")
	withHAProxy := fs.Bool("haproxy", true, "add HAProxy (Debian's package, 1 thread) as a peer in the proxy scenario")
	withVarnish := fs.Bool("varnish", true, "add Varnish (Debian's package) as a cache peer in the hits scenario")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := f.validate(); err != nil {
		return usageError{err}
	}
	if f.jsonOut != "" {
		if err := os.MkdirAll(filepath.Dir(f.jsonOut), 0o755); err != nil {
			return err
		}
	}
	need := []string{"wrk", "nginx"}
	if *withHAProxy {
		need = append(need, "haproxy")
	}
	if *withVarnish {
		need = append(need, "varnishd")
	}
	if strings.Contains(f.scenarios, "tls") {
		need = append(need, "h2load")
	}
	bins, err := stack.Ensure(stdout, need...)
	if err != nil {
		return err
	}
	f.haproxy, f.varnish = bins["haproxy"], bins["varnishd"]
	results := map[string]any{"started": time.Now().UTC().Format(time.RFC3339), "rounds": f.rounds,
		"duration": f.duration.String(), "connections": f.conns, "edge_loops": f.edgeLoops}
	fmt.Fprintf(stdout, "bench: edge io loops %s (GOMAXPROCS %d)", loopsText(f.edgeLoops), runtime.GOMAXPROCS(0))
	if f.edgeB != "" {
		results["edge_b_loops"] = f.bLoops()
		fmt.Fprintf(stdout, "; edge-b io loops %s", loopsText(f.bLoops()))
	}
	fmt.Fprintln(stdout)
	for _, sc := range strings.Split(f.scenarios, ",") {
		switch strings.TrimSpace(sc) {
		case "proxy":
			r, err := benchProxy(ctx, f, bins["wrk"], stdout)
			if err != nil {
				return fmt.Errorf("proxy scenario: %w", err)
			}
			results["proxy"] = r
		case "hits":
			r, err := benchHits(ctx, f, bins["wrk"], stdout)
			if err != nil {
				return fmt.Errorf("hits scenario: %w", err)
			}
			results["hits"] = r
		case "accesslog":
			r, err := benchAccessLog(ctx, f, bins["wrk"], stdout)
			if err != nil {
				return fmt.Errorf("accesslog scenario: %w", err)
			}
			results["accesslog"] = r
		case "idle":
			r, err := benchIdle(ctx, f, bins["wrk"], stdout)
			if err != nil {
				return fmt.Errorf("idle scenario: %w", err)
			}
			results["idle"] = r
		case "tls":
			r, err := benchTLS(ctx, f, bins, stdout)
			if err != nil {
				return fmt.Errorf("tls scenario: %w", err)
			}
			results["tls"] = r
		case "cost":
			r, err := benchCost(ctx, f, stdout, stderr)
			if err != nil {
				return fmt.Errorf("cost scenario: %w", err)
			}
			results["cost"] = r
		case "browse":
			if err := benchBrowse(ctx, f, stdout, stderr); err != nil {
				return fmt.Errorf("browse scenario: %w", err)
			}
		case "":
		default:
			return usageError{fmt.Errorf("unknown scenario %q", sc)}
		}
	}
	if f.jsonOut != "" {
		if err := os.MkdirAll(filepath.Dir(f.jsonOut), 0o755); err != nil {
			return err
		}
		b, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(f.jsonOut, b, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "bench: results in %s\n", f.jsonOut)
	}
	return nil
}

// target is one peer under test: where to send load and which processes'
// CPU time to charge it with.
type target struct {
	name string
	url  string
	pids func() []int
	// headers are extra request headers ("Name: value").
	headers []string
}

// wrkRun is one wrk run against one target.
type wrkRun struct {
	RPS       float64 `json:"rps"`
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	CPUusPerR float64 `json:"cpu_us_per_request"`
}

func runWrk(ctx context.Context, wrk string, t target, f benchFlags) (wrkRun, error) {
	before := cpuTicks(t.pids())
	args := []string{"-t1", "-c" + strconv.Itoa(f.conns), "-d" + f.duration.String(), "--latency"}
	for _, h := range t.headers {
		args = append(args, "-H", h)
	}
	cmd := exec.CommandContext(ctx, wrk, append(args, t.url)...)
	out, err := cmd.CombinedOutput()
	after := cpuTicks(t.pids())
	if err != nil {
		return wrkRun{}, fmt.Errorf("wrk %s: %w: %s", t.url, err, out)
	}
	r := parseWrk(string(out))
	if r.Requests > 0 {
		r.CPUusPerR = float64(after-before) * (1e6 / clockTicks) / float64(r.Requests)
	}
	return r, nil
}

const clockTicks = 100 // USER_HZ on Linux

// parseWrk reads requests/s, the latency distribution and errors from wrk's report.
func parseWrk(out string) wrkRun {
	var r wrkRun
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		switch {
		case fields[0] == "Requests/sec:" && len(fields) > 1:
			r.RPS, _ = strconv.ParseFloat(fields[1], 64)
		case fields[0] == "50%" && len(fields) > 1:
			r.P50ms = parseWrkDuration(fields[1])
		case fields[0] == "99%" && len(fields) > 1:
			r.P99ms = parseWrkDuration(fields[1])
		case len(fields) > 3 && fields[1] == "requests" && fields[2] == "in":
			r.Requests, _ = strconv.ParseInt(fields[0], 10, 64)
		case fields[0] == "Non-2xx" && len(fields) > 4:
			n, _ := strconv.ParseInt(fields[4], 10, 64)
			r.Errors += n
		case fields[0] == "Socket" && fields[1] == "errors:":
			for i := 2; i+1 < len(fields); i += 2 {
				n, _ := strconv.ParseInt(strings.TrimSuffix(fields[i+1], ","), 10, 64)
				r.Errors += n
			}
		}
	}
	return r
}

func parseWrkDuration(s string) float64 {
	units := []struct {
		suffix string
		ms     float64
	}{{"us", 1e-3}, {"ms", 1}, {"s", 1e3}, {"m", 6e4}}
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			v, err := strconv.ParseFloat(strings.TrimSuffix(s, u.suffix), 64)
			if err == nil {
				return v * u.ms
			}
		}
	}
	return 0
}

// cpuTicks sums utime+stime of the processes (all their threads).
func cpuTicks(pids []int) int64 {
	var total int64
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		// The command name may contain spaces; fields restart after ")".
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += ut + st
	}
	return total
}

// withChildren returns pid and its direct children (nginx's workers).
func withChildren(pid int) []int {
	return append([]int{pid}, childrenByParent()[pid]...)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

type spread struct {
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

func spreadOf(xs []float64) spread {
	if len(xs) == 0 {
		return spread{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return spread{Min: s[0], Median: median(s), Max: s[len(s)-1]}
}

// scenarioResult is one scenario's table: per-target runs and ratios of
// each target to the reference over rounds (same round, so same noise).
type scenarioResult struct {
	Targets map[string][]wrkRun          `json:"targets"`
	Ratios  map[string]map[string]spread `json:"ratios"`
}

func interleave(ctx context.Context, wrk string, f benchFlags, targets []target, w io.Writer) (scenarioResult, error) {
	return interleavePeers(ctx, wrk, f, targets, nil, w)
}

// interleavePeers is interleave that also reports each edge against the best
// of peers (bestPeerRatios).
func interleavePeers(ctx context.Context, wrk string, f benchFlags, targets []target, peers []string, w io.Writer) (scenarioResult, error) {
	res := scenarioResult{Targets: map[string][]wrkRun{}, Ratios: map[string]map[string]spread{}}
	// Warm every target (connections, caches) before measuring.
	warm := f
	warm.duration = 2 * time.Second
	for _, t := range targets {
		if _, err := runWrk(ctx, wrk, t, warm); err != nil {
			return res, err
		}
	}
	for round := 1; round <= f.rounds; round++ {
		for _, t := range targets {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			r, err := runWrk(ctx, wrk, t, f)
			if err != nil {
				return res, err
			}
			fmt.Fprintf(w, "  round %d %-12s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  cpu %6.1f us/req  errors %d\n",
				round, t.name, r.RPS, r.P50ms, r.P99ms, r.CPUusPerR, r.Errors)
			res.Targets[t.name] = append(res.Targets[t.name], r)
		}
	}
	ref := targets[0].name
	for _, t := range targets[1:] {
		var rps, p99, cpu []float64
		for i := range res.Targets[ref] {
			a, b := res.Targets[ref][i], res.Targets[t.name][i]
			if b.RPS > 0 {
				rps = append(rps, a.RPS/b.RPS)
			}
			if b.P99ms > 0 {
				p99 = append(p99, a.P99ms/b.P99ms)
			}
			if b.CPUusPerR > 0 {
				cpu = append(cpu, a.CPUusPerR/b.CPUusPerR)
			}
		}
		res.Ratios[ref+"/"+t.name] = map[string]spread{"throughput": spreadOf(rps), "p99": spreadOf(p99), "cpu_per_request": spreadOf(cpu)}
	}
	bestPeerRatios(&res, targets, peers)
	printTable(w, targets, res)
	return res, nil
}

func printTable(w io.Writer, targets []target, res scenarioResult) {
	fmt.Fprintf(w, "\n| target | req/s (median) | p99 ms (median) | CPU µs/req (median) | errors |\n|---|---|---|---|---|\n")
	for _, t := range targets {
		var rps, p99, cpu []float64
		var errs int64
		for _, r := range res.Targets[t.name] {
			rps, p99, cpu = append(rps, r.RPS), append(p99, r.P99ms), append(cpu, r.CPUusPerR)
			errs += r.Errors
		}
		fmt.Fprintf(w, "| %s | %.0f | %.2f | %.1f | %d |\n", t.name, median(rps), median(p99), median(cpu), errs)
	}
	fmt.Fprintf(w, "\n| ratio | throughput min / median / max | p99 median | CPU/req median |\n|---|---|---|---|\n")
	names := make([]string, 0, len(res.Ratios))
	for n := range res.Ratios {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r := res.Ratios[n]
		fmt.Fprintf(w, "| %s | %.2f / %.2f / %.2f | %.2f | %.2f |\n", n, r["throughput"].Min, r["throughput"].Median, r["throughput"].Max, r["p99"].Median, r["cpu_per_request"].Median)
	}
	fmt.Fprintln(w)
}

// fixedOrigins starts n fixed-body origin processes (this binary's hidden
// fixed-origin command) and returns them with their host:port addresses.
func fixedOrigins(ctx context.Context, n, size int, cacheable bool) ([]*stack.Server, []string, error) {
	var servers []*stack.Server
	var addrs []string
	for i := 1; i <= n; i++ {
		port, err := stack.FreePort()
		if err != nil {
			return servers, nil, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		args := []string{"fixed-origin", "--listen", addr, "--size", strconv.Itoa(size), "--name", "fixed-" + strconv.Itoa(i)}
		if cacheable {
			args = append(args, "--cacheable")
		}
		s, err := stack.StartServer(ctx, "fixed-"+strconv.Itoa(i), filepath.Join(binDir(), "stack"), args, nil, addr)
		if err != nil {
			return servers, nil, err
		}
		servers = append(servers, s)
		addrs = append(addrs, addr)
	}
	return servers, addrs, nil
}

func stopAll(servers []*stack.Server) {
	for _, s := range servers {
		s.Stop()
	}
}

// ioCores is the --io list.
// validate checks the list flags and --edge-b before anything starts, so a
// typo fails at once instead of after the scenarios before it have run (or,
// in --tls-parts, by silently measuring nothing).
func (f benchFlags) validate() error {
	check := func(flag, list string, known ...string) error {
		for _, v := range strings.Split(list, ",") {
			if v = strings.TrimSpace(v); v != "" && !slices.Contains(known, v) {
				return fmt.Errorf("--%s: unknown %q (known: %s)", flag, v, strings.Join(known, ", "))
			}
		}
		return nil
	}
	if err := check("scenarios", f.scenarios, "proxy", "hits", "accesslog", "idle", "tls", "browse", "cost"); err != nil {
		return err
	}
	if strings.Contains(f.scenarios, "cost") {
		if _, err := parseRates(f.costRates); err != nil {
			return err
		}
	}
	if err := check("tls-parts", f.tlsParts, "keepalive", "h2", "handshakes"); err != nil {
		return err
	}
	if err := check("io", f.io, "eventloop", "goroutine"); err != nil {
		return err
	}
	if f.edgeLoops < 0 || f.edgeLoops > maxEdgeLoops {
		return fmt.Errorf("--edge-loops %d must be 0..%d", f.edgeLoops, maxEdgeLoops)
	}
	if f.edgeBLoops < -1 || f.edgeBLoops > maxEdgeLoops {
		return fmt.Errorf("--edge-b-loops %d must be -1..%d", f.edgeBLoops, maxEdgeLoops)
	}
	if f.edgeB != "" {
		st, err := os.Stat(f.edgeB)
		if err != nil {
			return fmt.Errorf("--edge-b: %w", err)
		}
		if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
			return fmt.Errorf("--edge-b: %s is not an executable file", f.edgeB)
		}
	}
	return nil
}

func (f benchFlags) ioCores() []string {
	var out []string
	for _, c := range strings.Split(f.io, ",") {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		out = []string{"goroutine"}
	}
	return out
}

// maxEdgeLoops is the edge's own io_loops bound (proxy/config.MaxIOLoops).
const maxEdgeLoops = 256

// bLoops is the loop count of the --edge-b edges.
func (f benchFlags) bLoops() int {
	if f.edgeBLoops >= 0 {
		return f.edgeBLoops
	}
	return f.edgeLoops
}

// loopsText names a loop count for the header: 0 is the edge's default.
func loopsText(n int) string {
	if n == 0 {
		return "default (one per GOMAXPROCS)"
	}
	return strconv.Itoa(n)
}

// edgeBuild is one edge binary the bench measures, with its target prefix
// and loop count.
type edgeBuild struct {
	prefix, bin string
	loops       int
}

// edgeBuilds is bin/edge and, with --edge-b, the second build.
func (f benchFlags) edgeBuilds() []edgeBuild {
	builds := []edgeBuild{{"edge-", filepath.Join(binDir(), "edge"), f.edgeLoops}}
	if f.edgeB != "" {
		builds = append(builds, edgeBuild{"edge-b-", f.edgeB, f.bLoops()})
	}
	return builds
}

// loopArgs is the edge's --io-loops for n loops; 0 passes nothing, so the
// edge keeps its default and an older build without the flag still starts.
func loopArgs(n int) []string {
	if n == 0 {
		return nil
	}
	return []string{"--io-loops", strconv.Itoa(n)}
}

// startEdges starts one edge per I/O core and returns them as targets on path.
func startEdges(ctx context.Context, f benchFlags, upstreams []string, redisURL, path string) ([]*stack.Server, []target, error) {
	var servers []*stack.Server
	var targets []target
	for _, core := range f.ioCores() {
		for _, b := range f.edgeBuilds() {
			s, addr, err := startEdge(ctx, b.bin, upstreams, redisURL, "round-robin", core, b.loops)
			if err != nil {
				stopAll(servers)
				return nil, nil, err
			}
			servers = append(servers, s)
			targets = append(targets, target{name: b.prefix + core, url: "http://" + addr + path, pids: func() []int { return []int{s.Pid()} }})
		}
	}
	return servers, targets, nil
}

func startEdge(ctx context.Context, bin string, upstreams []string, redisURL, balancer, core string, loops int) (*stack.Server, string, error) {
	port, err := stack.FreePort()
	if err != nil {
		return nil, "", err
	}
	aport, err := stack.FreePort()
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"--listen", addr, "--admin-listen", "127.0.0.1:" + strconv.Itoa(aport), "--balancer", balancer, "--redis-url", redisURL, "--io", core}
	args = append(args, loopArgs(loops)...)
	for i, u := range upstreams {
		args = append(args, "--upstream", "fixed-"+strconv.Itoa(i+1)+"=http://"+u)
	}
	s, err := stack.StartServer(ctx, "edge", bin, args, []string{"EDGE_ACCESS_LOG=off"}, addr)
	return s, addr, err
}

func benchProxy(ctx context.Context, f benchFlags, wrk string, w io.Writer) (scenarioResult, error) {
	fmt.Fprintf(w, "\n## Uncached proxying: edge (round-robin, no cache) vs nginx (round-robin, keep-alive, 1 worker) and HAProxy (1 thread), 2 fixed %d-byte origins\n", f.bodySize)
	origins, addrs, err := fixedOrigins(ctx, 2, f.bodySize, false)
	defer stopAll(origins)
	if err != nil {
		return scenarioResult{}, err
	}
	edges, targets, err := startEdges(ctx, f, addrs, "", "/api/products/1/")
	if err != nil {
		return scenarioResult{}, err
	}
	defer stopAll(edges)
	ng, naddrs, err := startNginxPeer(ctx, w, addrs)
	if err != nil {
		return scenarioResult{}, err
	}
	defer ng.Stop()
	targets = append(targets, target{name: "nginx", url: "http://" + naddrs[0] + "/api/products/1/", pids: func() []int { return withChildren(ng.Pid()) }})
	if f.haproxy != "" {
		hp, haddr, cleanup, err := startHAProxy(ctx, f.haproxy, addrs)
		if err != nil {
			return scenarioResult{}, err
		}
		defer cleanup()
		defer hp.Stop()
		targets = append(targets, target{name: "haproxy", url: "http://" + haddr + "/api/products/1/", pids: func() []int { return []int{hp.Pid()} }})
	}
	return interleave(ctx, wrk, f, targets, w)
}

// startNginxPeer starts nginx from the project's template in front of addrs:
// the round-robin listener first, the proxy_cache one second. Stop removes
// its temporary directory too.
func startNginxPeer(ctx context.Context, w io.Writer, addrs []string) (*nginxPeer, []string, error) {
	return startNginxPeerWith(ctx, w, addrs, nil)
}

// startNginxPeerWith is startNginxPeer with edit applied to the rendered
// configuration, given nginx's directory (the accesslog scenario turns
// nginx's access log on).
func startNginxPeerWith(ctx context.Context, w io.Writer, addrs []string, edit func(dir, conf string) string) (*nginxPeer, []string, error) {
	dir, err := os.MkdirTemp("", "novashop-bench-nginx-")
	if err != nil {
		return nil, nil, err
	}
	conf, naddrs, err := nginxConf(dir, addrs)
	if err == nil && len(naddrs) < 2 {
		err = errors.New("the nginx template has no proxy_cache listener")
	}
	if err == nil && edit != nil {
		var b []byte
		if b, err = os.ReadFile(conf); err == nil {
			err = os.WriteFile(conf, []byte(edit(dir, string(b))), 0o644)
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	ng, err := stack.StartNginx(ctx, w, conf, naddrs...)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return &nginxPeer{Nginx: ng, dir: dir}, naddrs, nil
}

// nginxPeer is a started nginx and the directory its config and cache live in.
type nginxPeer struct {
	*stack.Nginx
	dir string
}

func (p *nginxPeer) Stop() {
	p.Nginx.Stop()
	os.RemoveAll(p.dir)
}

func benchHits(ctx context.Context, f benchFlags, wrk string, w io.Writer) (scenarioResult, error) {
	fmt.Fprintf(w, "\n## Cache hits on one %d-byte JSON response: edge (Redis client-side cache) vs nginx proxy_cache (1 worker), Varnish (with --varnish) and a bare fasthttp handler (the ceiling)\n", f.bodySize)
	origins, addrs, err := fixedOrigins(ctx, 2, f.bodySize, true)
	defer stopAll(origins)
	if err != nil {
		return scenarioResult{}, err
	}
	redis, err := stack.StartRedis(ctx, w)
	if err != nil {
		return scenarioResult{}, err
	}
	defer redis.Stop()
	path := "/api/products/1/"
	edges, targets, err := startEdges(ctx, f, addrs, redis.URL, path)
	if err != nil {
		return scenarioResult{}, err
	}
	defer stopAll(edges)
	ng, naddrs, err := startNginxPeer(ctx, w, addrs)
	if err != nil {
		return scenarioResult{}, err
	}
	defer ng.Stop()
	targets = append(targets, target{name: "nginx-cache", url: "http://" + naddrs[1] + path, pids: func() []int { return withChildren(ng.Pid()) }})
	peers := []string{"nginx-cache"}
	if f.varnish != "" {
		vs, vaddr, cleanup, err := startVarnish(ctx, f.varnish, addrs)
		if err != nil {
			return scenarioResult{}, err
		}
		defer cleanup()
		defer vs.Stop()
		targets = append(targets, target{name: "varnish", url: "http://" + vaddr + path, pids: func() []int { return withChildren(vs.Pid()) }})
		peers = append(peers, "varnish")
	}
	targets = append(targets, target{name: "fasthttp", url: "http://" + addrs[0] + path, pids: func() []int { return []int{origins[0].Pid()} }})
	return interleavePeers(ctx, wrk, f, targets, peers, w)
}

func benchBrowse(ctx context.Context, f benchFlags, stdout, stderr io.Writer) error {
	fmt.Fprintf(stdout, "\n## Browse campaign capacity at p99 <= %s: edge (cache on) vs nginx round-robin vs nginx proxy_cache\n", f.browseBound)
	sf := stackFlags{origins: 2, categories: 20, products: 20000, users: 200, balancer: "p2c-ewma"}
	o := sf.options(stdout)
	// As nginx's access_log off: the benchmark compares proxies, not loggers.
	o.EdgeEnv = []string{"EDGE_ACCESS_LOG=off"}
	l, err := stack.StartLocal(ctx, o)
	if err != nil {
		return err
	}
	defer l.Stop()
	args := []string{"capacity", "--campaign", filepath.Join(projectDir(), "configs", "campaigns", "browse.yaml"),
		"--target", "edge=" + l.EdgeURL}
	if len(l.NginxURLs) > 1 {
		args = append(args, "--target", "nginx="+l.NginxURLs[0], "--target", "nginx-cache="+l.NginxURLs[1])
	}
	args = append(args, "--p99", f.browseBound.String(), "--duration", f.duration.String(),
		"--start", "200", "--trials", "14", "--confirm", "--warmup", "20s", "--warmup-rate", "300", "--json", filepath.Join(filepath.Dir(f.jsonOut), "bench-browse.json"))
	args = append(args, cpuArgs(l)...)
	fmt.Fprintf(stdout, "bench: loadgen %s\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, filepath.Join(binDir(), "loadgen"), args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Env = append(os.Environ(), "NOVASHOP_PRODUCTS="+strconv.Itoa(sf.products),
		"NOVASHOP_CATEGORIES="+strconv.Itoa(sf.categories), "NOVASHOP_USERS="+strconv.Itoa(sf.users))
	return cmd.Run()
}

// cmdFixedOrigin is the bench's fixed-body origin: a bare fasthttp handler
// answering the same bytes from memory (also the ceiling for cache hits).
func cmdFixedOrigin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("fixed-origin", stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	size := fs.Int("size", 2048, "body size in bytes")
	name := fs.String("name", "fixed", "X-Served-By value")
	cacheable := fs.Bool("cacheable", false, "mark responses public with s-maxage=3600")
	catalog := fs.Bool("catalog", false, "serve a catalog-like JSON page (compresses like a real one) instead of one padded with a single byte")
	if err := parse(fs, args); err != nil {
		return err
	}
	body := fixedJSON(*size)
	if *catalog {
		body = catalogJSON(*size)
	}
	cc := "no-store"
	if *cacheable {
		cc = "public, max-age=0, s-maxage=3600"
	}
	srv := &fasthttp.Server{
		Handler: func(c *fasthttp.RequestCtx) {
			c.Response.Header.Set("X-Served-By", *name)
			c.Response.Header.Set("Cache-Control", cc)
			c.Response.Header.Set("Cache-Tag", "product:1")
			c.SetContentType("application/json")
			c.SetBody(body)
		},
		Name:                          "fixed-origin",
		NoDefaultDate:                 true,
		DisableHeaderNamesNormalizing: false,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe(*listen) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return srv.Shutdown()
	}
}

// fixedJSON is a product-shaped JSON document padded to size bytes.
func fixedJSON(size int) []byte {
	head := `{"id":1,"name":"Benchmark product","price":"129.99","stock":10,"category":{"id":1,"name":"Bench"},"description":"`
	tail := `"}`
	n := size - len(head) - len(tail)
	if n < 0 {
		n = 0
	}
	return []byte(head + strings.Repeat("x", n) + tail)
}

// idleRun is one idle-connection measurement of one target.
type idleRun struct {
	Conns       int     `json:"conns"`
	RSSBeforeKB int64   `json:"rss_before_kb"`
	RSSAfterKB  int64   `json:"rss_after_kb"`
	BytesPer    float64 `json:"rss_bytes_per_conn"`
	// RPSAlone and RPSWithIdle are a short wrk run before the idle connections
	// open and while they are open: the target must keep serving meanwhile.
	RPSAlone    float64 `json:"rps_alone"`
	RPSWithIdle float64 `json:"rps_with_idle"`
}

// benchIdle opens f.idleConns keep-alive connections to each target, each of
// which sends one request and reads its answer, and charges the growth of the
// target's resident memory to them: what an edge facing browsers pays per idle
// client.
func benchIdle(ctx context.Context, f benchFlags, wrk string, w io.Writer) (map[string][]idleRun, error) {
	fmt.Fprintf(w, "\n## Idle keep-alive connections: RSS per connection with %d open (each sent one request)\n", f.idleConns)
	origins, addrs, err := fixedOrigins(ctx, 2, f.bodySize, false)
	defer stopAll(origins)
	if err != nil {
		return nil, err
	}
	path := "/api/products/1/"
	edges, targets, err := startEdges(ctx, f, addrs, "", path)
	if err != nil {
		return nil, err
	}
	defer stopAll(edges)
	ng, naddrs, err := startNginxPeer(ctx, w, addrs)
	if err != nil {
		return nil, err
	}
	defer ng.Stop()
	targets = append(targets, target{name: "nginx", url: "http://" + naddrs[0] + path, pids: func() []int { return withChildren(ng.Pid()) }})
	res := map[string][]idleRun{}
	rounds := min(f.rounds, 3)
	for round := 1; round <= rounds; round++ {
		for _, t := range targets {
			short := f
			short.duration = 3 * time.Second
			alone, err := runWrk(ctx, wrk, t, short)
			if err != nil {
				return res, err
			}
			var with wrkRun
			r, err := measureIdle(ctx, t, f.idleConns, func() error {
				var err error
				with, err = runWrk(ctx, wrk, t, short)
				if err == nil && with.Errors > 0 {
					err = fmt.Errorf("%d errors under load with idle connections open", with.Errors)
				}
				return err
			})
			if err != nil {
				return res, fmt.Errorf("%s: %w", t.name, err)
			}
			r.RPSAlone, r.RPSWithIdle = alone.RPS, with.RPS
			fmt.Fprintf(w, "  round %d %-15s %d conns  RSS %d -> %d KB  %.0f bytes/conn  req/s %.0f alone, %.0f with them open\n",
				round, t.name, r.Conns, r.RSSBeforeKB, r.RSSAfterKB, r.BytesPer, r.RPSAlone, r.RPSWithIdle)
			res[t.name] = append(res[t.name], r)
		}
	}
	// A process keeps the memory its first round grew (Go's heap and stacks,
	// nginx's pools), so later rounds measure reuse, not cost: the first
	// round, on a fresh process, is the figure.
	fmt.Fprintf(w, "\n| target | RSS bytes per idle connection (first round, fresh process) | later rounds (reuse) |\n|---|---|---|\n")
	for _, t := range targets {
		var later []float64
		for _, r := range res[t.name][1:] {
			later = append(later, r.BytesPer)
		}
		fmt.Fprintf(w, "| %s | %.0f | %.0f |\n", t.name, res[t.name][0].BytesPer, median(later))
	}
	// Each edge core beside nginx as a ratio (first rounds: fresh processes).
	if ng := res["nginx"]; len(ng) > 0 && ng[0].BytesPer > 0 {
		fmt.Fprintf(w, "\n| ratio | RSS per idle connection, first round | req/s with them open / alone |\n|---|---|---|\n")
		for _, t := range targets {
			r := res[t.name][0]
			keep := 0.0
			if r.RPSAlone > 0 {
				keep = r.RPSWithIdle / r.RPSAlone
			}
			if t.name != "nginx" {
				fmt.Fprintf(w, "| %s/nginx | %.1f× | %.2f |\n", t.name, r.BytesPer/ng[0].BytesPer, keep)
			}
		}
	}
	fmt.Fprintln(w)
	return res, nil
}

// measureIdle opens the connections, reads the RSS, then runs during (a load
// run) while they are still open.
func measureIdle(ctx context.Context, t target, n int, during func() error) (idleRun, error) {
	u := strings.TrimPrefix(t.url, "http://")
	addr, path, _ := strings.Cut(u, "/")
	req := []byte("GET /" + path + " HTTP/1.1\r\nHost: bench\r\n\r\n")
	r := idleRun{RSSBeforeKB: rssKB(t.pids())}
	conns := make([]net.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	const workers = 16
	errc := make(chan error, workers)
	for k := 0; k < workers; k++ {
		go func(k int) {
			var resp fasthttp.Response
			for i := k; i < n; i += workers {
				if ctx.Err() != nil {
					errc <- ctx.Err()
					return
				}
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					errc <- err
					return
				}
				conns[i] = c
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write(req); err != nil {
					errc <- err
					return
				}
				if err := resp.Read(bufio.NewReaderSize(c, 4096)); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}(k)
	}
	for k := 0; k < workers; k++ {
		if err := <-errc; err != nil {
			return r, err
		}
	}
	time.Sleep(time.Second)
	r.Conns = n
	r.RSSAfterKB = rssKB(t.pids())
	r.BytesPer = float64(r.RSSAfterKB-r.RSSBeforeKB) * 1024 / float64(n)
	return r, during()
}

// rssKB sums VmRSS of the processes.
func rssKB(pids []int) int64 {
	var total int64
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				v, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				total += v
			}
		}
	}
	return total
}

// startHAProxy starts HAProxy (Debian's package, one thread, keep-alive to the
// origins, access log off like every peer) balancing round-robin over addrs.
func startHAProxy(ctx context.Context, bin string, addrs []string) (*stack.Server, string, func(), error) {
	dir, addr, cleanup, err := peerPlace("haproxy")
	if err != nil {
		return nil, "", nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "global\n  nbthread 1\n  maxconn 9000\n\ndefaults\n  mode http\n  timeout connect 3s\n  timeout client 60s\n  timeout server 30s\n  option http-keep-alive\n  http-reuse always\n\n")
	fmt.Fprintf(&b, "frontend fe\n  bind %s\n  default_backend be\n\nbackend be\n  balance roundrobin\n", addr)
	for i, a := range addrs {
		fmt.Fprintf(&b, "  server s%d %s\n", i+1, a)
	}
	conf := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		cleanup()
		return nil, "", nil, err
	}
	s, err := stack.StartServer(ctx, "haproxy", bin, []string{"-db", "-f", conf}, nil, addr)
	if err != nil {
		cleanup()
		return nil, "", nil, err
	}
	return s, addr, cleanup, nil
}
