package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/proxy/cache"
)

// accessLine is the part of an access log line these tests read.
type accessLine struct {
	URI       string  `json:"uri"`
	Status    float64 `json:"status"`
	Upstream  string  `json:"upstream"`
	Tries     float64 `json:"tries"`
	RequestID string  `json:"request_id"`
}

// cacheLogEdge starts an edge with a real cache (Redis from testenv, a
// namespace of its own) over origins and logs every request into out.
func cacheLogEdge(t *testing.T, origins ...*origin) (*edge, *syncBuffer) {
	t.Helper()
	cfg := testConfig(origins...)
	cfg.AccessLog.Enabled, cfg.AccessLog.Sample = true, 1
	// Health checks only: a host that answers 503 stays in the pool, so the
	// retry case is not decided by an ejection.
	cfg.Health.Interval = time.Minute
	// A generous Redis timeout: on a loaded machine under -race the 50 ms
	// default can lapse, and the cache then passes requests through, which
	// logs the origin where these tests expect a hit.
	c, err := cache.New(cache.Config{RedisURL: testenv.Redis(t), RedisTimeout: 2 * time.Second,
		Namespace: fmt.Sprintf("logmiss-%d:", time.Now().UnixNano())}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	out := &syncBuffer{}
	return startEdge(t, cfg, Options{Cache: c, AccessLog: out}), out
}

// accessLines shuts e down (which writes every buffered line) and returns the
// access lines by request id.
func accessLines(t *testing.T, e *edge, out *syncBuffer) map[string]accessLine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	got := map[string]accessLine{}
	for _, l := range out.lines() {
		if !strings.Contains(l, `"msg":"access"`) {
			continue
		}
		var a accessLine
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		got[a.RequestID] = a
	}
	return got
}

// cacheable answers with a fresh (max-age) or stale-while-revalidate entry.
func cacheable(cc string) func(ctx *fasthttp.RequestCtx) {
	return func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Cache-Control", cc)
		ctx.Response.Header.Set("ETag", `"v1"`)
		if string(ctx.Request.Header.Peek("If-None-Match")) == `"v1"` {
			ctx.SetStatusCode(fasthttp.StatusNotModified)
			return
		}
		ctx.SetBodyString("cacheable " + string(ctx.Path()))
	}
}

// TestAccessLogCacheFetch: a request that went through the cache logs the
// origin it reached and the tries it took (the last host, as the forward path
// does); a hit logs no upstream and 0 tries.
func TestAccessLogCacheFetch(t *testing.T) {
	type req struct {
		method, uri string
		wantUp      string // "" for a hit
		wantTries   int
		wantCache   string // substring of Cache-Status
	}
	tests := []struct {
		name string
		cc   string // the good origin's Cache-Control
		reqs []req
	}{
		{"miss then hit", "public, max-age=60", []req{
			{"GET", "/c/a", "good", 1, "fwd=uri-miss"},
			{"GET", "/c/a", "", 0, "hit"},
			{"HEAD", "/c/a", "", 0, "hit"},
			{"HEAD", "/c/h", "good", 1, "fwd=uri-miss"},
		}},
		{"revalidation in the foreground", "public, max-age=0, must-revalidate", []req{
			{"GET", "/c/r", "good", 1, "fwd=uri-miss"},
			{"GET", "/c/r", "good", 1, "fwd=stale"},
		}},
		{"unsafe method through the cache", "public, max-age=60", []req{
			{"POST", "/c/p", "good", 1, "fwd=method"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good := newOrigin(t, "good", cacheable(tt.cc))
			e, out := cacheLogEdge(t, good)
			for i, r := range tt.reqs {
				resp := e.do(t, r.method, r.uri, "", fmt.Sprintf("X-Request-Id: r-%d", i))
				if resp.StatusCode() != 200 {
					t.Fatalf("%s %s: status %d", r.method, r.uri, resp.StatusCode())
				}
				if cs := header(resp, cache.HeaderCacheStatus); !strings.Contains(cs, r.wantCache) {
					t.Fatalf("%s %s: Cache-Status %q, want %q", r.method, r.uri, cs, r.wantCache)
				}
			}
			lines := accessLines(t, e, out)
			for i, r := range tt.reqs {
				l, ok := lines[fmt.Sprintf("r-%d", i)]
				if !ok {
					t.Fatalf("%s %s: no access line", r.method, r.uri)
				}
				if l.Upstream != r.wantUp || int(l.Tries) != r.wantTries {
					t.Errorf("%s %s: logged upstream %q tries %v, want %q %d", r.method, r.uri, l.Upstream, l.Tries, r.wantUp, r.wantTries)
				}
			}
		})
	}
}

// TestAccessLogCacheMissRetried: a miss whose first try got a 503 from one
// host and was retried on the other logs the second host and 2 tries; a miss
// whose first try went to the good host logs it and 1 try. Round robin sends
// first tries to the failing host (until passive health ejects it), and its
// own record says which requests it saw.
func TestAccessLogCacheMissRetried(t *testing.T) {
	var mu sync.Mutex
	failed := map[string]bool{}
	bad := newOrigin(t, "bad", func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		failed[string(ctx.Request.Header.Peek("X-Request-Id"))] = true
		mu.Unlock()
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
	})
	good := newOrigin(t, "good", cacheable("public, max-age=60"))
	e, out := cacheLogEdge(t, bad, good)
	const n = 6
	for i := 0; i < n; i++ {
		if r := e.do(t, "GET", fmt.Sprintf("/c/retry?i=%d", i), "", fmt.Sprintf("X-Request-Id: m-%d", i)); r.StatusCode() != 200 {
			t.Fatalf("GET %d: status %d", i, r.StatusCode())
		}
	}
	lines := accessLines(t, e, out)
	mu.Lock()
	defer mu.Unlock()
	if len(failed) == 0 {
		t.Fatalf("no first try of %d went to the failing host: round robin should send some there", n)
	}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("m-%d", i)
		want := 1
		if failed[id] {
			want = 2
		}
		if l := lines[id]; l.Upstream != "good" || int(l.Tries) != want {
			t.Errorf("%s: logged upstream %q tries %v, want good %d", id, l.Upstream, l.Tries, want)
		}
	}
}

// TestAccessLogCacheCoalesced: clients that waited on another request's fill
// log no upstream and 0 tries (they reached no origin); only requests that
// fetched themselves (the leader, or a waiter whose wait did not pay off) log
// the origin, so the lines naming it match the origin's count.
func TestAccessLogCacheCoalesced(t *testing.T) {
	release := make(chan struct{})
	good := newOrigin(t, "good", func(ctx *fasthttp.RequestCtx) {
		<-release
		cacheable("public, max-age=60")(ctx)
	})
	e, out := cacheLogEdge(t, good)
	const n = 8
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := e.do(t, "GET", "/c/coalesce", "", fmt.Sprintf("X-Request-Id: w-%d", i)); r.StatusCode() != 200 {
				t.Errorf("GET %d: status %d", i, r.StatusCode())
			}
		}()
	}
	time.Sleep(300 * time.Millisecond) // the waiters join the fill
	close(release)
	wg.Wait()
	lines := accessLines(t, e, out)
	named := 0
	for i := 0; i < n; i++ {
		l, ok := lines[fmt.Sprintf("w-%d", i)]
		switch {
		case !ok:
			t.Fatalf("w-%d: no access line", i)
		case l.Upstream == "good" && l.Tries == 1:
			named++
		case l.Upstream != "" || l.Tries != 0:
			t.Errorf("w-%d: logged upstream %q tries %v", i, l.Upstream, l.Tries)
		}
	}
	if hits := int(good.hits.Load()); named != hits || named == 0 {
		t.Fatalf("%d lines name the origin, which answered %d requests", named, hits)
	}
}

// TestAccessLogCacheBackgroundRevalidation: stale-while-revalidate hits log
// no upstream and 0 tries while their background refreshes reach the origin
// after the handler returned; run with -race, a refresh writing into the
// pooled exchange another request already uses would be reported.
func TestAccessLogCacheBackgroundRevalidation(t *testing.T) {
	good := newOrigin(t, "good", cacheable("public, max-age=0, stale-while-revalidate=600"))
	e, out := cacheLogEdge(t, good)
	const keys, clients, rounds = 3, 4, 15
	for k := 0; k < keys; k++ {
		if r := e.do(t, "GET", fmt.Sprintf("/c/swr?k=%d", k), ""); r.StatusCode() != 200 {
			t.Fatalf("fill %d: status %d", k, r.StatusCode())
		}
	}
	before := good.hits.Load()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				r := e.do(t, "GET", fmt.Sprintf("/c/swr?k=%d", i%keys), "", fmt.Sprintf("X-Request-Id: s-%d-%d", c, i))
				if cs := header(r, cache.HeaderCacheStatus); r.StatusCode() != 200 || !strings.Contains(cs, "hit") {
					t.Errorf("status %d, Cache-Status %q: want a stale hit", r.StatusCode(), cs)
				}
			}
		}()
	}
	wg.Wait()
	// Background refreshes may still run; Shutdown waits for the cache's.
	deadline := time.Now().Add(10 * time.Second)
	for good.hits.Load() == before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if good.hits.Load() == before {
		t.Fatal("no background revalidation reached the origin")
	}
	lines := accessLines(t, e, out)
	for c := 0; c < clients; c++ {
		for i := 0; i < rounds; i++ {
			id := fmt.Sprintf("s-%d-%d", c, i)
			if l, ok := lines[id]; !ok || l.Upstream != "" || l.Tries != 0 {
				t.Errorf("%s: line %+v (found %v), want no upstream and 0 tries", id, l, ok)
			}
		}
	}
}
