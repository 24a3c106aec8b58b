package cache

import (
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/internal/testenv"
)

func TestMissThenHit(t *testing.T) {
	url := testenv.Redis(t)
	clk := newClock()
	c := newTestCache(t, url, randName(t), clk)
	tag := "t-" + randName(t)
	o := newOrigin(static(200, `{"ok":true}`, "Cache-Control", "public, max-age=60", "Content-Type", "application/json", "Cache-Tag", tag))
	r1 := do(c, o, "GET", "/api/products/1/")
	if got := cacheStatus(r1); got != "novashop-edge; fwd=uri-miss; fwd-status=200; stored" {
		t.Fatalf("first Cache-Status = %q", got)
	}
	if len(r1.Header.Peek("Cache-Tag")) != 0 {
		t.Fatalf("Cache-Tag forwarded to the client")
	}
	clk.advance(5 * time.Second)
	var r2 *fasthttp.Response
	eventually(t, 2*time.Second, "a hit", func() bool { r2 = do(c, o, "GET", "/api/products/1/"); return isHit(r2) })
	if string(r2.Body()) != `{"ok":true}` || string(r2.Header.ContentType()) != "application/json" {
		t.Fatalf("hit body %q type %q", r2.Body(), r2.Header.ContentType())
	}
	if age := string(r2.Header.Peek("Age")); age != "5" {
		t.Fatalf("Age = %q, want 5", age)
	}
	if len(r2.Header.Peek("Cache-Tag")) != 0 {
		t.Fatalf("Cache-Tag forwarded on a hit")
	}
	if n := o.calls.Load(); n != 1 {
		t.Fatalf("origin saw %d requests, want 1", n)
	}
	var m strings.Builder
	c.WritePrometheus(&m)
	for _, series := range []string{`edge_cache_requests_total{result="hit"}`, `edge_cache_stored_total 1`, `edge_cache_redis_up 1`} {
		if !strings.Contains(m.String(), series) {
			t.Errorf("metrics lack %s:\n%s", series, m.String())
		}
	}
}
