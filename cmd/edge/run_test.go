package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/novashop/edge/proxy/config"
	"github.com/valyala/fasthttp"
)

// syncBuffer is a goroutine-safe writer for run's stdout and stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestHelp(t *testing.T) {
	var out, errOut syncBuffer
	if err := run(context.Background(), []string{"--help"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--config FILE", "--upstream URL", "EDGE_UPSTREAMS", "JWT_SECRET", "SIGHUP"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestBadInputExitsTwo(t *testing.T) {
	dir := t.TempDir()
	badYAML := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badYAML, []byte("upstreams: [{url: 'http://127.0.0.1:1'}]\nretries: {attempts: 99}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badCache := filepath.Join(dir, "badcache.yaml")
	if err := os.WriteFile(badCache, []byte("upstreams: [{url: 'http://127.0.0.1:1'}]\ncache: {max_ttl: 10ms}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--nope"}, "flag provided but not defined"},
		{"stray argument", []string{"serve"}, "unexpected argument"},
		{"missing file", []string{"--config", filepath.Join(dir, "none.yaml")}, "no such file"},
		{"no upstreams", nil, "at least one upstream"},
		{"bad upstream", []string{"--upstream", "ftp://x"}, "scheme must be http or https"},
		{"bad policy", []string{"--upstream", "http://127.0.0.1:1", "--balancer", "fastest"}, "balancer.policy"},
		{"bad io core", []string{"--upstream", "http://127.0.0.1:1", "--io", "threads"}, `io "threads"`},
		{"bad io loops", []string{"--upstream", "http://127.0.0.1:1", "--io-loops", "two"}, `io loops "two"`},
		{"too many io loops", []string{"--upstream", "http://127.0.0.1:1", "--io-loops", "300"}, "io_loops 300 must be 0..256"},
		{"negative io loops", []string{"--upstream", "http://127.0.0.1:1", "--io-loops", "-1"}, "io_loops -1 must be 0..256"},
		{"bad io batch wait", []string{"--upstream", "http://127.0.0.1:1", "--io-batch-wait", "1"}, `io batch wait "1"`},
		{"io batch wait too long", []string{"--upstream", "http://127.0.0.1:1", "--io-batch-wait", "3ms"}, "io_batch_wait 3ms must be 0..2ms"},
		{"negative io batch wait", []string{"--upstream", "http://127.0.0.1:1", "--io-batch-wait", "-1ms"}, "io_batch_wait -1ms must be 0..2ms"},
		{"bad file value", []string{"--config", badYAML}, "retries.attempts 99"},
		{"bad cache value", []string{"--config", badCache}, "cache.max_ttl"},
		{"short jwt secret", []string{"--upstream", "http://127.0.0.1:1", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"}, "auth:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "short jwt secret" {
				t.Setenv("JWT_SECRET", "short")
			}
			var out, errOut syncBuffer
			err := run(context.Background(), tt.args, &out, &errOut)
			if err == nil {
				t.Fatal("run succeeded")
			}
			if exitCode(err) != 2 {
				t.Errorf("exit code %d, want 2", exitCode(err))
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line containing %q", err, tt.want)
			}
		})
	}
}

func TestListenFailureExitsOne(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	err = run(context.Background(), []string{"--upstream", "http://127.0.0.1:1", "--listen", busy.Addr().String(),
		"--admin-listen", "127.0.0.1:0"}, &syncBuffer{}, &syncBuffer{})
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("err = %v", err)
	}
}

func TestOverridePrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "edge.yaml")
	if err := os.WriteFile(file, []byte("listen: '127.0.0.1:7000'\nupstreams: [{name: file, url: 'http://127.0.0.1:1'}]\nbalancer: {policy: random}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"EDGE_LISTEN": "127.0.0.1:7001", "EDGE_UPSTREAMS": "http://127.0.0.1:2, e2=http://127.0.0.1:3", "EDGE_BALANCER": "least-conn"}
	getenv := func(k string) string { return env[k] }

	f, err := parseFlags([]string{"--config", file}, &syncBuffer{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(f, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:7001" || cfg.Balancer.Policy != "least-conn" || len(cfg.Upstreams) != 2 ||
		cfg.Upstreams[0].Name != "127.0.0.1:2" || cfg.Upstreams[1].Name != "e2" {
		t.Fatalf("env did not override the file: %+v", cfg)
	}
	f, _ = parseFlags([]string{"--config", file, "--listen", "127.0.0.1:7002", "--upstream", "a=http://127.0.0.1:4",
		"--upstream", "b=http://127.0.0.1:5", "--balancer", "hash", "--redis-url", "redis://127.0.0.1:6379/0"}, &syncBuffer{})
	cfg, err = loadConfig(f, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:7002" || cfg.Balancer.Policy != "hash" || len(cfg.Upstreams) != 2 ||
		cfg.Upstreams[1].Name != "b" || !cfg.Cache.Enabled {
		t.Fatalf("flags did not override env: %+v", cfg)
	}
	env["EDGE_ACCESS_LOG"] = "off"
	if cfg, _ = loadConfig(f, getenv); cfg.AccessLog.Enabled {
		t.Fatal("EDGE_ACCESS_LOG=off did not turn the access log off")
	}
	env["EDGE_ACCESS_LOG"] = "maybe"
	if _, err := loadConfig(f, getenv); exitCode(err) != 2 {
		t.Fatalf("bad EDGE_ACCESS_LOG: %v", err)
	}
	delete(env, "EDGE_ACCESS_LOG")
	env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
	f, _ = parseFlags([]string{"--config", file, "--redis-url", ""}, &syncBuffer{})
	if cfg, _ = loadConfig(f, getenv); cfg.Cache.Enabled {
		t.Fatal("an empty --redis-url did not turn the cache off")
	}
}

// TestIOPrecedence: io_loops and io_batch_wait come from the file, then
// their environment variable, then their flag, like io/EDGE_IO/--io; a flag
// of 0 restores the default (one loop per GOMAXPROCS; no coalescing).
func TestIOPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "edge.yaml")
	if err := os.WriteFile(file, []byte("io: eventloop\nio_loops: 4\nio_batch_wait: 2ms\nupstreams: [{url: 'http://127.0.0.1:1'}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	loops := func(c config.Config) string { return fmt.Sprint(c.IOLoops) }
	wait := func(c config.Config) string { return c.IOBatchWait.String() }
	tests := []struct {
		name, envKey, env string
		args              []string
		get               func(config.Config) string
		want              string
	}{
		{"io_loops: file", "EDGE_IO_LOOPS", "", nil, loops, "4"},
		{"io_loops: env over file", "EDGE_IO_LOOPS", "3", nil, loops, "3"},
		{"io_loops: flag over env", "EDGE_IO_LOOPS", "3", []string{"--io-loops", "1"}, loops, "1"},
		{"io_loops: flag zero restores the default", "EDGE_IO_LOOPS", "3", []string{"--io-loops", "0"}, loops, "0"},
		{"io_batch_wait: file", "EDGE_IO_BATCH_WAIT", "", nil, wait, "2ms"},
		{"io_batch_wait: env over file", "EDGE_IO_BATCH_WAIT", "500us", nil, wait, "500µs"},
		{"io_batch_wait: flag over env", "EDGE_IO_BATCH_WAIT", "500us", []string{"--io-batch-wait", "1ms"}, wait, "1ms"},
		{"io_batch_wait: flag zero turns it off", "EDGE_IO_BATCH_WAIT", "500us", []string{"--io-batch-wait", "0"}, wait, "0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := parseFlags(append([]string{"--config", file}, tt.args...), &syncBuffer{})
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := loadConfig(f, func(k string) string {
				if k == tt.envKey {
					return tt.env
				}
				return ""
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.get(cfg); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestServeReloadShutdown runs the command for real: it forwards to a test origin,
// reloads on SIGHUP (new balancer from the edited file) and drains on cancel.
func TestServeReloadShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	origin := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("X-Served-By", "o1")
		ctx.SetBodyString("ok")
	}}
	go origin.Serve(ln)     //nolint:errcheck
	defer origin.Shutdown() //nolint:errcheck

	t.Setenv("JWT_SECRET", "")
	t.Setenv("EDGE_IO", "") // the file's io, changed below, must count
	dir := t.TempDir()
	file := filepath.Join(dir, "edge.yaml")
	write := func(policy string, extra string) {
		y := fmt.Sprintf("listen: '127.0.0.1:0'\nadmin_listen: '127.0.0.1:0'\nupstreams: [{name: o1, url: 'http://%s'}]\nbalancer: {policy: %s}\naccess_log: {enabled: false}\n%s", ln.Addr(), policy, extra)
		if err := os.WriteFile(file, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("round-robin", "")

	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--config", file}, &out, &errOut) }()

	re := regexp.MustCompile(`serving on (\S+) \(admin (\S+)\)`)
	var addr, admin string
	deadline := time.Now().Add(5 * time.Second)
	for addr == "" {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			addr, admin = m[1], m[2]
		}
		if time.Now().After(deadline) {
			t.Fatalf("edge did not start: %s %s", out.String(), errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	get := func(a, path string) (int, string, string) {
		code, body, err := fasthttp.GetTimeout(nil, "http://"+a+path, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return code, string(body), ""
	}
	if code, body, _ := get(addr, "/"); code != 200 || body != "ok" {
		t.Fatalf("forward: %d %s", code, body)
	}

	// The balancer reloads; the read timeout and the I/O core need a
	// restart, which the reload's warning names.
	write("p2c-ewma", "timeouts: {read: 7s}\nio: goroutine\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		_, body, _ := get(admin, "/admin/upstreams")
		if strings.Contains(body, `"balancer":"p2c-ewma"`) && strings.Contains(errOut.String(), "edge: reloaded") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP did not reload: %s\n%s", body, errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if log := errOut.String(); !strings.Contains(log, "take effect only on restart") || !strings.Contains(log, `"keys":["io","timeouts.read"]`) {
		t.Errorf("the reload did not name the restart-only keys it left: %s", log)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if !strings.Contains(errOut.String(), "draining") {
		t.Fatalf("no drain logged: %s", errOut.String())
	}
	if _, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
		t.Fatal("edge still accepting after shutdown")
	}

}

// TestCacheSectionReachesCache runs the command with the file's cache section
// (Redis unreachable, which the cache tolerates): the configured cache name shows
// in Cache-Status, so the section's fields reach cache.New, and the admin
// /metrics carries the cache's series.
func TestCacheSectionReachesCache(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	origin := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }}
	go origin.Serve(ln)     //nolint:errcheck
	defer origin.Shutdown() //nolint:errcheck

	t.Setenv("JWT_SECRET", "")
	t.Setenv("REDIS_URL", "")
	file := filepath.Join(t.TempDir(), "edge.yaml")
	y := fmt.Sprintf("listen: '127.0.0.1:0'\nadmin_listen: '127.0.0.1:0'\nupstreams: [{name: o1, url: 'http://%s'}]\n"+
		"access_log: {enabled: false}\ncache: {enabled: true, redis_url: 'redis://127.0.0.1:1/0', redis_timeout: 20ms, name: shop-edge}\n", ln.Addr())
	if err := os.WriteFile(file, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--config", file}, &out, &errOut) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("run did not return after cancel")
		}
	}()
	re := regexp.MustCompile(`serving on (\S+) \(admin (\S+)\)`)
	var addr, admin string
	for deadline := time.Now().Add(5 * time.Second); addr == ""; time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			addr, admin = m[1], m[2]
		}
		if time.Now().After(deadline) {
			t.Fatalf("edge did not start: %s %s", out.String(), errOut.String())
		}
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + addr + "/api/products/")
	if err := fasthttp.DoTimeout(req, resp, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if cs := string(resp.Header.Peek("Cache-Status")); resp.StatusCode() != 200 || !strings.HasPrefix(cs, "shop-edge;") {
		t.Fatalf("status %d, Cache-Status %q: the cache section did not reach the cache", resp.StatusCode(), cs)
	}
	_, body, err := fasthttp.GetTimeout(nil, "http://"+admin+"/metrics", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), "edge_cache_redis_up 0") {
		t.Fatalf("metrics lack the cache's series:\n%s", body)
	}
}

// TestUsageListsEveryFlag: --help is written by hand, so it must name every
// flag the FlagSet defines, and define every flag it names; docs/docs_test.go
// then checks docs/configuration.md against this help text.
func TestUsageListsEveryFlag(t *testing.T) {
	defined := map[string]bool{}
	newFlagSet(&flags{}).VisitAll(func(fl *flag.Flag) { defined[fl.Name] = true })
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+--([a-z0-9-]+)`).FindAllStringSubmatch(usageText, -1) {
		listed[m[1]] = true
	}
	for name := range defined {
		if !listed[name] {
			t.Errorf("flag --%s is defined but usageText does not list it", name)
		}
	}
	for name := range listed {
		if !defined[name] {
			t.Errorf("usageText lists --%s, which the FlagSet does not define", name)
		}
	}
	if len(defined) == 0 {
		t.Fatal("no flags defined")
	}
}

func TestCheckAdminGuard(t *testing.T) {
	secure := config.Admin{TokenEnv: "EDGE_ADMIN_TOKEN"}
	insecure := config.Admin{TokenEnv: "EDGE_ADMIN_TOKEN", Insecure: true}
	for _, tc := range []struct {
		listen string
		admin  config.Admin
		token  string
		ok     bool
	}{
		{"127.0.0.1:9090", secure, "", true},
		{"[::1]:9090", secure, "", true},
		{"localhost:9090", secure, "", true},
		{":9090", secure, "", false},
		{"0.0.0.0:9090", secure, "", false},
		{"10.0.0.5:9090", secure, "", false},
		{":9090", secure, "tok", true},
		{":9090", insecure, "", true},
	} {
		err := checkAdminGuard(tc.listen, tc.admin, tc.token)
		if (err == nil) != tc.ok {
			t.Errorf("%s token %q insecure %v: err = %v", tc.listen, tc.token, tc.admin.Insecure, err)
		}
		if err != nil && !strings.Contains(err.Error(), "EDGE_ADMIN_TOKEN") {
			t.Errorf("error does not name the variable: %v", err)
		}
	}
}
