package nginxconf

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/internal/stack"
)

// TestNginxServesAndCaches starts nginx from the rendered file in front of
// a local origin and checks the two servers: the plain one passes every
// request through, the cache variant answers the second request for a
// public page from its cache with "Cache-Status: nginx; hit" and never
// caches a request carrying Authorization.
func TestNginxServesAndCaches(t *testing.T) {
	// The real nginx, installed from Debian's package when missing: a
	// skipped check would hide a template nginx refuses.
	bin, err := stack.NginxBinary(os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	var originHits atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	origin := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		n := originHits.Add(1)
		ctx.Response.Header.Set("Cache-Control", "public, max-age=60")
		ctx.Response.Header.Set("Cache-Tag", "product:1")
		fmt.Fprintf(ctx, "answer %d", n)
	}}
	go func() { _ = origin.Serve(ln) }()
	defer origin.Shutdown()

	dir := t.TempDir()
	p := Params{
		Listen: freeAddr(t), CacheListen: freeAddr(t), Upstreams: []string{ln.Addr().String()},
		CacheDir: filepath.Join(dir, "cache"), PidFile: filepath.Join(dir, "nginx.pid"),
		ErrorLog: filepath.Join(dir, "error.log"), TempDir: filepath.Join(dir, "tmp"),
	}
	for _, d := range []string{p.CacheDir, p.TempDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var conf bytes.Buffer
	if err := Render(&conf, p); err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// nginx forks a worker and a cache manager: it runs in its own process
	// group, which is killed as a whole, and writes to a file rather than
	// a pipe, so no child can keep Wait blocked.
	outPath := filepath.Join(dir, "out.log")
	outFile, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer outFile.Close()
	cmd := exec.Command(bin, "-p", dir, "-e", p.ErrorLog, "-c", confPath)
	cmd.Stdout, cmd.Stderr = outFile, outFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	client := &http.Client{Timeout: 2 * time.Second}
	get := func(addr string, auth bool) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/products/1/", nil)
		if auth {
			req.Header.Set("Authorization", "Bearer x")
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err.Error()
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp, b.String()
	}
	// Wait for nginx to listen: its first start on a cold, busy machine
	// may take seconds (the same bound as stack.StartNginx's).
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, _ := get(p.Listen, false); resp != nil {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(p.ErrorLog)
			out, _ := os.ReadFile(outPath)
			t.Fatalf("nginx did not start: %s\n%s", out, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	plain, _ := get(p.Listen, false)
	if plain.StatusCode != 200 || plain.Header.Get("Cache-Status") != "" {
		t.Errorf("plain server: %d, Cache-Status %q", plain.StatusCode, plain.Header.Get("Cache-Status"))
	}
	first, _ := get(p.CacheListen, false)
	second, body := get(p.CacheListen, false)
	if first == nil || second == nil {
		t.Fatal("cache server did not answer")
	}
	if got := first.Header.Get("Cache-Status"); got != "nginx; fwd=miss" {
		t.Errorf("first Cache-Status = %q, want a miss", got)
	}
	if got := second.Header.Get("Cache-Status"); got != "nginx; hit" {
		t.Errorf("second Cache-Status = %q, want a hit", got)
	}
	if second.Header.Get("Cache-Tag") != "" {
		t.Error("Cache-Tag leaked to the client")
	}
	before := originHits.Load()
	authed, _ := get(p.CacheListen, true)
	if authed.Header.Get("Cache-Status") != "nginx; fwd=bypass" || originHits.Load() != before+1 {
		t.Errorf("a request with Authorization must bypass the cache: Cache-Status %q", authed.Header.Get("Cache-Status"))
	}
	if body == "" {
		t.Error("empty cached body")
	}
}
