package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/novashop/edge/internal/stack"
)

// The tls scenario: the edge and nginx (1 worker) terminate TLS with the same
// ECDSA P-256 certificate from a throwaway local CA, in front of the same two
// fixed origins serving a cacheable catalog-like JSON page (13 KB by default,
// about 4x compressible like a storefront page), both caching it. Measured in
// interleaved rounds, CPU time of the proxy's processes read from /proc:
//
//   - keep-alive HTTP/1.1 over TLS 1.3 (wrk, which uses OpenSSL): identity
//     hits, and gzip and brotli hits (the edge compresses once per encoding
//     and keeps the result; nginx's gzip filter compresses every answer, at
//     its default level 1) — plus the edge over plaintext for the cost of TLS;
//   - HTTP/2 over TLS (h2load, nghttp2's load generator);
//   - new connections per second with a full handshake and with a resumed
//     one (session ticket), each carrying one request, from a Go client in
//     this process (X25519 only, so both servers do the same key exchange).

const tlsBenchPath = "/api/products/1/"

// tlsBenchResult is the JSON of the tls scenario.
type tlsBenchResult struct {
	KeepAlive  scenarioResult               `json:"keep_alive"`
	HTTP2      map[string][]wrkRun          `json:"http2"`
	Handshakes map[string][]wrkRun          `json:"handshakes"`
	Ratios     map[string]map[string]spread `json:"ratios"`
	BodyBytes  int                          `json:"body_bytes"`
}

func benchTLS(ctx context.Context, f benchFlags, bins map[string]string, w io.Writer) (tlsBenchResult, error) {
	res := tlsBenchResult{HTTP2: map[string][]wrkRun{}, Handshakes: map[string][]wrkRun{}, Ratios: map[string]map[string]spread{}, BodyBytes: f.tlsBody}
	fmt.Fprintf(w, "\n## TLS 1.3, ECDSA P-256 (same certificate): edge vs nginx (1 worker), cached %d-byte catalog JSON, 2 fixed origins\n", f.tlsBody)
	dir, err := os.MkdirTemp("", "novashop-bench-tls-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	openPath(dir)
	ca, err := stack.NewLocalCA(dir)
	if err != nil {
		return res, err
	}
	var origins []*stack.Server
	var addrs []string
	defer func() { stopAll(origins) }()
	for i := 1; i <= 2; i++ {
		port, err := stack.FreePort()
		if err != nil {
			return res, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		s, err := stack.StartServer(ctx, "fixed-"+strconv.Itoa(i), filepath.Join(binDir(), "stack"),
			[]string{"fixed-origin", "--listen", addr, "--size", strconv.Itoa(f.tlsBody), "--name", "fixed-" + strconv.Itoa(i), "--cacheable", "--catalog"}, nil, addr)
		if err != nil {
			return res, err
		}
		origins = append(origins, s)
		addrs = append(addrs, addr)
	}
	redis, err := stack.StartRedis(ctx, w)
	if err != nil {
		return res, err
	}
	defer redis.Stop()

	edge, plainAddr, tlsAddr, adminAddr, err := startTLSEdge(ctx, dir, ca, addrs, redis.URL, "xnet")
	if err != nil {
		return res, err
	}
	defer edge.Stop()
	ng, ngAddr, err := startTLSNginx(ctx, w, dir, ca, addrs)
	if err != nil {
		return res, err
	}
	defer ng.Stop()
	edgePids := func() []int { return []int{edge.Pid()} }
	ngPids := func() []int { return withChildren(ng.Pid()) }

	// Keep-alive HTTP/1.1 (wrk). The first target is the ratio reference.
	ae := func(enc string) []string { return []string{"Accept-Encoding: " + enc} }
	targets := []target{
		{name: "edge-tls", url: "https://" + tlsAddr + tlsBenchPath, pids: edgePids},
		{name: "nginx-tls", url: "https://" + ngAddr + tlsBenchPath, pids: ngPids},
		{name: "edge-plain", url: "http://" + plainAddr + tlsBenchPath, pids: edgePids},
		{name: "edge-tls-gzip", url: "https://" + tlsAddr + tlsBenchPath, pids: edgePids, headers: ae("gzip")},
		{name: "edge-tls-br", url: "https://" + tlsAddr + tlsBenchPath, pids: edgePids, headers: ae("br")},
		{name: "nginx-tls-gzip", url: "https://" + ngAddr + tlsBenchPath, pids: ngPids, headers: ae("gzip")},
	}
	if err := checkTLSTargets(ctx, ca, targets, w); err != nil {
		return res, err
	}
	part := func(name string) bool {
		for _, p := range strings.Split(f.tlsParts, ",") {
			if strings.TrimSpace(p) == name {
				return true
			}
		}
		return false
	}
	if part("keepalive") {
		if err := benchTLSKeepAlive(ctx, f, bins, targets, &res, w); err != nil {
			return res, err
		}
	}
	h2target := target{name: "edge-h2", url: "https://" + tlsAddr + tlsBenchPath, pids: edgePids}
	var nativeTarget target
	nativeAdmin := ""
	if part("h2") {
		// A second edge with tls.http2_server: native (proxy/h2srv), in the
		// same interleaved rounds as the x/net bridge and nginx.
		nd := filepath.Join(dir, "native")
		if err := os.MkdirAll(nd, 0o755); err != nil {
			return res, err
		}
		native, _, nativeAddr, nAdmin, err := startTLSEdge(ctx, nd, ca, addrs, redis.URL, "native")
		if err != nil {
			return res, err
		}
		defer native.Stop()
		nativeAdmin = nAdmin
		nativeTarget = target{name: "edge-h2-native", url: "https://" + nativeAddr + tlsBenchPath, pids: func() []int { return []int{native.Pid()} }}
		if err := benchH2(ctx, f, bins, []target{h2target, nativeTarget, {name: "nginx-h2", url: "https://" + ngAddr + tlsBenchPath, pids: ngPids}}, &res, w); err != nil {
			return res, err
		}
	}
	if part("handshakes") {
		if err := benchHandshakes(ctx, f, tlsAddr, ngAddr, edgePids, ngPids, &res, w); err != nil {
			return res, err
		}
	}

	printTLSSummary(w, res)
	if f.tlsProfile != "" && part("keepalive") {
		if err := profileEdge(ctx, f.tlsProfile, func(ctx context.Context, d time.Duration) error {
			run := f
			run.duration = d
			_, err := runWrk(ctx, bins["wrk"], targets[0], run)
			return err
		}, f.duration, adminAddr, "TLS keep-alive", w); err != nil {
			fmt.Fprintf(w, "bench: tls profile: %v\n", err)
		}
	}
	if f.h2Profile != "" && part("h2") {
		if err := profileEdge(ctx, f.h2Profile, func(ctx context.Context, d time.Duration) error {
			_, err := runH2Load(ctx, bins["h2load"], h2target, d)
			return err
		}, f.duration, adminAddr, "HTTP/2", w); err != nil {
			fmt.Fprintf(w, "bench: h2 profile: %v\n", err)
		}
		// The native server's profile beside it (….pprof -> …-native.pprof).
		np := strings.TrimSuffix(f.h2Profile, ".pprof") + "-native.pprof"
		if err := profileEdge(ctx, np, func(ctx context.Context, d time.Duration) error {
			_, err := runH2Load(ctx, bins["h2load"], nativeTarget, d)
			return err
		}, f.duration, nativeAdmin, "HTTP/2 (native)", w); err != nil {
			fmt.Fprintf(w, "bench: h2 native profile: %v\n", err)
		}
	}
	return res, nil
}

// benchTLSKeepAlive is the keep-alive HTTP/1.1 part: wrk over TLS and plain.
func benchTLSKeepAlive(ctx context.Context, f benchFlags, bins map[string]string, targets []target, res *tlsBenchResult, w io.Writer) error {
	var err error
	fmt.Fprintf(w, "\n### keep-alive HTTP/1.1 (wrk, %d connections)\n", f.conns)
	if res.KeepAlive, err = interleave(ctx, bins["wrk"], f, targets, w); err != nil {
		return err
	}
	for _, p := range [][2]string{
		{"edge-tls", "nginx-tls"}, {"edge-tls-gzip", "nginx-tls-gzip"}, {"edge-tls-br", "nginx-tls-gzip"},
		{"edge-tls-gzip", "edge-tls"}, {"edge-tls-br", "edge-tls"}, {"edge-tls", "edge-plain"},
	} {
		res.Ratios[p[0]+"/"+p[1]] = pairRatios(res.KeepAlive.Targets[p[0]], res.KeepAlive.Targets[p[1]])
	}
	return nil
}

// benchH2 is the HTTP/2 part: h2load against h2targets (edge, nginx) in
// interleaved rounds.
func benchH2(ctx context.Context, f benchFlags, bins map[string]string, h2targets []target, res *tlsBenchResult, w io.Writer) error {
	fmt.Fprintf(w, "\n### HTTP/2 (h2load, 16 clients x 8 streams)\n")
	for round := 1; round <= f.rounds; round++ {
		for _, t := range h2targets {
			r, err := runH2Load(ctx, bins["h2load"], t, f.duration)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "  round %d %-10s %9.0f req/s  cpu %6.1f us/req  errors %d\n", round, t.name, r.RPS, r.CPUusPerR, r.Errors)
			res.HTTP2[t.name] = append(res.HTTP2[t.name], r)
		}
	}
	res.Ratios["edge-h2/nginx-h2"] = pairRatios(res.HTTP2["edge-h2"], res.HTTP2["nginx-h2"])
	if _, ok := res.HTTP2["edge-h2-native"]; ok {
		res.Ratios["edge-h2-native/nginx-h2"] = pairRatios(res.HTTP2["edge-h2-native"], res.HTTP2["nginx-h2"])
		res.Ratios["edge-h2-native/edge-h2"] = pairRatios(res.HTTP2["edge-h2-native"], res.HTTP2["edge-h2"])
	}
	return nil
}

// benchHandshakes is the new-connection part: full and resumed handshakes.
func benchHandshakes(ctx context.Context, f benchFlags, tlsAddr, ngAddr string, edgePids, ngPids func() []int, res *tlsBenchResult, w io.Writer) error {
	fmt.Fprintf(w, "\n### new connections, one request each (Go client, 16 at a time, X25519)\n")
	hs := []struct {
		name    string
		addr    string
		pids    func() []int
		resumed bool
	}{
		{"edge-full", tlsAddr, edgePids, false}, {"nginx-full", ngAddr, ngPids, false},
		{"edge-resumed", tlsAddr, edgePids, true}, {"nginx-resumed", ngAddr, ngPids, true},
	}
	for round := 1; round <= f.rounds; round++ {
		for _, h := range hs {
			r, err := handshakeRun(ctx, h.addr, h.pids, h.resumed, 16, min(f.duration, 5*time.Second))
			if err != nil {
				return fmt.Errorf("%s: %w", h.name, err)
			}
			fmt.Fprintf(w, "  round %d %-13s %7.0f conn/s  cpu %7.1f us/conn  errors %d\n", round, h.name, r.RPS, r.CPUusPerR, r.Errors)
			res.Handshakes[h.name] = append(res.Handshakes[h.name], r)
		}
	}
	res.Ratios["edge-full/nginx-full"] = pairRatios(res.Handshakes["edge-full"], res.Handshakes["nginx-full"])
	res.Ratios["edge-resumed/nginx-resumed"] = pairRatios(res.Handshakes["edge-resumed"], res.Handshakes["nginx-resumed"])
	return nil
}

// pairRatios is a/b per round (same round, same machine noise) for
// throughput and CPU per request.
func pairRatios(a, b []wrkRun) map[string]spread {
	var rps, cpu []float64
	for i := 0; i < len(a) && i < len(b); i++ {
		if b[i].RPS > 0 {
			rps = append(rps, a[i].RPS/b[i].RPS)
		}
		if b[i].CPUusPerR > 0 {
			cpu = append(cpu, a[i].CPUusPerR/b[i].CPUusPerR)
		}
	}
	return map[string]spread{"throughput": spreadOf(rps), "cpu_per_request": spreadOf(cpu)}
}

func printTLSSummary(w io.Writer, res tlsBenchResult) {
	fmt.Fprintf(w, "\n| ratio (per round) | throughput min / median / max | CPU per request min / median / max |\n|---|---|---|\n")
	for _, n := range []string{"edge-tls/nginx-tls", "edge-tls/edge-plain", "edge-tls-gzip/edge-tls", "edge-tls-br/edge-tls",
		"edge-tls-gzip/nginx-tls-gzip", "edge-tls-br/nginx-tls-gzip", "edge-h2/nginx-h2", "edge-h2-native/nginx-h2", "edge-h2-native/edge-h2", "edge-full/nginx-full", "edge-resumed/nginx-resumed"} {
		r, ok := res.Ratios[n]
		if !ok { // its part did not run (--tls-parts)
			continue
		}
		fmt.Fprintf(w, "| %s | %.2f / %.2f / %.2f | %.2f / %.2f / %.2f |\n", n,
			r["throughput"].Min, r["throughput"].Median, r["throughput"].Max,
			r["cpu_per_request"].Min, r["cpu_per_request"].Median, r["cpu_per_request"].Max)
	}
	fmt.Fprintln(w)
}

// startTLSEdge runs the edge with a TLS listener on ca's leaf, compression
// on, the cache on Redis, no access log and h2server (tls.http2_server) as
// its HTTP/2 server.
func startTLSEdge(ctx context.Context, dir string, ca *stack.LocalCA, upstreams []string, redisURL, h2server string) (*stack.Server, string, string, string, error) {
	var ports [3]int
	for i := range ports {
		p, err := stack.FreePort()
		if err != nil {
			return nil, "", "", "", err
		}
		ports[i] = p
	}
	plain, admin, tlsAddr := "127.0.0.1:"+strconv.Itoa(ports[0]), "127.0.0.1:"+strconv.Itoa(ports[1]), "127.0.0.1:"+strconv.Itoa(ports[2])
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %q\nadmin_listen: %q\nio: goroutine\nupstreams:\n", plain, admin)
	for i, u := range upstreams {
		fmt.Fprintf(&b, "  - {name: fixed-%d, url: \"http://%s\"}\n", i+1, u)
	}
	fmt.Fprintf(&b, "balancer: {policy: round-robin}\ncache: {enabled: true, redis_url: %q}\naccess_log: {enabled: false}\n", redisURL)
	fmt.Fprintf(&b, "tls:\n  listen: %q\n  certificates: [{cert_file: %q, key_file: %q}]\n  ocsp_stapling: false\n  http2_server: %s\n", tlsAddr, ca.CertFile, ca.KeyFile, h2server)
	b.WriteString("compression: {encodings: [br, zstd, gzip]}\n")
	conf := filepath.Join(dir, "edge.yaml")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return nil, "", "", "", err
	}
	env := []string{"EDGE_LISTEN=", "EDGE_ADMIN_LISTEN=", "EDGE_UPSTREAMS=", "EDGE_BALANCER=", "EDGE_IO=", "EDGE_TLS_LISTEN=", "EDGE_ACCESS_LOG=off"}
	s, err := stack.StartServer(ctx, "edge", filepath.Join(binDir(), "edge"), []string{"--config", conf}, env, plain)
	if err != nil {
		return nil, "", "", "", err
	}
	if err := waitDial(ctx, tlsAddr); err != nil {
		s.Stop()
		return nil, "", "", "", err
	}
	return s, plain, tlsAddr, admin, nil
}

// startTLSNginx runs nginx (1 worker) with TLS on ca's leaf, HTTP/2,
// proxy_cache and gzip on (default level 1) over the same origins.
func startTLSNginx(ctx context.Context, w io.Writer, dir string, ca *stack.LocalCA, upstreams []string) (*stack.Nginx, string, error) {
	port, err := stack.FreePort()
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	nd := filepath.Join(dir, "nginx")
	for _, d := range []string{"cache", "tmp"} {
		if err := os.MkdirAll(filepath.Join(nd, d), 0o777); err != nil {
			return nil, "", err
		}
	}
	openPath(nd)
	var b strings.Builder
	b.WriteString("daemon off;\n")
	if os.Geteuid() == 0 {
		b.WriteString("user root;\n")
	}
	fmt.Fprintf(&b, `worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 16384; multi_accept on; }
http {
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    server_tokens off;
    client_body_temp_path %[1]s/tmp/client_body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    proxy_cache_path %[1]s/cache levels=1:2 keys_zone=shop:32m max_size=1g inactive=10m use_temp_path=off;
    upstream origins {
`, nd)
	for _, u := range upstreams {
		fmt.Fprintf(&b, "        server %s;\n", u)
	}
	fmt.Fprintf(&b, `        keepalive 256;
    }
    ssl_certificate %s;
    ssl_certificate_key %s;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    ssl_session_tickets on;
    gzip on;
    gzip_types application/json;
    gzip_min_length 1024;
    server {
        listen %s ssl http2 reuseport backlog=4096;
        location / {
            proxy_pass http://origins;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_cache shop;
            proxy_cache_key $scheme$proxy_host$request_uri;
            proxy_cache_lock on;
            proxy_hide_header Cache-Tag;
        }
    }
}
`, ca.CertFile, ca.KeyFile, addr)
	conf := filepath.Join(nd, "nginx.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return nil, "", err
	}
	ng, err := stack.StartNginx(ctx, w, conf, addr)
	return ng, addr, err
}

func waitDial(ctx context.Context, addr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s never accepted: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkTLSTargets fetches each target once, trusting only the local CA,
// and checks the encoding it asked for came back, so a misconfigured peer
// cannot win by answering something cheaper.
func checkTLSTargets(ctx context.Context, ca *stack.LocalCA, targets []target, w io.Writer) error {
	pool, err := ca.Pool()
	if err != nil {
		return err
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	for _, t := range targets {
		want := ""
		for i := 0; i < 2; i++ { // the second is a cache hit
			req, _ := http.NewRequestWithContext(ctx, "GET", t.url, nil)
			for _, h := range t.headers {
				k, v, _ := strings.Cut(h, ":")
				req.Header.Set(k, strings.TrimSpace(v))
				if strings.EqualFold(k, "Accept-Encoding") {
					want = strings.TrimSpace(v)
				}
			}
			resp, err := c.Do(req)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != want {
				return fmt.Errorf("%s: status %d, Content-Encoding %q, want 200 and %q", t.name, resp.StatusCode, resp.Header.Get("Content-Encoding"), want)
			}
			if i == 1 {
				fmt.Fprintf(w, "  %-15s %s, %d-byte body (%q)\n", t.name, resp.Proto, n, want)
			}
		}
	}
	return nil
}

// runH2Load drives t over HTTP/2 with h2load for d and charges the CPU of
// t's processes to the requests that succeeded.
func runH2Load(ctx context.Context, h2load string, t target, d time.Duration) (wrkRun, error) {
	before := cpuTicks(t.pids())
	secs := strconv.Itoa(max(1, int(d.Seconds())))
	out, err := exec.CommandContext(ctx, h2load, "-t1", "-c16", "-m8", "-D", secs, "--warm-up-time=1", t.url).CombinedOutput()
	after := cpuTicks(t.pids())
	if err != nil {
		return wrkRun{}, fmt.Errorf("h2load %s: %w: %s", t.url, err, out)
	}
	r := parseH2Load(string(out))
	if r.Requests > 0 {
		// The CPU window includes the warm-up second; h2load counts only
		// the main duration, so scale the requests up to the whole window.
		total := float64(r.Requests) * (d.Seconds() + 1) / d.Seconds()
		r.CPUusPerR = float64(after-before) * (1e6 / clockTicks) / total
	}
	return r, nil
}

// parseH2Load reads req/s, successes and failures from h2load's report.
func parseH2Load(out string) wrkRun {
	var r wrkRun
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "finished in") && len(f) >= 5:
			r.RPS, _ = strconv.ParseFloat(f[3], 64)
		case strings.HasPrefix(line, "requests:"):
			// requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout
			for i := 1; i+1 < len(f); i += 2 {
				n, _ := strconv.ParseInt(f[i], 10, 64)
				switch strings.TrimSuffix(f[i+1], ",") {
				case "succeeded":
					r.Requests = n
				case "failed", "errored", "timeout":
					r.Errors += n
				}
			}
		}
	}
	return r
}

// handshakeRun opens new TLS 1.3 connections to addr for d, conc at a time,
// each sending one request with Connection: close and reading the answer
// (which also delivers the session ticket). With resumed, every worker keeps
// its last session and must resume; without, none may.
func handshakeRun(ctx context.Context, addr string, pids func() []int, resumed bool, conc int, d time.Duration) (wrkRun, error) {
	req := []byte("GET " + tlsBenchPath + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
	one := func(cfg *tls.Config) (bool, error) {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			return false, err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		tc := tls.Client(c, cfg)
		if err := tc.Handshake(); err != nil {
			return false, err
		}
		if _, err := tc.Write(req); err != nil {
			return false, err
		}
		if _, err := io.Copy(io.Discard, tc); err != nil {
			return false, err
		}
		return tc.ConnectionState().DidResume, nil
	}
	cfgFor := func() *tls.Config {
		cfg := &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", MinVersion: tls.VersionTLS13,
			CurvePreferences: []tls.CurveID{tls.X25519}, NextProtos: []string{"http/1.1"}}
		if resumed {
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
		}
		return cfg
	}
	cfgs := make([]*tls.Config, conc)
	for i := range cfgs {
		cfgs[i] = cfgFor()
		if resumed { // prime each worker's session
			if _, err := one(cfgs[i]); err != nil {
				return wrkRun{}, err
			}
		}
	}
	var done, bad atomic.Int64
	var firstErr atomic.Value
	before := cpuTicks(pids())
	start := time.Now()
	stop := start.Add(d)
	var wg sync.WaitGroup
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func(cfg *tls.Config) {
			defer wg.Done()
			for time.Now().Before(stop) && ctx.Err() == nil {
				did, err := one(cfg)
				if err != nil || did != resumed {
					bad.Add(1)
					if err == nil {
						err = fmt.Errorf("resumed = %v, want %v", did, resumed)
					}
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				done.Add(1)
			}
		}(cfgs[i])
	}
	wg.Wait()
	el := time.Since(start)
	after := cpuTicks(pids())
	r := wrkRun{Requests: done.Load(), Errors: bad.Load(), RPS: float64(done.Load()) / el.Seconds()}
	if r.Requests > 0 {
		r.CPUusPerR = float64(after-before) * (1e6 / clockTicks) / float64(r.Requests)
	}
	if r.Errors > r.Requests/10 {
		return r, fmt.Errorf("%d of %d connections failed: %v", r.Errors, r.Errors+r.Requests, firstErr.Load())
	}
	return r, nil
}

// profileEdge takes a CPU profile of the edge (admin /debug/pprof) while
// load (wrk or h2load) runs, writes it to path and prints its top functions.
func profileEdge(ctx context.Context, path string, load func(context.Context, time.Duration) error, d time.Duration, admin, what string, w io.Writer) error {
	secs := max(2, int(d.Seconds()))
	errc := make(chan error, 1)
	go func() { errc <- load(ctx, time.Duration(secs+1)*time.Second) }()
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", admin, secs))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, resp.Body); err != nil {
		out.Close()
		return err
	}
	out.Close()
	if err := <-errc; err != nil {
		return err
	}
	fmt.Fprintf(w, "bench: CPU profile of the edge under %s load in %s\n", what, path)
	if b, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=30", filepath.Join(binDir(), "edge"), path).CombinedOutput(); err == nil {
		w.Write(b) //nolint:errcheck
	}
	return nil
}

// catalogJSON is a product-list JSON document of about size bytes whose
// words and numbers vary like a real catalog page, so it compresses about
// as much as the storefront (3-5x), not like a run of one byte.
func catalogJSON(size int) []byte {
	words := strings.Fields(`red blue green black white oak steel linen wool cotton lamp chair table desk shelf mug
		bowl plate vase rug cushion throw blanket frame mirror clock candle basket crate stool bench sofa bed pillow
		towel soap brush jar bottle kettle pan pot knife spoon fork glass cup tray box bag coat hat scarf glove boot
		classic modern rustic compact large small handmade organic recycled premium everyday limited edition studio`)
	rng := rand.New(rand.NewPCG(42, 7))
	var b strings.Builder
	b.WriteString(`{"results":[`)
	for i := 1; b.Len() < size-200; i++ {
		if i > 1 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"%s %s %s","price":"%d.%02d","stock":%d,"category":{"id":%d,"name":"%s"},"image":"/static/p/%d.jpg","description":"`,
			rng.IntN(100000), words[rng.IntN(len(words))], words[rng.IntN(len(words))], words[rng.IntN(len(words))],
			rng.IntN(500), rng.IntN(100), rng.IntN(200), rng.IntN(20), words[rng.IntN(len(words))], rng.IntN(100000))
		for j := 0; j < 12; j++ {
			if j > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[rng.IntN(len(words))])
		}
		b.WriteString(`"}`)
	}
	b.WriteString(`],"next":null}`)
	return []byte(b.String())
}
