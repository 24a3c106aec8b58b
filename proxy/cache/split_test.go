package cache

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/internal/testenv"
)

// TestServeSplitFetches: ServeSplit calls fetch only for the request in hand
// and only before it returns (the edge notes the origin in pooled per-request
// state there), and background only for a background revalidation.
func TestServeSplitFetches(t *testing.T) {
	const fresh, swr = "max-age=10", "max-age=10, stale-while-revalidate=60"
	tests := []struct {
		name           string
		cc             string        // the origin's Cache-Control
		method         string        // of the request checked, after a GET filled
		advance        time.Duration // clock advance between fill and the request checked
		wantFg, wantBg int64
	}{
		{"hit", fresh, "GET", 0, 0, 0},
		{"foreground revalidation", fresh, "GET", 30 * time.Second, 1, 0},
		{"stale-while-revalidate", swr, "GET", 30 * time.Second, 0, 1},
		{"unsafe method", fresh, "POST", 0, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			c := newTestCache(t, testenv.Redis(t), randName(t), clk)
			o := newOrigin(static(200, "v", "Cache-Control", tt.cc))
			var inServe atomic.Bool
			var fg, bg, late atomic.Int64
			fgFetch := func(req *fasthttp.Request, resp *fasthttp.Response) error {
				if !inServe.Load() {
					late.Add(1)
				}
				fg.Add(1)
				return o.fetch(req, resp)
			}
			bgFetch := func(req *fasthttp.Request, resp *fasthttp.Response) error {
				bg.Add(1)
				return o.fetch(req, resp)
			}
			serve := func(method string) *fasthttp.Response {
				var ctx fasthttp.RequestCtx
				ctx.Request.Header.SetMethod(method)
				ctx.Request.SetRequestURI("/split")
				ctx.Request.Header.SetHost("shop.test")
				inServe.Store(true)
				c.ServeSplit(&ctx, fgFetch, bgFetch)
				inServe.Store(false)
				out := &fasthttp.Response{}
				ctx.Response.CopyTo(out)
				return out
			}
			if r := serve("GET"); fg.Load() != 1 || bg.Load() != 0 || r.StatusCode() != 200 {
				t.Fatalf("miss: status %d, fetch %d, background %d; want 200, 1, 0", r.StatusCode(), fg.Load(), bg.Load())
			}
			eventually(t, 2*time.Second, "the entry", func() bool { return isHit(do(c, newOrigin(static(500, "")), "GET", "/split")) })
			fg.Store(0)
			clk.advance(tt.advance)
			serve(tt.method)
			if tt.wantBg > 0 {
				eventually(t, 5*time.Second, "the background revalidation", func() bool { return bg.Load() >= tt.wantBg })
			}
			if fg.Load() != tt.wantFg || bg.Load() != tt.wantBg || late.Load() != 0 {
				t.Fatalf("fetch %d (after return: %d), background %d; want %d, 0, %d", fg.Load(), late.Load(), bg.Load(), tt.wantFg, tt.wantBg)
			}
		})
	}
}
