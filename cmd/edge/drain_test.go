package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

var (
	edgeBinOnce sync.Once
	edgeBin     string
	edgeBinErr  error
)

// buildEdge builds this command once per test binary, under its own
// generous bound (a cold build on the shared two-core machine; see
// docs/testing.md): no check's deadline includes it.
func buildEdge(t *testing.T) string {
	t.Helper()
	edgeBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "novashop-edge-drain-")
		if err != nil {
			edgeBinErr = err
			return
		}
		edgeBin = filepath.Join(dir, "edge")
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", edgeBin, ".").CombinedOutput(); err != nil {
			edgeBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if edgeBinErr != nil {
		t.Fatal(edgeBinErr)
	}
	return edgeBin
}

// TestSIGTERMDrainsThenStops runs the real edge process (on the I/O core
// EDGE_TEST_IO names) in front of a slow origin and sends it SIGTERM:
//   - /readyz answers 503 at once, /healthz stays 200;
//   - the 8 requests in flight at the signal all answer 200, with
//     Connection: close on their keep-alive connections;
//   - during timeouts.drain the edge still accepts, and 4 requests it accepts
//     in the middle of the window, still in flight when the window ends and
//     the listener closes, answer 200 too;
//   - the process exits 0, not before the window ends, and stops accepting.
func TestSIGTERMDrainsThenStops(t *testing.T) {
	bin := buildEdge(t)
	const drain = 2 * time.Second
	var slowStarted atomic.Int64
	origin := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/slow": // in flight at the signal
			slowStarted.Add(1)
			time.Sleep(800 * time.Millisecond)
		case "/slower": // in flight when the drain window ends
			slowStarted.Add(1)
			time.Sleep(2 * time.Second)
		}
		ctx.SetBodyString("ok " + string(ctx.Path()))
	}}
	oln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go origin.Serve(oln) //nolint:errcheck
	t.Cleanup(func() { _ = origin.Shutdown() })

	conf := filepath.Join(t.TempDir(), "edge.yaml")
	y := fmt.Sprintf(`listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
upstreams: [{name: o1, url: "http://%s"}]
access_log: {enabled: false}
timeouts: {request: 10s, drain: %s, shutdown: 10s}
retries: {per_try_timeout: 5s}
`, oln.Addr(), drain)
	if err := os.WriteFile(conf, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", conf)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "EDGE_ADMIN_TOKEN=drain-token", "EDGE_IO=" + os.Getenv("EDGE_TEST_IO")}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	m := regexp.MustCompile(`serving on (\S+) \(admin (\S+)\)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("edge did not start: %q %v\n%s", line, err, stderr.String())
	}
	addr, admin := "http://"+m[1], "http://"+m[2]

	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	get := func(url string) (int, bool, error) {
		resp, err := client.Get(url)
		if err != nil {
			return 0, false, err
		}
		_ = resp.Body.Close()
		return resp.StatusCode, resp.Close, nil
	}
	if code, _, err := get(admin + "/readyz"); err != nil || code != 200 {
		t.Fatalf("GET /readyz before the signal = %d %v", code, err)
	}

	type result struct {
		code  int
		close bool
		err   error
	}
	const wave1, wave2 = 8, 4
	results := make(chan result, wave1+wave2)
	send := func(path string) {
		code, closed, err := get(addr + path)
		results <- result{code, closed, err}
	}
	for range wave1 {
		go send("/slow")
	}
	deadline := time.Now().Add(10 * time.Second)
	for slowStarted.Load() < wave1 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d requests reached the origin", slowStarted.Load(), wave1)
		}
		time.Sleep(5 * time.Millisecond)
	}
	sig := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	// Readiness flips at once; liveness does not.
	var flipped time.Duration
	for {
		code, _, err := get(admin + "/readyz")
		if err == nil && code == 503 {
			flipped = time.Since(sig)
			break
		}
		if time.Since(sig) > drain {
			t.Fatalf("GET /readyz still %d %v %s after SIGTERM", code, err, time.Since(sig))
		}
		time.Sleep(2 * time.Millisecond)
	}
	if code, _, err := get(admin + "/healthz"); err != nil || code != 200 {
		t.Fatalf("GET /healthz while draining = %d %v", code, err)
	}

	// Mid-window: new connections are still served, and those requests are
	// still in flight when the window ends.
	time.Sleep(time.Until(sig.Add(drain / 2)))
	for range wave2 {
		go send("/slower")
	}
	for i := range wave1 + wave2 {
		r := <-results
		if r.err != nil || r.code != 200 {
			t.Fatalf("request %d across the drain: %d %v\n%s", i, r.code, r.err, stderr.String())
		}
		if !r.close {
			t.Errorf("request %d answered while draining without Connection: close", i)
		}
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		took := time.Since(sig)
		if err != nil {
			t.Fatalf("edge exited with %v after SIGTERM\n%s", err, stderr.String())
		}
		if took < drain {
			t.Fatalf("edge exited %s after SIGTERM, before timeouts.drain (%s) was over", took, drain)
		}
		t.Logf("readyz 503 %s after SIGTERM; %d+%d requests across the drain all 200; exit %s after SIGTERM", flipped.Round(time.Millisecond), wave1, wave2, took.Round(time.Millisecond))
	case <-time.After(drain + 15*time.Second):
		t.Fatalf("edge still running %s after SIGTERM", time.Since(sig))
	}
	var nerr *net.OpError
	if _, err := net.DialTimeout("tcp", m[1], time.Second); err == nil || !errors.As(err, &nerr) {
		t.Fatalf("edge still accepting after exit: %v", err)
	}
}
