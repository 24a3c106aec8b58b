package proxy

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/proxy/cache"
	"github.com/novashop/edge/proxy/config"
)

// TestForwardedLazyOnHits: on the event-loop core a request that may be a
// raw hit leaves X-Forwarded-For/-Proto unset until something needs them
// (exchange.setForwarded). On both cores, a cached edge with raw hits and
// one without (noRawHits: the rewrite at once, as before) must send the
// origin exactly the same fields in the same order on a miss, and an entry
// that varies on X-Forwarded-For or X-Forwarded-Proto must be looked up
// with the values the origin saw: a client whose own X-Forwarded-For equals
// the chain another client's request was stored under gets its own
// variant, not that one.
func TestForwardedLazyOnHits(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	o := newOrigin(t, "o1", func(ctx *fasthttp.RequestCtx) {
		var b strings.Builder
		for k, v := range ctx.Request.Header.All() {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
		mu.Lock()
		seen = append(seen, b.String())
		mu.Unlock()
		h := &ctx.Response.Header
		h.Set("Cache-Control", "public, s-maxage=600")
		rh := &ctx.Request.Header
		switch string(ctx.Path()) {
		case "/api/products/7/":
			h.Set("Vary", "X-Forwarded-Proto")
			ctx.SetBodyString("proto=" + string(rh.Peek("X-Forwarded-Proto")))
		case "/api/products/8/":
			h.Set("Vary", "X-Forwarded-For")
			ctx.SetBodyString("for=" + string(rh.Peek("X-Forwarded-For")))
		default:
			ctx.SetBodyString("plain")
		}
	})
	seenLast := func() string {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			return ""
		}
		return seen[len(seen)-1]
	}
	trust := config.Forwarded{Trusted: []string{"127.0.0.1", "::1"}, Header: config.ForwardedXFF}
	type req struct {
		name, path, want string
		hdr              []string
	}
	reqs := []req{
		{"proto https", "/api/products/7/", "proto=https", []string{"X-Forwarded-Proto: https"}},
		{"proto ssl on", "/api/products/7/", "proto=https", []string{"X-Forwarded-Ssl: on"}},
		{"proto none", "/api/products/7/", "proto=http", nil},
		{"for one", "/api/products/8/", "for=203.0.113.7, 127.0.0.1", []string{"X-Forwarded-For: 203.0.113.7"}},
		// Its raw X-Forwarded-For is the chain "for one" was stored under.
		{"for two", "/api/products/8/", "for=203.0.113.7, 127.0.0.1, 127.0.0.1", []string{"X-Forwarded-For: 203.0.113.7, 127.0.0.1"}},
		{"for none", "/api/products/8/", "for=127.0.0.1", nil},
	}
	for _, io := range []string{config.IOGoroutine, config.IOEventLoop} {
		t.Run(io, func(t *testing.T) {
			ns := fmt.Sprintf("fwdlazy-%s-%d-", io, time.Now().UnixNano())
			start := func(noRaw bool) *edge {
				c, err := cache.New(cache.Config{RedisURL: testenv.Redis(t), RedisTimeout: testRedisTimeout, Namespace: fmt.Sprintf("%s%v:", ns, noRaw)}, zap.NewNop())
				if err != nil {
					t.Fatal(err)
				}
				cfg := testConfig(o)
				cfg.IO = io
				cfg.Forwarded = trust
				return startEdge(t, cfg, Options{Cache: c}, func(s *Server) { s.noRawHits = noRaw })
			}
			raw, old := start(false), start(true)
			get := func(e *edge, r req) (string, string) {
				h := append([]string{"X-Request-Id: rid-1"}, r.hdr...)
				if r.name == "no id" {
					h = r.hdr
				}
				resp := rawHitExchange(t, e.addr, "GET", r.path, "HTTP/1.1", h)
				_, body, _ := strings.Cut(resp, "\r\n\r\n")
				return resp, body
			}
			for _, e := range []*edge{raw, old} {
				waitUntil(t, "every variant a hit", 20*time.Second, func() bool {
					hits := 0
					for _, r := range reqs {
						if resp, _ := get(e, r); strings.Contains(resp, "; hit\r\n") {
							hits++
						}
					}
					return hits == len(reqs)
				})
				for _, r := range reqs { // tag versions local too
					get(e, r)
				}
			}
			var before uint64
			if raw.s.loops != nil {
				before = raw.s.loops.Stats().Raw
			}
			for _, e := range []*edge{raw, old} {
				for _, r := range reqs {
					resp, body := get(e, r)
					if !strings.Contains(resp, "; hit\r\n") || body != r.want {
						t.Errorf("%s (noRawHits %v): body %q, want %q (hit): %q", r.name, e.s.noRawHits, body, r.want, resp)
					}
				}
			}
			if io == config.IOEventLoop {
				if n := raw.s.loops.Stats().Raw - before; n != uint64(len(reqs)) {
					t.Errorf("%d variant hits written raw, want %d", n, len(reqs))
				}
			}
			// A miss: the origin sees the same fields in the same order from
			// both edges.
			// Made request ids differ by design: compare them by shape.
			genID := regexp.MustCompile(`(?m)^X-Request-Id: [0-9a-f]+-[0-9a-f]+$`)
			misses := []req{
				{path: "/api/products/9/", hdr: []string{"X-Forwarded-For: 203.0.113.7", "X-Forwarded-Proto: https", "Accept: */*", "X-User-Id: 9"}},
				{path: "/api/products/7/?x=1", hdr: []string{"X-Forwarded-For: 203.0.113.7", "X-Forwarded-Proto: https", "Accept: */*", "X-User-Id: 9"}},
				// A made request id: set in place of the invalid one.
				{name: "no id", path: "/api/products/10/", hdr: []string{"X-Forwarded-For: 203.0.113.7", "X-Request-Id: a b", "X-Forwarded-Proto: https"}},
				{name: "no id", path: "/api/products/11/", hdr: []string{"X-Forwarded-For: 203.0.113.7", "X-Forwarded-Proto: https"}},
			}
			for i, m := range misses {
				path, r := m.path, m
				var dumps [2]string
				for j, e := range []*edge{raw, old} {
					r.path = fmt.Sprintf("%s%sm=%d", path, map[bool]string{false: "?", true: "&"}[strings.Contains(path, "?")], j)
					resp, _ := get(e, r)
					if strings.Contains(resp, "; hit\r\n") {
						t.Fatalf("miss %d: a hit: %q", i, resp)
					}
					dumps[j] = genID.ReplaceAllString(seenLast(), "X-Request-Id: <made>")
					if m.name == "no id" && !strings.Contains(dumps[j], "X-Request-Id: <made>\n") {
						t.Errorf("miss %d: no made request id: %s", i, dumps[j])
					}
				}
				if dumps[0] != dumps[1] {
					t.Errorf("miss %d: the origin saw\n%s from the raw-hit edge and\n%s from the other", i, dumps[0], dumps[1])
				}
				for _, want := range []string{"X-Forwarded-For: 203.0.113.7, 127.0.0.1\n", "X-Forwarded-Proto: https\n"} {
					if strings.Count(dumps[0], want) != 1 {
						t.Errorf("miss %d: the origin saw\n%s\nwant one %q", i, dumps[0], want)
					}
				}
			}
		})
	}
}
