package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestAccessLogSharesStderr: the access log and zap's messages share one locked
// stderr, so every line stays whole (concurrent requests, buffers handed off
// while zap writes), and the lines still buffered at shutdown are written.
func TestAccessLogSharesStderr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	origin := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }}
	go origin.Serve(ln)     //nolint:errcheck
	defer origin.Shutdown() //nolint:errcheck

	t.Setenv("JWT_SECRET", "")
	t.Setenv("EDGE_ACCESS_LOG", "")
	file := filepath.Join(t.TempDir(), "edge.yaml")
	// The smallest buffer, so buffers are handed off during the run; a flush
	// interval longer than the test, so the tail is only written at shutdown.
	y := fmt.Sprintf("listen: '127.0.0.1:0'\nadmin_listen: '127.0.0.1:0'\nupstreams: [{name: o1, url: 'http://%s'}]\n"+
		"access_log: {enabled: true, sample: 1, buffer_bytes: 16384, flush_interval: 1m}\n", ln.Addr())
	if err := os.WriteFile(file, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--config", file}
	if core := os.Getenv("EDGE_TEST_IO"); core != "" {
		args = append(args, "--io", core)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, &out, &errOut) }()
	re := regexp.MustCompile(`serving on (\S+) \(admin`)
	var addr string
	deadline := time.Now().Add(10 * time.Second)
	for addr == "" {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			addr = m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("edge did not start: %s %s", out.String(), errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	const workers, per = 4, 100
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := &fasthttp.HostClient{Addr: addr}
			for i := 0; i < per; i++ {
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				req.SetRequestURI(fmt.Sprintf("http://%s/products/?w=%d&i=%d", addr, w, i))
				err := c.DoTimeout(req, resp, 10*time.Second)
				if err == nil && resp.StatusCode() != 200 {
					err = fmt.Errorf("status %d", resp.StatusCode())
				}
				fasthttp.ReleaseRequest(req)
				fasthttp.ReleaseResponse(resp)
				if err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	access := 0
	for _, l := range strings.Split(strings.TrimSuffix(errOut.String(), "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("stderr line is not one JSON object (interleaved?): %q", l)
		}
		if m["msg"] == "access" {
			access++
		}
	}
	if access != workers*per {
		t.Fatalf("%d access lines on stderr, want %d", access, workers*per)
	}
}
