//lint:file-ignore SA1019 the tests drive x/net http2 (Server.ServeConn, Transport), which net/http Protocols does not offer; see docs/protocols.md.

package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/proxy/cache"
	"github.com/novashop/edge/proxy/config"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

const h2cSecret = "0123456789abcdef0123456789abcdef"

// h2cClient speaks HTTP/2 with prior knowledge over plain TCP.
func h2cClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// h2cConfig is testConfig with h2c on, on the suite's I/O core
// (EDGE_TEST_IO: make test runs these on both).
func h2cConfig(o *origin, kind string) config.Config {
	cfg := testConfig(o)
	cfg.H2C = true
	cfg.H2CServer = kind
	return cfg
}

// TestH2CSamePipeline: prior-knowledge HTTP/2 on the plaintext listener goes
// through the one handler: forwarding with X-Forwarded-Proto http and the
// client's address, the request id, hop-by-hop stripping, the JWT check (a
// missing token refused, a valid one forwarded as X-User-Id), the cache (hit,
// purge) and rate limits; HTTP/1.1 keeps working on the same port, the
// strict h1 framer included.
func TestH2CSamePipeline(t *testing.T) { forH2Servers(t, testH2CSamePipeline) }

func testH2CSamePipeline(t *testing.T, kind string) {
	o := newOrigin(t, "o1", func(ctx *fasthttp.RequestCtx) {
		if strings.HasPrefix(string(ctx.Path()), "/products/") {
			ctx.Response.Header.Set("Cache-Control", "public, max-age=60")
			ctx.Response.Header.Set("Cache-Tag", "p")
		}
		ctx.Response.Header.Set("Keep-Alive", "timeout=5")
		ctx.SetBodyString("hello " + string(ctx.RequestURI()))
	})
	cfg := h2cConfig(o, kind)
	cfg.RateLimits = []config.RateLimit{rateRule("limited", "/limited/", nil, 0.001, 2, 0, 0)}
	c, err := cache.New(cache.Config{RedisURL: testenv.Redis(t), RedisTimeout: testRedisTimeout, Namespace: fmt.Sprintf("h2c-%d:", time.Now().UnixNano())}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	e := startEdge(t, cfg, Options{Cache: c, JWTSecret: []byte(h2cSecret)})
	hc := h2cClient()
	base := "http://" + e.addr

	r, body := get(t, hc, base+"/a/b?c=d", "X-Request-Id: h2c-req-1")
	if r.ProtoMajor != 2 || body != "hello /a/b?c=d" {
		t.Fatalf("h2c GET: proto %s, body %q", r.Proto, body)
	}
	if p, f := r.Header.Get("X-Echo-X-Forwarded-Proto"), r.Header.Get("X-Echo-X-Forwarded-For"); p != "http" || f != "127.0.0.1" {
		t.Errorf("forwarded headers: proto %q for %q", p, f)
	}
	if id := r.Header.Get("X-Request-Id"); id != "h2c-req-1" {
		t.Errorf("X-Request-Id %q, want the client's", id)
	}
	if ka := r.Header.Get("Keep-Alive"); ka != "" {
		t.Errorf("hop-by-hop Keep-Alive reached the client: %q", ka)
	}

	// JWT: refused without a token, forwarded with the verified user with one.
	if r, body := get(t, hc, base+"/api/orders/"); r.StatusCode != 401 || !strings.HasPrefix(body, `{"error":`) {
		t.Errorf("protected route without token over h2c: %d %s", r.StatusCode, body)
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "42", "role": "shopper", "iss": cfg.JWT.Issuer, "aud": cfg.JWT.Audience,
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix(),
	}).SignedString([]byte(h2cSecret))
	if err != nil {
		t.Fatal(err)
	}
	r, _ = get(t, hc, base+"/api/orders/", "Authorization: Bearer "+tok, "X-User-Id: 1")
	if r.StatusCode != 200 || r.Header.Get("X-Echo-X-User-Id") != "42" {
		t.Errorf("protected route with token over h2c: %d, origin saw X-User-Id %q", r.StatusCode, r.Header.Get("X-Echo-X-User-Id"))
	}

	// Cache: the second GET is a hit; after a purge a miss.
	get(t, hc, base+"/products/1/")
	r, _ = get(t, hc, base+"/products/1/")
	if cs := r.Header.Get("Cache-Status"); !strings.Contains(cs, "hit") {
		t.Errorf("second GET over h2c: Cache-Status %q, want a hit", cs)
	}
	if pr := e.adminDo(t, "POST", "/admin/purge", `{"tags":["p"]}`); pr.StatusCode() != 200 {
		t.Fatalf("purge: %d %s", pr.StatusCode(), pr.Body())
	}
	if r, _ = get(t, hc, base+"/products/1/"); strings.Contains(r.Header.Get("Cache-Status"), "hit") {
		t.Errorf("GET after purge over h2c: Cache-Status %q, want a miss", r.Header.Get("Cache-Status"))
	}

	// Rate limit per client IP: burst 2, then 429.
	codes := []int{}
	for i := 0; i < 3; i++ {
		r, _ := get(t, hc, base+"/limited/x")
		codes = append(codes, r.StatusCode)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Errorf("rate limit over h2c: %v, want [200 200 429]", codes)
	}

	// HTTP/1.1 on the same port, and its framer still refuses bad requests.
	if pr := e.do(t, "GET", "/h1", ""); pr.StatusCode() != 200 || string(pr.Body()) != "hello /h1" {
		t.Errorf("HTTP/1.1 beside h2c: %d %q", pr.StatusCode(), pr.Body())
	}
	raw, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(raw, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
	got, _ := io.ReadAll(raw)
	if !strings.HasPrefix(string(got), "HTTP/1.1 400") {
		t.Errorf("two Host headers over HTTP/1.1 beside h2c: %q", got)
	}
	if kind == config.H2ServerNative && e.s.h2c.f.native.Inlined.Load() == 0 {
		t.Error("no h2c cache hit was answered inline by the native server")
	}
	if n := e.s.h2c.f.calls.Load(); n != 9 {
		t.Errorf("%d requests went through the h2c bridge, want the 9 HTTP/2 ones", n)
	}
}

// TestH2CBounds: the plaintext HTTP/2 server has the TLS one's limits:
// streams past MaxConcurrentStreams are refused with at most that many
// handlers at once, a frame above 16 KiB ends the connection with
// FRAME_SIZE_ERROR, a header list above limits.max_header_bytes is refused
// before the handler, and a client that stops within the preface is closed
// after timeouts.read.
func TestH2CBounds(t *testing.T) { forH2Servers(t, testH2CBounds) }

func testH2CBounds(t *testing.T, kind string) {
	o := newOrigin(t, "o1", func(ctx *fasthttp.RequestCtx) {
		time.Sleep(200 * time.Millisecond)
		ctx.SetBodyString("ok")
	})
	cfg := h2cConfig(o, kind)
	cfg.Timeouts.Read = 400 * time.Millisecond
	e := startEdge(t, cfg, Options{})
	dial := func(t *testing.T) *h2raw {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		return startH2Raw(t, c)
	}

	t.Run("too many streams", func(t *testing.T) {
		h := dial(t)
		const streams = h2MaxStreams + 72
		blk := h.block("POST")
		for i := 0; i < streams; i++ {
			if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: blk, EndHeaders: true}); err != nil {
				t.Fatal(err)
			}
		}
		waitUntil(t, "refusals of the extra streams", 5*time.Second, func() bool {
			rst, goaway, _, closed := h.snapshot()
			return rst[http2.ErrCodeRefusedStream]+rst[http2.ErrCodeProtocol] >= streams-h2MaxStreams || goaway != nil || closed
		})
		if p := e.s.h2c.f.peak.Load(); p > h2MaxStreams {
			t.Errorf("%d handlers at once, bound %d", p, h2MaxStreams)
		}
	})

	t.Run("frame too large", func(t *testing.T) {
		h := dial(t)
		if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.block("POST"), EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		// 17 KiB of DATA: above the 16 KiB SETTINGS_MAX_FRAME_SIZE the edge announced.
		_ = h.fr.WriteData(1, true, make([]byte, 17<<10))
		if !h.waitEnd(3 * time.Second) {
			t.Fatal("connection still open after an oversized frame")
		}
		if _, goaway, _, _ := h.snapshot(); goaway == nil || *goaway != http2.ErrCodeFrameSize {
			t.Fatalf("GOAWAY %v, want FRAME_SIZE_ERROR", goaway)
		}
	})

	t.Run("header list too large", func(t *testing.T) {
		calls := e.s.h2c.f.calls.Load()
		h := dial(t)
		blk := h.block("GET", hpack.HeaderField{Name: "x-big", Value: strings.Repeat("b", 10<<10)}, hpack.HeaderField{Name: "x-big2", Value: strings.Repeat("c", 10<<10)})
		if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk[:min(len(blk), 16<<10)], EndStream: true, EndHeaders: len(blk) <= 16<<10}); err != nil {
			t.Fatal(err)
		}
		if len(blk) > 16<<10 {
			_ = h.fr.WriteContinuation(1, true, blk[16<<10:])
		}
		waitUntil(t, "a refusal of the header list", 5*time.Second, func() bool {
			_, goaway, status, closed := h.snapshot()
			return status["431"] > 0 || goaway != nil || closed
		})
		if n := e.s.h2c.f.calls.Load(); n != calls {
			t.Errorf("%d handlers ran for an oversized header list", n-calls)
		}
	})

	t.Run("stopped within the preface", func(t *testing.T) {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = io.WriteString(c, http2.ClientPreface[:10])
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		_, err = io.ReadAll(c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("connection still open 5s after a partial preface")
		}
		t.Logf("closed after %v", time.Since(start).Round(time.Millisecond))
	})

	// Still serving after all that.
	r, body := get(t, h2cClient(), "http://"+e.addr+"/after")
	if r.StatusCode != 200 || body != "ok" {
		t.Fatalf("after the bounds: %d %q", r.StatusCode, body)
	}
}

// TestH2CEventLoop: on the event-loop core, a connection that opens with the
// HTTP/2 preface (sent a byte at a time, so the loop sees every proper prefix)
// leaves the loop for the HTTP/2 server, and HTTP/1.1 on the same port stays on
// the loop, including a request whose method starts like the preface ("PR").
func TestH2CEventLoop(t *testing.T) {
	o := newOrigin(t, "o1", func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hi " + string(ctx.Method())) })
	cfg := h2cConfig(o, "")
	cfg.IO = config.IOEventLoop
	cfg.Timeouts.Read = time.Second
	e := startEdge(t, cfg, Options{})
	if e.s.loops == nil {
		t.Fatal("io: eventloop with h2c did not start the event loops")
	}

	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, b := range []byte(http2.ClientPreface) {
		if _, err := c.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatalf("no HTTP/2 frame after a preface sent byte by byte: %v", err)
	}
	if _, ok := f.(*http2.SettingsFrame); !ok {
		t.Fatalf("first frame %T, want SETTINGS", f)
	}
	if st := e.s.loops.Stats(); st.Detached != 1 {
		t.Fatalf("the HTTP/2 connection did not leave the loop: %+v", st)
	}

	r, body := get(t, h2cClient(), "http://"+e.addr+"/x")
	if r.ProtoMajor != 2 || r.StatusCode != 200 || body != "hi GET" {
		t.Fatalf("h2c GET: %s %d %q", r.Proto, r.StatusCode, body)
	}
	for _, m := range []string{"GET", "PRX"} {
		codes, last := rawExchange(t, e.addr, m+" /y HTTP/1.1\r\nHost: shop.test\r\n\r\n")
		if len(codes) != 1 || codes[0] != 200 || string(last.Body()) != "hi "+m {
			t.Fatalf("HTTP/1.1 %s on the h2c port: %v %q", m, codes, last.Body())
		}
	}
	if st := e.s.loops.Stats(); st.Detached != 2 {
		t.Fatalf("HTTP/1.1 connections left the loop (want only the two HTTP/2 ones): %+v", st)
	}

	// A partial preface then silence is closed unanswered within timeouts.read.
	p, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Write([]byte("PRI * HTTP/2")); err != nil {
		t.Fatal(err)
	}
	_ = p.SetReadDeadline(time.Now().Add(cfg.Timeouts.Read + 5*time.Second))
	if got, err := io.ReadAll(p); len(got) != 0 || err != nil {
		t.Fatalf("partial preface: read %q, %v; want a silent close", got, err)
	}
}
