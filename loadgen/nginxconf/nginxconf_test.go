package nginxconf

import (
	"bytes"
	"errors"
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/novashop/edge/internal/stack"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func goldenParams() Params {
	return Params{
		Listen:      "127.0.0.1:8081",
		CacheListen: "127.0.0.1:8082",
		Upstreams:   []string{"127.0.0.1:9001", "127.0.0.1:9002"},
		CacheDir:    "/tmp/novashop/nginx/cache",
		PidFile:     "/tmp/novashop/nginx/nginx.pid",
		ErrorLog:    "/tmp/novashop/nginx/error.log",
		TempDir:     "/tmp/novashop/nginx/tmp",
		User:        "shop",
	}
}

func TestRenderGolden(t *testing.T) {
	tests := []struct {
		name   string
		golden string
		mod    func(*Params)
	}{
		{name: "with cache", golden: "nginx.conf.golden", mod: func(*Params) {}},
		{name: "without cache", golden: "nginx-nocache.conf.golden", mod: func(p *Params) { p.CacheListen = ""; p.CacheDir = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := goldenParams()
			tt.mod(&p)
			var buf bytes.Buffer
			if err := Render(&buf, p); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tt.golden)
			if *update {
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("rendered config differs from %s (run go test -update after checking the change)\n%s", path, buf.String())
			}
			out := buf.String()
			for _, must := range []string{"daemon off;", "worker_processes 1;", "keepalive 256;", "server 127.0.0.1:9001", "server 127.0.0.1:9002"} {
				if !strings.Contains(out, must) {
					t.Errorf("rendered config lacks %q", must)
				}
			}
			if strings.Contains(out, "/var/") || strings.Contains(out, "/run/") {
				t.Errorf("rendered config refers to a root-owned default path")
			}
			if got := strings.Contains(out, "proxy_cache shop;"); got != (p.CacheListen != "") {
				t.Errorf("proxy_cache present = %v, want %v", got, p.CacheListen != "")
			}
		})
	}
}

// TestTemplateMatchesConfigs keeps configs/nginx.conf and the embedded
// template from drifting apart.
func TestTemplateMatchesConfigs(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "configs", "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != Template {
		t.Fatal("configs/nginx.conf differs from loadgen/nginxconf/nginx.conf.tmpl: copy one onto the other")
	}
}

func TestRenderRejectsBadParams(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Params)
		want string
	}{
		{"no upstreams", func(p *Params) { p.Upstreams = nil }, "Upstreams is empty"},
		{"bad listen", func(p *Params) { p.Listen = "8081" }, "Listen \"8081\" is not host:port"},
		{"bad upstream", func(p *Params) { p.Upstreams = []string{"http://a:1"} }, "Upstreams[0]"},
		{"relative temp", func(p *Params) { p.TempDir = "tmp" }, "TempDir \"tmp\" is not an absolute path"},
		{"injection", func(p *Params) { p.PidFile = "/tmp/x; user root" }, "PidFile"},
		{"cache without dir", func(p *Params) { p.CacheDir = "" }, "CacheDir is empty"},
		{"port zero", func(p *Params) { p.CacheListen = "127.0.0.1:0" }, "explicit port"},
		{"bad user", func(p *Params) { p.User = "root; daemon on" }, "User"},
		{"empty pid", func(p *Params) { p.PidFile = "" }, "PidFile is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := goldenParams()
			tt.mod(&p)
			err := Render(&bytes.Buffer{}, p)
			if !errors.Is(err, ErrInvalidParams) {
				t.Fatalf("err = %v, want ErrInvalidParams", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to mention %q", err, tt.want)
			}
		})
	}
}

// TestNginxAcceptsRendered runs `nginx -t` on the rendered file; the
// syntax check needs no free ports beyond parsing.
func TestNginxAcceptsRendered(t *testing.T) {
	// The real nginx, installed from Debian's package when missing: a
	// skipped check would hide a template nginx refuses.
	bin, err := stack.NginxBinary(os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := Params{
		Listen:      freeAddr(t),
		CacheListen: freeAddr(t),
		Upstreams:   []string{"127.0.0.1:9001", "127.0.0.1:9002"},
		CacheDir:    filepath.Join(dir, "cache"),
		PidFile:     filepath.Join(dir, "nginx.pid"),
		ErrorLog:    filepath.Join(dir, "error.log"),
		TempDir:     filepath.Join(dir, "tmp"),
	}
	if err := os.MkdirAll(p.TempDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Render(&buf, p); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// -e keeps nginx from opening its compiled-in error log before it
	// reads ours; -p keeps relative lookups (mime.types) inside dir.
	out, err := exec.Command(bin, "-t", "-q", "-p", dir, "-e", p.ErrorLog, "-c", conf).CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -t rejected the rendered config: %v\n%s", err, out)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
