package proxy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/proxy/cache"
)

// TestStreamDownloadThroughCache: with the cache on, a response larger than
// the cache stores streams through to the client (bounded heap, identical
// bytes, the origin connection released), while a small cacheable answer on
// the same edge is still stored and then served from memory.
func TestStreamDownloadThroughCache(t *testing.T) {
	const size = 50 << 20
	o := newStreamOrigin(t)
	cfg := streamConfig(o)
	cfg.Cache.MaxEntryBytes = 1 << 20
	c, err := cache.New(cache.Config{RedisURL: testenv.Redis(t), RedisTimeout: testRedisTimeout, Namespace: fmt.Sprintf("stream-%d:", time.Now().UnixNano()),
		MaxEntryBytes: cfg.Cache.MaxEntryBytes}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	e := startEdge(t, cfg, Options{Cache: c})

	for _, chunked := range []string{"0", "1"} {
		t.Run("chunked="+chunked, func(t *testing.T) {
			h := downloadGen(t, e.addr, fmt.Sprintf("/download?n=%d&chunked=%s&cacheable=1", size, chunked), size, 12<<20)
			if cs := string(h.Peek(cache.HeaderCacheStatus)); !strings.Contains(cs, "detail=too-big") {
				t.Fatalf("Cache-Status %q, want a too-big pass-through", cs)
			}
		})
	}

	// HEAD fills with a full GET, whose 8 MiB stream is never written: the
	// answer's reset must close it and release the origin connection, or
	// each request would leave one open on the origin.
	for i := 0; i < 20; i++ {
		r := e.do(t, "HEAD", fmt.Sprintf("/download?n=%d&cacheable=1&i=%d", 8<<20, i), "")
		if r.StatusCode() != 200 || header(r, "Content-Length") != fmt.Sprint(8<<20) {
			t.Fatalf("HEAD %d: status %d, Content-Length %q", i, r.StatusCode(), header(r, "Content-Length"))
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for o.srv.GetOpenConnectionsCount() > 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d origin connections still open after the HEAD requests: streams leaked", o.srv.GetOpenConnectionsCount())
		}
		time.Sleep(10 * time.Millisecond)
	}
	small := fmt.Sprintf("/download?n=%d&cacheable=1", 4096)
	first := e.do(t, "GET", small, "")
	second := e.do(t, "GET", small, "")
	if first.StatusCode() != 200 || len(second.Body()) != 4096 || !strings.Contains(header(second, cache.HeaderCacheStatus), "hit") {
		t.Fatalf("small cacheable answer: %d, then %d bytes with Cache-Status %q; want a hit",
			first.StatusCode(), len(second.Body()), header(second, cache.HeaderCacheStatus))
	}
}
