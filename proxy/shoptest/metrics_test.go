package shoptest

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/origin/origintest"
	"github.com/novashop/edge/origin/server"
	"github.com/novashop/edge/proxy"
	"github.com/novashop/edge/proxy/cache"
	"github.com/novashop/edge/proxy/config"
	"go.uber.org/zap"
)

// scrapes is what /metrics answered on a real edge (with its cache on a real
// Redis) and a real origin after traffic that creates every labelled series:
// cache misses and hits, JWT rejections of each reason, a rate-limit refusal,
// origin answers.
type scrapes struct{ edge, origin []byte }

func observedShop(t *testing.T) scrapes {
	t.Helper()
	_, pool := origintest.DB(t)
	origintest.Seed(t, pool, 3, 20, 3)
	o1, _ := origintest.Start(t, server.Deps{Name: "origin-1", Pool: pool})

	cfg := config.Default()
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Upstreams = []config.Upstream{{Name: "origin-1", URL: o1, Weight: 1}}
	cfg.AccessLog.Enabled = false
	limited := config.RateLimit{Name: "categories"}
	limited.Match.PathPrefix = "/api/categories/"
	limited.PerIP.Rate, limited.PerIP.Burst = 0.01, 1
	cfg.RateLimits = []config.RateLimit{limited}
	cfg.Cache.Enabled, cfg.Cache.RedisURL = true, testenv.Redis(t)
	c, err := cache.New(cfg.Cache.CacheConfig(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := proxy.New(cfg, proxy.Options{JWTSecret: []byte(origintest.Secret), Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)       //nolint:errcheck
	go srv.ServeAdmin(aln) //nolint:errcheck
	t.Cleanup(func() {
		_ = ln.Close()
		_ = aln.Close()
		srv.Close()
	})
	edge := "http://" + ln.Addr().String()

	anon := origintest.NewClient(edge)
	for _, want := range []struct {
		client *origintest.Client
		method string
		path   string
		body   any
		status int
	}{
		{anon, "GET", "/api/products/1/", nil, 200},                  // miss
		{anon, "GET", "/api/products/1/", nil, 200},                  // hit
		{anon, "GET", "/api/me/", nil, 401},                          // jwt missing
		{anon.WithToken("not-a-token"), "GET", "/api/me/", nil, 401}, // jwt invalid
		{anon, "GET", "/api/categories/", nil, 200},                  // the bucket's one token
		{anon, "GET", "/api/categories/", nil, 429},                  // rate limited
		{anon, "GET", "/api/products/999999/", nil, 404},             // an origin 404
		{anon, "POST", "/api/login/", map[string]string{"username": "user1", "password": "wrong"}, 401},
	} {
		if r := want.client.Do(t, want.method, want.path, want.body); r.Status != want.status {
			t.Fatalf("%s %s through the edge: %d, want %d: %s", want.method, want.path, r.Status, want.status, r.Body)
		}
	}
	shopper := login(t, anon, "user1", "shopper123")
	if r := anon.WithToken(shopper).Do(t, "POST", "/api/products/", map[string]any{"name": "x"}); r.Status != 403 {
		t.Fatalf("shopper POST /api/products/: %d, want 403 (jwt forbidden)", r.Status)
	}
	return scrapes{
		edge:   get(t, "http://"+aln.Addr().String()+"/metrics"),
		origin: get(t, o1+"/metrics"),
	}
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return b
}

// TestMetricsEndpoints: the edge's and the origin's /metrics, scraped after
// real traffic, carry # HELP and # TYPE for every family and pass `promtool
// check metrics` (Debian's prometheus package, installed when missing).
func TestMetricsEndpoints(t *testing.T) {
	s := observedShop(t)
	for _, tt := range []struct {
		name string
		body []byte
		want []string
	}{
		{"edge", s.edge, []string{
			"# TYPE edge_requests_total counter",
			"# TYPE edge_upstream_request_duration_seconds histogram",
			"# HELP edge_jwt_rejections_total Requests refused",
			`edge_jwt_rejections_total{reason="forbidden"} 1`,
			`edge_jwt_rejections_total{reason="invalid"} 1`,
			`edge_rate_limited_total{rule="categories",key="ip"} 1`,
			`edge_cache_requests_total{result="hit"}`,
			"# TYPE edge_cache_redis_up gauge",
			"# TYPE go_goroutines gauge",
		}},
		{"origin", s.origin, []string{
			"# TYPE origin_http_requests_total counter",
			"# TYPE origin_http_request_duration_seconds histogram",
			"# TYPE origin_pgxpool_acquired_conns gauge",
			"# TYPE origin_pgxpool_acquire_total counter",
			"# TYPE process_resident_memory_bytes gauge",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, w := range tt.want {
				if !strings.Contains(string(tt.body), w) {
					t.Errorf("%s /metrics lacks %q", tt.name, w)
				}
			}
			testenv.CheckMetrics(t, tt.name+" /metrics", tt.body)
		})
	}
}
