package proxy

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/proxy/cache"
)

// TestCachedAnswerKeepsItsDate: RFC 9110 §6.6.1 and RFC 9111 §4: a hit
// carries the Date the origin sent (fasthttp's server would write the
// current time over it), Age the time spent in the cache; answers the edge
// makes itself, and forwarded ones, still carry exactly one Date.
func TestCachedAnswerKeepsItsDate(t *testing.T) {
	o := newOrigin(t, "a", func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Cache-Control", "max-age=600")
		ctx.Response.Header.Set("Expires", "Wed, 01 Jan 2031 00:00:00 GMT")
		ctx.SetBodyString("page")
	})
	cfg := testConfig(o)
	c, err := cache.New(cache.Config{RedisURL: testenv.Redis(t), RedisTimeout: testRedisTimeout, Namespace: fmt.Sprintf("date-%d:", time.Now().UnixNano()),
		TagIndexNamespace: fmt.Sprintf("date-ti-%d:", time.Now().UnixNano())}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	e := startEdge(t, cfg, Options{Cache: c})
	first := e.do(t, "GET", "/d", "")
	date := header(first, "Date")
	if _, err := fasthttp.ParseHTTPDate([]byte(date)); err != nil {
		t.Fatalf("miss Date %q: %v", date, err)
	}
	var hit *fasthttp.Response
	waitUntil(t, "a hit", 2*time.Second, func() bool {
		hit = e.do(t, "GET", "/d", "")
		return strings.Contains(header(hit, "Cache-Status"), "; hit")
	})
	time.Sleep(1100 * time.Millisecond)
	hit = e.do(t, "GET", "/d", "")
	if got := header(hit, "Date"); got != date {
		t.Fatalf("hit Date %q, want the stored %q (Cache-Status %q)", got, date, header(hit, "Cache-Status"))
	}
	if age, _ := strconv.Atoi(header(hit, "Age")); age < 1 {
		t.Fatalf("hit Age %q, want at least 1 s", header(hit, "Age"))
	}
	if n := len(hit.Header.PeekAll("Date")); n != 1 {
		t.Fatalf("%d Date lines on a hit", n)
	}

	// The edge's own answer (its only origin is gone) still has a Date.
	o.kill()
	r := e.do(t, "GET", "/nothing-stored", "")
	if r.StatusCode() < 500 || len(r.Header.Peek("Date")) == 0 {
		t.Fatalf("edge error answer %d without Date: %q", r.StatusCode(), r.Header.Header())
	}
}
