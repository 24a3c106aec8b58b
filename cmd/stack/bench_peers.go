package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/novashop/edge/internal/stack"
)

// peerPlace makes a peer's scratch directory (its config, its files) and
// picks a free loopback address for it; cleanup removes the directory.
func peerPlace(name string) (dir, addr string, cleanup func(), err error) {
	dir, err = os.MkdirTemp("", "novashop-bench-"+name+"-")
	if err != nil {
		return "", "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	port, err := stack.FreePort()
	if err != nil {
		cleanup()
		return "", "", nil, err
	}
	return dir, "127.0.0.1:" + strconv.Itoa(port), cleanup, nil
}

// startVarnish starts Varnish (Debian's package, its default thread pools,
// a 256 MB malloc store) as a caching peer in front of addrs, balancing
// round-robin. It honours the origins' s-maxage like nginx proxy_cache and the
// edge. Its children (the cache process) are charged with the manager.
func startVarnish(ctx context.Context, bin string, addrs []string) (*stack.Server, string, func(), error) {
	dir, addr, cleanup, err := peerPlace("varnish")
	if err != nil {
		return nil, "", nil, err
	}
	var b strings.Builder
	b.WriteString("vcl 4.1;\nimport directors;\n\n")
	for i, a := range addrs {
		host, p, _ := strings.Cut(a, ":")
		fmt.Fprintf(&b, "backend b%d { .host = %q; .port = %q; }\n", i+1, host, p)
	}
	b.WriteString("\nsub vcl_init {\n  new rr = directors.round_robin();\n")
	for i := range addrs {
		fmt.Fprintf(&b, "  rr.add_backend(b%d);\n", i+1)
	}
	b.WriteString("}\n\nsub vcl_recv {\n  set req.backend_hint = rr.backend();\n}\n\n")
	// As nginx's proxy_hide_header and the edge: the tag header stays inside.
	b.WriteString("sub vcl_deliver {\n  unset resp.http.Cache-Tag;\n}\n")
	vcl := filepath.Join(dir, "bench.vcl")
	if err := os.WriteFile(vcl, []byte(b.String()), 0o644); err != nil {
		cleanup()
		return nil, "", nil, err
	}
	// varnishd drops to its own users (varnish, vcache): they must reach the
	// VCL and the working directory.
	openPath(dir)
	args := []string{"-F", "-a", addr, "-f", vcl, "-n", filepath.Join(dir, "work"), "-s", "malloc,256m"}
	s, err := stack.StartServer(ctx, "varnish", bin, args, nil, addr)
	if err != nil {
		cleanup()
		return nil, "", nil, err
	}
	return s, addr, cleanup, nil
}

// bestPeerRatios adds, for every edge target, its ratio to the best peer of the
// same round: req/s against the highest peer's, CPU per request and p99
// against the lowest peer's. Peers are the targets named in peers.
func bestPeerRatios(res *scenarioResult, targets []target, peers []string) {
	if len(peers) == 0 {
		return
	}
	for _, t := range targets {
		if !strings.HasPrefix(t.name, "edge") || strings.HasSuffix(t.name, "-nolog") {
			continue
		}
		var rps, p99, cpu []float64
		for i, a := range res.Targets[t.name] {
			var bestRPS, bestP99, bestCPU float64
			for j, p := range peers {
				runs := res.Targets[p]
				if i >= len(runs) {
					continue
				}
				r := runs[i]
				if j == 0 || r.RPS > bestRPS {
					bestRPS = r.RPS
				}
				if j == 0 || (r.P99ms > 0 && r.P99ms < bestP99) {
					bestP99 = r.P99ms
				}
				if j == 0 || (r.CPUusPerR > 0 && r.CPUusPerR < bestCPU) {
					bestCPU = r.CPUusPerR
				}
			}
			if bestRPS > 0 {
				rps = append(rps, a.RPS/bestRPS)
			}
			if bestP99 > 0 {
				p99 = append(p99, a.P99ms/bestP99)
			}
			if bestCPU > 0 {
				cpu = append(cpu, a.CPUusPerR/bestCPU)
			}
		}
		res.Ratios[t.name+"/best-peer"] = map[string]spread{"throughput": spreadOf(rps), "p99": spreadOf(p99), "cpu_per_request": spreadOf(cpu)}
	}
}

// startLoggedEdges starts one edge per I/O core with its access log on for
// every request (sample 1, the default 64 KiB buffers and 1s flush), writing
// to logDir/edge-CORE.log: a file, like nginx's, rather than a pipe to this
// process.
func startLoggedEdges(ctx context.Context, f benchFlags, upstreams []string, redisURL, path, logDir string) ([]*stack.Server, []target, error) {
	conf := filepath.Join(logDir, "edge-accesslog.yaml")
	if err := os.WriteFile(conf, []byte("access_log: {enabled: true, sample: 1, buffer_bytes: 65536, flush_interval: 1s}\n"), 0o644); err != nil {
		return nil, nil, err
	}
	var servers []*stack.Server
	var targets []target
	for _, core := range f.ioCores() {
		port, err := stack.FreePort()
		if err == nil {
			var aport int
			if aport, err = stack.FreePort(); err == nil {
				addr := "127.0.0.1:" + strconv.Itoa(port)
				args := []string{"--config", conf, "--listen", addr, "--admin-listen", "127.0.0.1:" + strconv.Itoa(aport),
					"--balancer", "round-robin", "--redis-url", redisURL, "--io", core}
				args = append(args, loopArgs(f.edgeLoops)...)
				for i, u := range upstreams {
					args = append(args, "--upstream", "fixed-"+strconv.Itoa(i+1)+"=http://"+u)
				}
				// exec keeps the pid: the shell becomes the edge, stderr on the file.
				logFile := filepath.Join(logDir, "edge-"+core+".log")
				sh := append([]string{"-c", `exec "$0" "$@" 2>>` + logFile, filepath.Join(binDir(), "edge")}, args...)
				var s *stack.Server
				if s, err = stack.StartServer(ctx, "edge", "/bin/sh", sh, []string{"EDGE_ACCESS_LOG=on"}, addr); err == nil {
					servers = append(servers, s)
					targets = append(targets, target{name: "edge-" + core, url: "http://" + addr + path, pids: func() []int { return []int{s.Pid()} }})
					continue
				}
			}
		}
		stopAll(servers)
		return nil, nil, err
	}
	return servers, targets, nil
}

// nginxAccessLog is the nginx peer's access log for the accesslog scenario:
// buffered as the edge's (64 KiB, flushed every second) and the same fields
// as the edge's JSON line, so both sides format and write the same thing.
const nginxAccessLog = `log_format edgejson escape=json '{"level":"info","ts":"$time_iso8601","msg":"access","method":"$request_method","uri":"$request_uri","status":$status,"upstream":"$upstream_addr","tries":1,"duration":$request_time,"client":"$remote_addr","request_id":"$request_id"}';
    access_log %s edgejson buffer=64k flush=1s;`

// benchAccessLog compares cache hits with the access log on for every request
// on both sides: the edge (both cores) against nginx proxy_cache, CPU per hit.
func benchAccessLog(ctx context.Context, f benchFlags, wrk string, w io.Writer) (scenarioResult, error) {
	fmt.Fprintf(w, "\n## Cache hits with the access log on (every request, buffered 64 KiB / 1 s, same JSON fields, to a file): edge vs nginx proxy_cache (1 worker), one %d-byte JSON response\n", f.bodySize)
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
	logDir, err := os.MkdirTemp("", "novashop-bench-accesslog-")
	if err != nil {
		return scenarioResult{}, err
	}
	defer os.RemoveAll(logDir)
	path := "/api/products/1/"
	edges, targets, err := startLoggedEdges(ctx, f, addrs, redis.URL, path, logDir)
	if err != nil {
		return scenarioResult{}, err
	}
	defer stopAll(edges)
	// The first core again with its log off: what logging costs the edge, in
	// the same rounds.
	nf := f
	nf.io = f.ioCores()[0]
	plain, ptargets, err := startEdges(ctx, nf, addrs, redis.URL, path)
	if err != nil {
		return scenarioResult{}, err
	}
	defer stopAll(plain)
	for i := range ptargets {
		ptargets[i].name += "-nolog"
	}
	ng, naddrs, err := startNginxPeerWith(ctx, w, addrs, func(dir, conf string) string {
		return strings.Replace(conf, "access_log off;", fmt.Sprintf(nginxAccessLog, filepath.Join(dir, "access.log")), 1)
	})
	if err != nil {
		return scenarioResult{}, err
	}
	defer ng.Stop()
	targets = append(targets, target{name: "nginx-cache", url: "http://" + naddrs[1] + path, pids: func() []int { return withChildren(ng.Pid()) }})
	targets = append(targets, ptargets...)
	res, err := interleavePeers(ctx, wrk, f, targets, []string{"nginx-cache"}, w)
	if err != nil {
		return res, err
	}
	// The logs must hold a line per request: a logger that silently dropped
	// lines would win this comparison for the wrong reason. Both flush a
	// second after the last line at the latest.
	time.Sleep(2 * time.Second)
	for _, t := range targets {
		if strings.HasSuffix(t.name, "-nolog") {
			continue
		}
		file := filepath.Join(logDir, t.name+".log")
		if t.name == "nginx-cache" {
			file = filepath.Join(ng.dir, "access.log")
		}
		var sent int64
		for _, r := range res.Targets[t.name] {
			sent += r.Requests
		}
		lines := countLines(file)
		fmt.Fprintf(w, "  %s: %d access log lines for %d measured requests (plus warm-up)\n", t.name, lines, sent)
		if lines < sent {
			return res, fmt.Errorf("%s logged %d lines for at least %d requests", t.name, lines, sent)
		}
	}
	return res, nil
}

// countLines counts the newlines in a file (0 when it cannot be read).
func countLines(file string) int64 {
	fh, err := os.Open(file)
	if err != nil {
		return 0
	}
	defer fh.Close()
	var n int64
	buf := make([]byte, 1<<20)
	for {
		k, err := fh.Read(buf)
		for _, c := range buf[:k] {
			if c == '\n' {
				n++
			}
		}
		if err != nil {
			return n
		}
	}
}
