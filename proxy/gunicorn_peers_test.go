package proxy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/novashop/edge/internal/stack"
)

// TestGunicornCorpusPeers runs gunicorn's request fixtures through nginx and
// HAProxy, each with its default settings and the shortest configuration that
// proxies to the same recording origin (nginx also ignores the client's
// half-close, which the harness sends after each case), so the edge's figure in
// docs/http-parsing.md has its peers beside it. The counts are logged, not
// pinned (they are the peers' behaviour, not ours); the test fails when a peer
// does not start, does not answer within the deadline, or does not pass a
// plain valid request through.
func TestGunicornCorpusPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nginx and HAProxy")
	}
	cases := loadGunicornCorpus(t)
	o, seen := startGunicornOrigin(t)
	ctx := context.Background()
	for _, peer := range []string{"nginx", "haproxy"} {
		t.Run(peer, func(t *testing.T) {
			dir := t.TempDir()
			addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			conf := filepath.Join(dir, peer+".conf")
			switch peer {
			case "nginx":
				text := fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  server {
    listen %[2]s;
    location / {
      proxy_pass http://%[3]s;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # The harness half-closes after sending; nginx would take that as the
      # client going away and answer nothing.
      proxy_ignore_client_abort on;
    }
  }
}
`, dir, addr, o.addr)
				if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				n, err := stack.StartNginx(ctx, os.Stderr, conf, addr)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(n.Stop)
			case "haproxy":
				text := fmt.Sprintf(`defaults
  mode http
  timeout connect 2s
  timeout client 5s
  timeout server 5s
frontend fe
  bind %s
  default_backend be
backend be
  server origin %s
`, addr, o.addr)
				if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				bins, err := stack.Ensure(os.Stderr, "haproxy")
				if err != nil {
					t.Fatal(err)
				}
				h, err := stack.StartServer(ctx, "haproxy", bins["haproxy"], []string{"-f", conf, "-db"}, nil, addr)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(h.Stop)
			}
			res := runGunicornCorpus(t, addr, peer, seen, cases)
			for _, l := range res.table {
				t.Log(l)
			}
			t.Logf("gunicorn corpus: %s agrees on %d of %d cases (%d with the fixtures' bytes unchanged, Host not added; %d with gunicorn's default settings)", peer, res.agree, len(cases), res.agreeRaw, defaultsAgreement(cases, res))
			if why, bad := res.differ["valid/002"]; bad {
				t.Errorf("%s does not pass a plain GET through: %s", peer, why)
			}
		})
	}
}
