package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/novashop/edge/proxy/cache"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

func TestAdminUpstreamsJSON(t *testing.T) {
	o1, o2 := newOrigin(t, "o1", nil), newOrigin(t, "o2", nil)
	cfg := testConfig(o1, o2)
	cfg.Upstreams[1].Weight = 3
	e := startEdge(t, cfg, Options{})
	r := e.adminDo(t, "GET", "/admin/upstreams", "")
	if r.StatusCode() != 200 || header(r, "Content-Type") != "application/json" {
		t.Fatalf("status %d type %q", r.StatusCode(), header(r, "Content-Type"))
	}
	// Exact field names from DESIGN.md "Edge admin API".
	var raw map[string]any
	if err := json.Unmarshal(r.Body(), &raw); err != nil {
		t.Fatal(err)
	}
	if raw["balancer"] != "round-robin" {
		t.Fatalf("balancer = %v", raw["balancer"])
	}
	ups := raw["upstreams"].([]any)
	if len(ups) != 2 {
		t.Fatalf("%d upstreams", len(ups))
	}
	first := ups[1].(map[string]any)
	for _, k := range []string{"name", "url", "state", "weight", "in_flight", "ewma_ms", "failures"} {
		if _, ok := first[k]; !ok {
			t.Errorf("field %q missing in %v", k, first)
		}
	}
	if first["name"] != "o2" || first["url"] != o2.url || first["state"] != "up" || first["weight"] != 3.0 {
		t.Fatalf("o2 = %v", first)
	}
}

func TestAdminDrainAndBalancer(t *testing.T) {
	o1, o2 := newOrigin(t, "o1", nil), newOrigin(t, "o2", nil)
	e := startEdge(t, testConfig(o1, o2), Options{})

	r := e.adminDo(t, "POST", "/admin/upstreams/o1/drain", "")
	if r.StatusCode() != 200 || !strings.Contains(string(r.Body()), `"state":"draining"`) {
		t.Fatalf("drain: %d %s", r.StatusCode(), r.Body())
	}
	for range 6 {
		if by := header(e.do(t, "GET", "/", ""), "X-Served-By"); by != "o2" {
			t.Fatalf("drained o1 still served (%s)", by)
		}
	}
	if r := e.adminDo(t, "POST", "/admin/upstreams/o1/undrain", ""); r.StatusCode() != 200 {
		t.Fatalf("undrain: %d", r.StatusCode())
	}
	seen := map[string]bool{}
	for range 4 {
		seen[header(e.do(t, "GET", "/", ""), "X-Served-By")] = true
	}
	if !seen["o1"] || !seen["o2"] {
		t.Fatalf("after undrain served by %v", seen)
	}

	tests := []struct {
		body   string
		status int
		want   string
	}{
		{`{"policy": "p2c-ewma"}`, 200, `{"balancer":"p2c-ewma"}`},
		{`{"policy": "hash", "hash_key": "header:X-Shard"}`, 200, `{"balancer":"hash"}`},
		{`{"policy": "fastest"}`, 400, "unknown policy"},
		{`{"policy": "hash", "hash_key": "query:x"}`, 400, "bad hash key"},
		{`{"policy": 1}`, 400, "body must be JSON"},
		{`{"policy": "random", "extra": 1}`, 400, "body must be JSON"},
		{`not json`, 400, "body must be JSON"},
	}
	for _, tt := range tests {
		r := e.adminDo(t, "PUT", "/admin/balancer", tt.body)
		if r.StatusCode() != tt.status || !strings.Contains(string(r.Body()), tt.want) {
			t.Errorf("PUT %s = %d %s, want %d %s", tt.body, r.StatusCode(), r.Body(), tt.status, tt.want)
		}
	}
	if e.s.Policy() != "hash" {
		t.Fatalf("policy = %s after rejected switches", e.s.Policy())
	}
	wantJSONError(t, e.adminDo(t, "POST", "/admin/upstreams/nope/drain", ""), 404)
	wantJSONError(t, e.adminDo(t, "GET", "/admin/nothing", ""), 404)
	wantJSONError(t, e.adminDo(t, "DELETE", "/admin/upstreams", ""), 405)
}

func TestAdminHealthMetricsPprof(t *testing.T) {
	o := newOrigin(t, "o1", nil)
	e := startEdge(t, testConfig(o), Options{})
	e.do(t, "GET", "/", "")
	if r := e.adminDo(t, "GET", "/healthz", ""); r.StatusCode() != 200 || string(r.Body()) != `{"status":"ok"}` {
		t.Fatalf("healthz: %d %s", r.StatusCode(), r.Body())
	}
	r := e.adminDo(t, "GET", "/metrics", "")
	for _, want := range []string{`edge_requests_total{status="200"} 1`, `edge_upstream_requests_total{upstream="o1",status="200"} 1`,
		`edge_upstream_request_duration_seconds_bucket{upstream="o1"`, "edge_retries_total 0", `edge_jwt_rejections_total{reason="missing"} 0`} {
		if !strings.Contains(string(r.Body()), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if r := e.adminDo(t, "GET", "/debug/pprof/", ""); r.StatusCode() != 200 || !strings.Contains(string(r.Body()), "goroutine") {
		t.Fatalf("pprof index: %d", r.StatusCode())
	}
}

// fakeCache records purges and serves through fetch.
type fakeCache struct {
	mu      sync.Mutex
	purges  []string
	err     error
	panicky bool
	closed  bool
}

func (c *fakeCache) Serve(ctx *fasthttp.RequestCtx, fetch func(req *fasthttp.Request, resp *fasthttp.Response) error) {
	if c.panicky {
		panic("cache bug")
	}
	_ = fetch(&ctx.Request, &ctx.Response)
	ctx.Response.Header.Set("Cache-Status", "novashop-edge; fwd=miss")
}

func (c *fakeCache) Purge(_ context.Context, keys, tags []string, prefix string, soft bool) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.purges = append(c.purges, strings.Join(keys, ",")+"|"+strings.Join(tags, ",")+"|"+prefix)
	return len(keys) + len(tags), c.err
}

func (c *fakeCache) Close() { c.closed = true }

func TestAdminPurge(t *testing.T) {
	o := newOrigin(t, "o1", nil)
	t.Run("no cache gives 503", func(t *testing.T) {
		e := startEdge(t, testConfig(o), Options{})
		wantJSONError(t, e.adminDo(t, "POST", "/admin/purge", `{"keys":["a"]}`), 503)
	})
	c := &fakeCache{}
	e := startEdge(t, testConfig(o), Options{Cache: c})
	tests := []struct {
		body   string
		status int
		want   string
	}{
		{`{"keys": ["k1", "k2"], "tags": ["product:1"], "prefix": "/api/products/", "soft": false}`, 200, `{"purged":3}`},
		{`{"prefix": "/api/"}`, 200, `{"purged":0}`},
		{`{}`, 400, "at least one"},
		{`{"keys": "k1"}`, 400, "body must be JSON"},
	}
	for _, tt := range tests {
		r := e.adminDo(t, "POST", "/admin/purge", tt.body)
		if r.StatusCode() != tt.status || !strings.Contains(string(r.Body()), tt.want) {
			t.Errorf("purge %s = %d %s", tt.body, r.StatusCode(), r.Body())
		}
	}
	if len(c.purges) != 2 || c.purges[0] != "k1,k2|product:1|/api/products/" {
		t.Fatalf("purges = %v", c.purges)
	}
	// A failed purge maps through errors.Is: the caller's mistake, a store that
	// is down for now, anything else.
	for _, ft := range []struct {
		err    error
		status int
	}{
		{fmt.Errorf("%w: tag %q is bad", cache.ErrBadPurge, "a b"), 400},
		{fmt.Errorf("%w: purge: dial tcp: refused", cache.ErrUnavailable), 503},
		{errors.New("redis answered nonsense"), 502},
	} {
		c.err = ft.err
		r := e.adminDo(t, "POST", "/admin/purge", `{"tags":["x"]}`)
		wantJSONError(t, r, ft.status)
		if !strings.Contains(string(r.Body()), "purge failed") {
			t.Errorf("purge error %v: body %s", ft.err, r.Body())
		}
	}
	c.err = nil
	// Requests go through the cache, which still gets the edge's headers.
	r := e.do(t, "GET", "/", "")
	if header(r, "Cache-Status") != "novashop-edge; fwd=miss" || header(r, "X-Served-By") != "o1" {
		t.Fatalf("cache path: %d %v", r.StatusCode(), r.Header.String())
	}
	e.s.Close()
	if !c.closed {
		t.Fatal("Close did not close the cache")
	}
}

func TestPanicGives500(t *testing.T) {
	o := newOrigin(t, "o1", nil)
	e := startEdge(t, testConfig(o), Options{Cache: &fakeCache{panicky: true}})
	wantJSONError(t, e.do(t, "GET", "/", ""), 500)
	// The edge is still up.
	wantJSONError(t, e.do(t, "GET", "/", ""), 500)
	if e.s.metrics.Panics.Get() != 2 {
		t.Fatalf("panics counted: %d", e.s.metrics.Panics.Get())
	}
}

// bgCache answers through fetch and then, like stale-while-revalidate, calls fetch
// again from another goroutine after Serve returned.
type bgCache struct {
	fakeCache
	results chan string
}

func (c *bgCache) Serve(ctx *fasthttp.RequestCtx, fetch func(req *fasthttp.Request, resp *fasthttp.Response) error) {
	_ = fetch(&ctx.Request, &ctx.Response)
	req := fasthttp.AcquireRequest()
	ctx.Request.CopyTo(req)
	go func() {
		defer fasthttp.ReleaseRequest(req)
		time.Sleep(20 * time.Millisecond) // the handler has returned by now
		var resp fasthttp.Response
		if err := fetch(req, &resp); err != nil {
			c.results <- err.Error()
			return
		}
		c.results <- string(resp.Header.Peek("X-Served-By")) + " " + string(resp.Header.Peek("X-Echo-X-Forwarded-For"))
	}()
}

// TestCacheFetchAfterHandlerReturns pins the Cache contract: fetch keeps working
// after the handler returned (it holds no RequestCtx and no pooled state), even
// while new requests reuse the handler's pooled state.
func TestCacheFetchAfterHandlerReturns(t *testing.T) {
	o := newOrigin(t, "o1", nil)
	cfg := testConfig(o)
	cfg.Balancer.Policy = "hash"
	c := &bgCache{results: make(chan string, 10)}
	e := startEdge(t, cfg, Options{Cache: c})
	for range 5 {
		if r := e.do(t, "GET", "/products/", ""); r.StatusCode() != 200 {
			t.Fatalf("status %d", r.StatusCode())
		}
	}
	for range 5 {
		select {
		case got := <-c.results:
			if got != "o1 127.0.0.1" {
				t.Fatalf("background fetch got %q", got)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("background fetch did not finish")
		}
	}
}

// TestAdminWithRealCacheRedisDown wires the real proxy/cache (its Redis
// unreachable, which cache.New allows) into the admin API: /metrics carries the
// cache's own series next to the edge's, a purge the cache rejects is 400 and a
// purge it cannot carry out now is 503, each with a JSON error.
func TestAdminWithRealCacheRedisDown(t *testing.T) {
	o := newOrigin(t, "o1", nil)
	c, err := cache.New(cache.Config{RedisURL: "redis://127.0.0.1:1/0", RedisTimeout: 20 * time.Millisecond}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	e := startEdge(t, testConfig(o), Options{Cache: c})
	// Traffic still flows straight through the origins.
	if r := e.do(t, "GET", "/", ""); r.StatusCode() != 200 || header(r, "X-Served-By") != "o1" {
		t.Fatalf("pass-through: %d %s", r.StatusCode(), r.Header.String())
	}
	r := e.adminDo(t, "GET", "/metrics", "")
	body := string(r.Body())
	for _, want := range []string{`edge_requests_total{status="200"} 1`, "edge_cache_redis_up 0",
		`edge_cache_requests_total{result="bypass"}`, "edge_cache_local_bytes"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	tests := []struct {
		name, body string
		status     int
	}{
		{"bad tag", `{"tags":["no spaces allowed"]}`, 400},
		{"bad prefix", `{"prefix":"api/"}`, 400},
		{"redis down", `{"tags":["product:1"]}`, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantJSONError(t, e.adminDo(t, "POST", "/admin/purge", tt.body), tt.status)
		})
	}
}
