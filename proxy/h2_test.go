//lint:file-ignore SA1019 the tests drive x/net http2 (Server.ServeConn, Transport), which net/http Protocols does not offer; see docs/protocols.md.

package proxy

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/novashop/edge/proxy/config"
	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"
)

// h2Client speaks HTTP/2 only (x/net's transport), trusting ca.
func h2Client(ca *testCA) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http2.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.pool, ServerName: "shop.test"},
	}}
}

// newH2Edge starts an edge with TLS and HTTP/2 in front of o.
func newH2Edge(t testing.TB, kind string, o *origin, tweak func(*config.Config)) (*tlsEdge, *testCA) {
	t.Helper()
	ca := newTestCA(t)
	cfg := tlsTestConfig([]config.Certificate{ca.issue("shop", []string{"shop.test"}, leafOpts{})}, o)
	cfg.TLS.HSTS.MaxAge = time.Hour
	cfg.TLS.HTTP2Server = kind
	if tweak != nil {
		tweak(&cfg)
	}
	return startTLSEdge(t, cfg, Options{JWTSecret: []byte("0123456789abcdef0123456789abcdef")}), ca
}

// h2Servers are the HTTP/2 servers every HTTP/2 test runs against (the
// x/net bridge and proxy/h2srv).
var h2Servers = []string{config.H2ServerXNet, config.H2ServerNative}

// forH2Servers runs test once per HTTP/2 server, as a subtest named after it.
func forH2Servers(t *testing.T, test func(t *testing.T, kind string)) {
	for _, kind := range h2Servers {
		t.Run(kind, func(t *testing.T) { test(t, kind) })
	}
}

// TestH2SamePipeline: HTTP/2 requests go through the same handler as HTTP/1.1:
// forwarding with X-Forwarded-Proto https and the client's address, HSTS,
// request and response bodies both ways (bounded), HEAD, rate limits, JWT,
// and the http/1.1 fallback of ALPN.
func TestH2SamePipeline(t *testing.T) { forH2Servers(t, testH2SamePipeline) }

func testH2SamePipeline(t *testing.T, kind string) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	o := newOrigin(t, "o1", func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/echo":
			ctx.Response.Header.Set("X-Len", fmt.Sprint(len(ctx.Request.Body())))
			ctx.SetBody(ctx.Request.Body())
		case "/big":
			ctx.SetBody(big)
		case "/cookie":
			ctx.Response.Header.Set("Set-Cookie", "a=1")
			ctx.Response.Header.Add("Set-Cookie", "b=2")
			ctx.SetBodyString(string(ctx.Request.Header.Peek("Cookie")))
		default:
			ctx.SetBodyString("hello " + string(ctx.RequestURI()))
		}
	})
	e, ca := newH2Edge(t, kind, o, func(c *config.Config) {
		c.Limits.MaxBodyBytes = 64 << 10
		c.RateLimits = []config.RateLimit{rateRule("limited", "/limited/", nil, 0.001, 2, 0, 0)}
	})
	hc := h2Client(ca)
	base := "https://" + e.tlsAddr

	r, body := get(t, hc, base+"/a/b?c=d")
	if r.ProtoMajor != 2 || body != "hello /a/b?c=d" {
		t.Fatalf("h2 GET: proto %s, body %q", r.Proto, body)
	}
	if r.Header.Get("X-Echo-X-Forwarded-Proto") != "https" || r.Header.Get("X-Echo-X-Forwarded-For") != "127.0.0.1" {
		t.Errorf("forwarded headers: proto %q for %q", r.Header.Get("X-Echo-X-Forwarded-Proto"), r.Header.Get("X-Echo-X-Forwarded-For"))
	}
	if r.Header.Get("Strict-Transport-Security") != "max-age=3600" || r.Header.Get("X-Request-Id") == "" {
		t.Errorf("HSTS %q, X-Request-Id %q", r.Header.Get("Strict-Transport-Security"), r.Header.Get("X-Request-Id"))
	}

	// Bodies both ways.
	payload := strings.Repeat("p", 50<<10)
	resp, err := hc.Post(base+"/echo", "text/plain", strings.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != payload || resp.Header.Get("X-Len") != fmt.Sprint(len(payload)) {
		t.Fatalf("POST echo: %d, %d bytes back, X-Len %s", resp.StatusCode, len(b), resp.Header.Get("X-Len"))
	}
	resp, err = hc.Post(base+"/echo", "text/plain", strings.NewReader(strings.Repeat("p", 65<<10)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 || !strings.HasPrefix(string(b), `{"error":`) {
		t.Fatalf("oversized POST: %d %s", resp.StatusCode, b)
	}
	r, body = get(t, hc, base+"/big")
	if r.StatusCode != 200 || body != string(big) {
		t.Fatalf("1 MiB answer: %d, %d bytes", r.StatusCode, len(body))
	}
	req, _ := http.NewRequest("HEAD", base+"/big", nil)
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(big)) {
		t.Fatalf("HEAD: %d, Content-Length %d", resp.StatusCode, resp.ContentLength)
	}
	// Cookies: HTTP/2 splits them; the origin gets one header; Set-Cookie stays two.
	r, body = get(t, hc, base+"/cookie", "Cookie: x=1", "Cookie: y=2")
	if body != "x=1; y=2" || len(r.Header.Values("Set-Cookie")) != 2 {
		t.Fatalf("cookies: origin saw %q, client got %q", body, r.Header.Values("Set-Cookie"))
	}

	// Rate limit and JWT as on HTTP/1.1.
	codes := []int{}
	for i := 0; i < 3; i++ {
		r, _ := get(t, hc, base+"/limited/x")
		codes = append(codes, r.StatusCode)
	}
	if codes[2] != 429 {
		t.Errorf("rate limit over h2: %v", codes)
	}
	if r, body := get(t, hc, base+"/api/orders"); r.StatusCode != 401 || !strings.HasPrefix(body, `{"error":`) {
		t.Errorf("protected route over h2: %d %s", r.StatusCode, body)
	}

	// A client without h2 in ALPN gets HTTP/1.1 on the same port.
	h1 := httpsClient(ca, "shop.test")
	h1.Transport.(*http.Transport).TLSClientConfig.NextProtos = []string{"http/1.1"}
	r, _ = get(t, h1, base+"/x")
	if r.ProtoMajor != 1 || r.TLS.NegotiatedProtocol != "http/1.1" {
		t.Errorf("fallback: proto %s, ALPN %q", r.Proto, r.TLS.NegotiatedProtocol)
	}
}

// TestH2StreamedAnswer: an origin answer above limits.stream_response_bytes
// streams through the bridge to the HTTP/2 client, intact.
func TestH2StreamedAnswer(t *testing.T) { forH2Servers(t, testH2StreamedAnswer) }

func testH2StreamedAnswer(t *testing.T, kind string) {
	const size = 8 << 20
	o := newOrigin(t, "o1", func(ctx *fasthttp.RequestCtx) {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(i % 251)
		}
		ctx.SetBody(b)
	})
	e, ca := newH2Edge(t, kind, o, func(c *config.Config) {
		c.Limits.StreamResponseBytes = 1 << 20
		// 8 MB under the race detector can take longer than the tests' 1s try.
		c.Timeouts.Request, c.Retries.PerTryTimeout = 30*time.Second, 20*time.Second
	})
	r, body := get(t, h2Client(ca), "https://"+e.tlsAddr+"/big")
	if r.StatusCode != 200 || len(body) != size || r.ContentLength != size {
		t.Fatalf("streamed answer: %d, %d bytes, Content-Length %d", r.StatusCode, len(body), r.ContentLength)
	}
	for i := 0; i < size; i += 4099 {
		if body[i] != byte(i%251) {
			t.Fatalf("byte %d differs", i)
		}
	}
}
