package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/proxy/cache"
	"github.com/novashop/edge/proxy/config"
)

// TestEventLoopRawHitsMatch serves the same cache entries through the raw hit
// path (the stored head copied to the connection, serveRaw) and through the
// ResponseHeader path (noRawHits) on two event-loop edges over one Redis
// namespace and a frozen clock, and compares what arrives on the socket byte
// for byte: GET, HEAD, 304s to conditional requests, ranges, Vary variants,
// HTTP/1.0 with and without keep-alive, Connection: close, generated and kept
// request ids, entries the raw path declines (no body, a stored 404), draining,
// and, with compression on, where the raw path stands aside.
func TestEventLoopRawHitsMatch(t *testing.T) {
	lastMod := "Sun, 06 Dec 2026 19:00:00 GMT"
	o := newOrigin(t, "o1", func(ctx *fasthttp.RequestCtx) {
		h := &ctx.Response.Header
		h.Set("Cache-Control", "public, s-maxage=600")
		h.Set("Cache-Tag", "product:1")
		switch string(ctx.Path()) {
		case "/api/products/1/":
			h.Set("ETag", `"v1"`)
			h.Set("Last-Modified", lastMod)
			h.SetContentType("application/json")
			ctx.SetBodyString(`{"id":1,"name":"` + strings.Repeat("tea ", 400) + `"}`)
		case "/api/products/2/":
			h.Set("Vary", "Accept-Language")
			h.SetContentType("text/plain; charset=utf-8")
			ctx.SetBodyString("hello in " + string(ctx.Request.Header.Peek("Accept-Language")))
		case "/api/products/3/":
			h.Set("Server", "shop-origin")
			h.Set("x-lower", "1")
			h.Set("Link", "</a>; rel=preload")
			h.Add("Link", "</b>; rel=preload")
			h.Set("Content-Encoding", "identity-ish")
			ctx.SetBodyString("three")
		case "/api/products/4/":
			ctx.SetBodyString("")
		case "/api/products/5/":
			ctx.SetStatusCode(404)
			ctx.SetBodyString(`{"error":"not found"}`)
		}
	})
	ns := fmt.Sprintf("rawhit-%d:", time.Now().UnixNano())
	frozen := time.Now().Add(2 * time.Second)
	newCache := func() *cache.Cache {
		c, err := cache.New(cache.Config{RedisURL: testenv.Redis(t), RedisTimeout: testRedisTimeout, Namespace: ns, Now: func() time.Time { return frozen }}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	type req struct {
		name, path, method, proto string
		hdr                       []string
	}
	id := []string{"X-Request-Id: rid-1"}
	with := func(h ...string) []string { return append(append([]string(nil), id...), h...) }
	reqs := []req{
		{"get", "/api/products/1/", "GET", "HTTP/1.1", id},
		{"head", "/api/products/1/", "HEAD", "HTTP/1.1", id},
		{"if-none-match", "/api/products/1/", "GET", "HTTP/1.1", with(`If-None-Match: "v1"`)},
		{"if-none-match head", "/api/products/1/", "HEAD", "HTTP/1.1", with(`If-None-Match: W/"v1", "x"`)},
		{"if-none-match other", "/api/products/1/", "GET", "HTTP/1.1", with(`If-None-Match: "v0"`)},
		{"if-modified-since", "/api/products/1/", "GET", "HTTP/1.1", with("If-Modified-Since: " + lastMod)},
		{"if-modified-since older", "/api/products/1/", "GET", "HTTP/1.1", with("If-Modified-Since: Sun, 06 Dec 2026 10:00:00 GMT")},
		{"range", "/api/products/1/", "GET", "HTTP/1.1", with("Range: bytes=2-9")},
		{"range unsatisfiable", "/api/products/1/", "GET", "HTTP/1.1", with("Range: bytes=90000-")},
		{"http/1.0", "/api/products/1/", "GET", "HTTP/1.0", id},
		{"http/1.0 keep-alive", "/api/products/1/", "GET", "HTTP/1.0", with("Connection: keep-alive")},
		{"connection close", "/api/products/1/", "GET", "HTTP/1.1", with("Connection: close")},
		{"generated request id", "/api/products/1/", "GET", "HTTP/1.1", nil},
		{"invalid request id", "/api/products/1/", "GET", "HTTP/1.1", []string{"X-Request-Id: a b"}},
		{"vary en", "/api/products/2/", "GET", "HTTP/1.1", with("Accept-Language: en")},
		{"vary de", "/api/products/2/", "GET", "HTTP/1.1", with("Accept-Language: de")},
		{"vary de head", "/api/products/2/", "HEAD", "HTTP/1.1", with("Accept-Language: de")},
		{"special fields", "/api/products/3/", "GET", "HTTP/1.1", id},
		{"empty body", "/api/products/4/", "GET", "HTTP/1.1", id},
		{"empty body head", "/api/products/4/", "HEAD", "HTTP/1.1", id},
		{"stored 404", "/api/products/5/", "GET", "HTTP/1.1", id},
	}
	// Generated request ids differ by design: compare them by shape.
	genID := regexp.MustCompile(`(?m)^X-Request-Id: [0-9a-f]+-[0-9a-f]+\r$`)
	norm := func(s string) string { return genID.ReplaceAllString(s, "X-Request-Id: <generated>\r") }
	run := func(t *testing.T, cfg config.Config, wantRaw bool, drain bool) {
		raw := startEdge(t, cfg, Options{Cache: newCache()})
		old := startEdge(t, cfg, Options{Cache: newCache()}, func(s *Server) { s.noRawHits = true })
		if drain {
			raw.s.Drain()
			old.s.Drain()
		}
		// Fill, then let each edge take every entry and tag into its local
		// tier: every request a hit on both (a loaded machine may take a
		// while to connect a cache to Redis, which it bypasses meanwhile).
		for _, e := range []*edge{raw, old} {
			waitUntil(t, "every request a hit", 20*time.Second, func() bool {
				hits := 0
				for _, r := range reqs {
					if strings.Contains(rawHitExchange(t, e.addr, r.method, r.path, "HTTP/1.1", r.hdr), "; hit\r\n") {
						hits++
					}
				}
				return hits == len(reqs)
			})
			for _, r := range reqs { // tag versions local too
				rawHitExchange(t, e.addr, r.method, r.path, "HTTP/1.1", r.hdr)
			}
		}
		before := raw.s.loops.Stats().Raw
		for _, r := range reqs {
			got := norm(rawHitExchange(t, raw.addr, r.method, r.path, r.proto, r.hdr))
			want := norm(rawHitExchange(t, old.addr, r.method, r.path, r.proto, r.hdr))
			if got != want {
				t.Errorf("%s:\nraw path %q\n old path %q", r.name, clip(got), clip(want))
			}
			if !strings.Contains(got, "; hit\r\n") {
				t.Errorf("%s: not a hit: %q", r.name, got)
			}
		}
		// Pipelined: three hits in one write, the last asking to close; the
		// answers go out in order through the same output buffer.
		pipe := "GET /api/products/1/ HTTP/1.1\r\nHost: shop.test\r\nX-Request-Id: p1\r\n\r\n" +
			"HEAD /api/products/2/ HTTP/1.1\r\nHost: shop.test\r\nAccept-Language: en\r\nX-Request-Id: p2\r\n\r\n" +
			"GET /api/products/1/ HTTP/1.1\r\nHost: shop.test\r\nIf-None-Match: \"v1\"\r\nX-Request-Id: p3\r\nConnection: close\r\n\r\n"
		piped := 3
		if drain {
			piped = 1 // the first answer says close
		}
		if got, want := pipelined(t, raw.addr, pipe), pipelined(t, old.addr, pipe); got != want || strings.Count(got, "; hit\r\n") != piped {
			t.Errorf("pipelined:\nraw path %q\n old path %q", got, want)
		}
		n := raw.s.loops.Stats().Raw - before
		if wantRaw {
			n -= uint64(piped)
		}
		if old.s.loops.Stats().Raw != 0 {
			t.Error("the old-path edge wrote raw answers")
		}
		// Everything but the ranges, the empty body and the 404 goes raw.
		if want := uint64(len(reqs) - 5); wantRaw && n != want {
			t.Errorf("%d answers written raw, want %d", n, want)
		} else if !wantRaw && n != 0 {
			t.Errorf("%d answers written raw, want none", n)
		}
	}
	cfg := testConfig(o)
	cfg.IO = config.IOEventLoop
	t.Run("identity", func(t *testing.T) { run(t, cfg, true, false) })
	t.Run("draining", func(t *testing.T) { run(t, cfg, true, true) })
	t.Run("compression", func(t *testing.T) {
		c := cfg
		c.Compression.Encodings = []string{"gzip"}
		c.Compression.MinBytes = 10
		c.Compression.Types = []string{"application/json", "text/*"}
		run(t, c, false, false)
	})
}

// rawHitExchange sends one request on a fresh connection and returns the answer's
// bytes exactly as they arrived (its body framed by Content-Length; none for
// HEAD and 304).
func rawHitExchange(t *testing.T, addr, method, path, proto string, hdr []string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s\r\nHost: shop.test\r\n", method, path, proto)
	for _, h := range hdr {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var head bytes.Buffer
	n := -1
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("%s %s: reading the head: %v (%q)", method, path, err, head.String()+line)
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
		if k, v, ok := strings.Cut(strings.TrimRight(line, "\r\n"), ":"); ok && strings.EqualFold(k, "Content-Length") {
			n, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if method == "HEAD" || strings.HasPrefix(head.String(), proto[:5]+"1.1 304") || n <= 0 {
		return head.String()
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return head.String() + string(body)
}

// clip shortens an answer for a failure message: the head and the body's start.
func clip(s string) string {
	if i := strings.Index(s, "\r\n\r\n"); i >= 0 && len(s) > i+4+40 {
		return s[:i+4+40] + "..."
	}
	return s
}

// pipelined writes reqs at once and returns everything the edge sends until it
// closes the connection.
func pipelined(t *testing.T, addr, reqs string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, reqs); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
