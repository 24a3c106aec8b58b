package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/proxy/config"
)

// TestH2FieldLimits: the HTTP/1.1 per-line limits (limits.max_header_fields,
// limits.max_field_line_bytes) hold over HTTP/2 too, on both HTTP/2 servers:
// too many fields or one field line too long gets 431 with the JSON error and
// never reaches the origin, while cookie crumbs count as the one Cookie line
// they are joined into.
func TestH2FieldLimits(t *testing.T) { forH2Servers(t, testH2FieldLimits) }

func testH2FieldLimits(t *testing.T, kind string) {
	var seen atomic.Int64
	o := newOrigin(t, "o1", func(ctx *fasthttp.RequestCtx) {
		seen.Add(1)
		ctx.SetBodyString(string(ctx.Request.Header.Peek("Cookie")))
	})
	e, ca := newH2Edge(t, kind, o, func(c *config.Config) {
		c.Limits.MaxHeaderFields = 20
		c.Limits.MaxFieldLineBytes = 200
	})
	hc := h2Client(ca)
	base := "https://" + e.tlsAddr
	cases := []struct {
		name   string
		set    func(h http.Header)
		status int
	}{
		{"within the limits", func(h http.Header) {
			for i := 0; i < 10; i++ {
				h.Set(fmt.Sprintf("X-F%d", i), "v")
			}
		}, 200},
		{"too many fields", func(h http.Header) {
			for i := 0; i < 25; i++ {
				h.Set(fmt.Sprintf("X-F%d", i), "v")
			}
		}, 431},
		{"one field line too long", func(h http.Header) { h.Set("X-Long", strings.Repeat("a", 200)) }, 431},
		{"a field line at the limit", func(h http.Header) { h.Set("X-Long", strings.Repeat("a", 200-len("x-long: "))) }, 200},
		// 30 crumbs are one Cookie line of 30×5+29×2 = 208 bytes (with
		// "cookie: "): over the line limit, though each crumb is short and
		// 30 of them would also be over the field count if counted apart.
		{"cookie crumbs joined over the line limit", func(h http.Header) {
			for i := 0; i < 30; i++ {
				h.Add("Cookie", fmt.Sprintf("c%02d=1", i))
			}
		}, 431},
		{"cookie crumbs count as one field", func(h http.Header) {
			for i := 0; i < 25; i++ {
				h.Add("Cookie", fmt.Sprintf("c%d=", i%10))
			}
		}, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := seen.Load()
			req, _ := http.NewRequest("GET", base+"/fields", nil)
			tc.set(req.Header)
			r, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if r.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", r.StatusCode, tc.status, body)
			}
			if tc.status == 431 {
				if !strings.HasPrefix(string(body), `{"error":`) {
					t.Errorf("431 body %q, want the JSON error", body)
				}
				if seen.Load() != before {
					t.Error("a refused request reached the origin")
				}
			}
		})
	}
}
