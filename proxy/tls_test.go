package proxy

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/proxy/cache"
	"github.com/novashop/edge/proxy/config"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

func get(t testing.TB, c *http.Client, url string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return resp, string(b)
}

// TestTLSEveryFeature: over the TLS listener the edge forwards with
// X-Forwarded-Proto: https and HSTS, rate-limits per client IP, checks JWTs,
// caches, purges and counts, as on the plaintext listener.
func TestTLSEveryFeature(t *testing.T) {
	ca := newTestCA(t)
	ec := ca.issue("shop", []string{"shop.test", "127.0.0.1"}, leafOpts{cn: "ecdsa"})
	o := newOrigin(t, "o1", func(ctx *fasthttp.RequestCtx) {
		if strings.HasPrefix(string(ctx.Path()), "/products/") {
			ctx.Response.Header.Set("Cache-Control", "public, max-age=60")
			ctx.Response.Header.Set("Cache-Tag", "p")
		}
		ctx.SetBodyString("hello " + string(ctx.Path()))
	})
	cfg := tlsTestConfig([]config.Certificate{ec}, o)
	cfg.TLS.HSTS = config.HSTS{MaxAge: 365 * 24 * time.Hour, IncludeSubdomains: true}
	cfg.RateLimits = []config.RateLimit{rateRule("limited", "/limited/", nil, 0.001, 2, 0, 0)}
	c, err := cache.New(cache.Config{RedisURL: testenv.Redis(t), RedisTimeout: testRedisTimeout, Namespace: fmt.Sprintf("tls-%d:", time.Now().UnixNano())}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	e := startTLSEdge(t, cfg, Options{Cache: c, JWTSecret: []byte("0123456789abcdef0123456789abcdef")})
	hc := httpsClient(ca, "shop.test")
	base := "https://" + e.tlsAddr

	r, body := get(t, hc, base+"/hello")
	if r.StatusCode != 200 || body != "hello /hello" {
		t.Fatalf("GET /hello over TLS: %d %q", r.StatusCode, body)
	}
	if got := r.Header.Get("X-Echo-X-Forwarded-Proto"); got != "https" {
		t.Errorf("X-Forwarded-Proto to the origin = %q, want https", got)
	}
	if got := r.Header.Get("Strict-Transport-Security"); got != "max-age=31536000; includeSubDomains" {
		t.Errorf("HSTS = %q", got)
	}
	if r.TLS.Version != tls.VersionTLS13 {
		t.Errorf("TLS version %x, want 1.3", r.TLS.Version)
	}
	// Plaintext keeps http and sends no HSTS.
	pr := e.do(t, "GET", "/hello", "")
	if header(pr, "X-Echo-X-Forwarded-Proto") != "http" || header(pr, "Strict-Transport-Security") != "" {
		t.Errorf("plaintext: proto %q, HSTS %q", header(pr, "X-Echo-X-Forwarded-Proto"), header(pr, "Strict-Transport-Security"))
	}

	// Rate limit per client IP, as seen on the TLS connection: burst 2, then 429.
	codes := []int{}
	for i := 0; i < 3; i++ {
		r, _ := get(t, hc, base+"/limited/x")
		codes = append(codes, r.StatusCode)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Errorf("rate limit over TLS: %v, want [200 200 429]", codes)
	}

	// JWT: a protected API route without a token is refused at the edge.
	r, body = get(t, hc, base+"/api/orders")
	if r.StatusCode != 401 || !strings.HasPrefix(body, `{"error":`) {
		t.Errorf("protected route without token over TLS: %d %s", r.StatusCode, body)
	}

	// Cache: the second GET is a hit; a purge makes the next one a miss.
	get(t, hc, base+"/products/1/")
	r, _ = get(t, hc, base+"/products/1/")
	if cs := r.Header.Get("Cache-Status"); !strings.Contains(cs, "hit") {
		t.Errorf("second GET over TLS: Cache-Status %q, want a hit", cs)
	}
	if pr := e.adminDo(t, "POST", "/admin/purge", `{"tags":["p"]}`); pr.StatusCode() != 200 {
		t.Fatalf("purge: %d %s", pr.StatusCode(), pr.Body())
	}
	r, _ = get(t, hc, base+"/products/1/")
	if cs := r.Header.Get("Cache-Status"); strings.Contains(cs, "hit") {
		t.Errorf("GET after purge over TLS: Cache-Status %q, want a miss", cs)
	}

	// Metrics count the TLS answers and handshakes.
	m := string(e.adminDo(t, "GET", "/metrics", "").Body())
	for _, want := range []string{`edge_requests_total{status="429"} 1`, `edge_tls_handshakes_total{resumed="false"}`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestTLSCertificateChoice: SNI picks among the certificates (ECDSA or RSA by
// what the client supports); no or unknown SNI gets the first; only TLS 1.2+
// with ECDHE+AEAD suites is accepted.
func TestTLSCertificateChoice(t *testing.T) {
	ca := newTestCA(t)
	first := ca.issue("first", []string{"first.test"}, leafOpts{cn: "first"})
	shopEC := ca.issue("shop-ec", []string{"shop.test"}, leafOpts{cn: "shop-ecdsa"})
	shopRSA := ca.issue("shop-rsa", []string{"shop.test"}, leafOpts{cn: "shop-rsa", rsa: true})
	wild := ca.issue("wild", []string{"*.cdn.test"}, leafOpts{cn: "wild", rsa: true})
	o := newOrigin(t, "o1", nil)
	e := startTLSEdge(t, tlsTestConfig([]config.Certificate{first, shopEC, shopRSA, wild}, o), Options{})

	dial := func(cfg *tls.Config) (*tls.ConnectionState, error) {
		cfg.RootCAs = ca.pool
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", e.tlsAddr, cfg)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		st := c.ConnectionState()
		return &st, nil
	}
	cn := func(st *tls.ConnectionState) string { return st.PeerCertificates[0].Subject.CommonName }
	cases := []struct {
		name string
		cfg  *tls.Config
		want string // CN, or "" for a refused handshake
	}{
		{"sni ecdsa", &tls.Config{ServerName: "shop.test"}, "shop-ecdsa"},
		{"sni rsa-only client", &tls.Config{ServerName: "shop.test", MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}, "shop-rsa"},
		{"sni upper case", &tls.Config{ServerName: "SHOP.test"}, "shop-ecdsa"},
		{"wildcard", &tls.Config{ServerName: "img.cdn.test"}, "wild"},
		{"unknown sni", &tls.Config{ServerName: "nope.test", InsecureSkipVerify: true}, "first"},
		{"no sni", &tls.Config{InsecureSkipVerify: true}, "first"},
		{"tls 1.1", &tls.Config{ServerName: "shop.test", MaxVersion: tls.VersionTLS11}, ""},
		{"cbc suite only", &tls.Config{ServerName: "shop.test", MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, ""},
		{"rsa key exchange only", &tls.Config{ServerName: "shop.test", MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, err := dial(tc.cfg)
			switch {
			case tc.want == "" && err == nil:
				t.Fatalf("handshake accepted (version %x, suite %s)", st.Version, tls.CipherSuiteName(st.CipherSuite))
			case tc.want != "" && err != nil:
				t.Fatalf("handshake: %v", err)
			case tc.want != "" && cn(st) != tc.want:
				t.Fatalf("certificate %q, want %q", cn(st), tc.want)
			}
		})
	}
}

// TestTLSReload: a replaced certificate is picked up by polling without dropping
// an open connection; a broken file keeps the old certificate and says why in
// the log's place (the reload error), the metric and GET /admin/tls; SIGHUP's
// ReloadCertificates does the same on demand.
func TestTLSReload(t *testing.T) {
	ca := newTestCA(t)
	cc := ca.issue("shop", []string{"shop.test"}, leafOpts{cn: "v1"})
	o := newOrigin(t, "o1", nil)
	e := startTLSEdge(t, tlsTestConfig([]config.Certificate{cc}, o), Options{})
	hc := httpsClient(ca, "shop.test")
	base := "https://" + e.tlsAddr
	r, _ := get(t, hc, base+"/a")
	if got := r.TLS.PeerCertificates[0].Subject.CommonName; got != "v1" {
		t.Fatalf("first certificate %q", got)
	}

	// Rotate the files in place: new handshakes get v2, the open connection
	// goes on (its next request is answered on the same connection).
	ca.issue("shop", []string{"shop.test"}, leafOpts{cn: "v2"})
	fresh := func() string {
		c, err := tls.Dial("tcp", e.tlsAddr, &tls.Config{RootCAs: ca.pool, ServerName: "shop.test"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	waitUntil(t, "the rotated certificate", 5*time.Second, func() bool { return fresh() == "v2" })
	r, _ = get(t, hc, base+"/b")
	if r.StatusCode != 200 || r.TLS.PeerCertificates[0].Subject.CommonName != "v1" {
		t.Fatalf("the open connection was not kept: status %d, certificate %q", r.StatusCode, r.TLS.PeerCertificates[0].Subject.CommonName)
	}

	// A broken certificate file: the old certificate stays, the reason shows.
	failures := e.s.tls.reloadFailures.Get()
	writeFileAtomic(t, cc.CertFile, []byte("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"))
	waitUntil(t, "the failed reload", 5*time.Second, func() bool { return e.s.tls.reloadFailures.Get() > failures })
	if got := fresh(); got != "v2" {
		t.Fatalf("after a broken file: certificate %q, want the previous v2", got)
	}
	ar := e.adminDo(t, "GET", "/admin/tls", "")
	var st TLSStatus
	if err := json.Unmarshal(ar.Body(), &st); err != nil || ar.StatusCode() != 200 {
		t.Fatalf("/admin/tls: %d %s (%v)", ar.StatusCode(), ar.Body(), err)
	}
	if len(st.Certificates) != 1 || !strings.Contains(st.Certificates[0].Error, "shop.crt") || st.LastReloadErr == "" {
		t.Fatalf("/admin/tls does not say why: %s", ar.Body())
	}
	if m := string(e.adminDo(t, "GET", "/metrics", "").Body()); !strings.Contains(m, "edge_tls_certificate_reload_failures_total 1") {
		t.Errorf("/metrics lacks the reload failure")
	}
	// Polling does not retry the same broken file every interval.
	time.Sleep(400 * time.Millisecond)
	if n := e.s.tls.reloadFailures.Get(); n != failures+1 {
		t.Errorf("%d reload failures for one broken file", n-failures)
	}

	// A missing key file on SIGHUP: same rule.
	if err := os.Remove(cc.KeyFile); err != nil {
		t.Fatal(err)
	}
	if err := e.s.ReloadCertificates(nil); err == nil {
		t.Fatal("reload with a missing key file succeeded")
	}
	if got := fresh(); got != "v2" {
		t.Fatalf("after a missing key: certificate %q, want v2", got)
	}
	// Fixed files: SIGHUP loads them.
	ca.issue("shop", []string{"shop.test"}, leafOpts{cn: "v3"})
	if err := e.s.ReloadCertificates(nil); err != nil {
		t.Fatal(err)
	}
	if got := fresh(); got != "v3" {
		t.Fatalf("after the fix: certificate %q, want v3", got)
	}
	if st := e.s.TLSStatus(); st.Certificates[0].Error != "" || st.LastReloadErr != "" {
		t.Fatalf("status still reports an error: %+v", st)
	}
}

// TestTLSRedirectHTTP: with tls.redirect_http the plaintext listener answers 308
// to the same host and target over https.
func TestTLSRedirectHTTP(t *testing.T) {
	ca := newTestCA(t)
	o := newOrigin(t, "o1", nil)
	cfg := tlsTestConfig([]config.Certificate{ca.issue("s", []string{"shop.test"}, leafOpts{})}, o)
	cfg.TLS.Listen = "127.0.0.1:8443"
	cfg.TLS.RedirectHTTP = true
	e := startEdge(t, cfg, Options{})
	cases := []struct{ host, target, want string }{
		{"shop.test", "/products/1/?q=a%20b", "https://shop.test:8443/products/1/?q=a%20b"},
		{"shop.test:8080", "/", "https://shop.test:8443/"},
		{"[::1]:8080", "/x", "https://[::1]:8443/x"},
	}
	for _, tc := range cases {
		if got := redirectLocation("8443", tc.host, tc.target); got != tc.want {
			t.Errorf("Host %s %s: Location %q, want %q", tc.host, tc.target, got, tc.want)
		}
	}
	if got := redirectLocation("443", "shop.test", "/a"); got != "https://shop.test/a" {
		t.Errorf("port 443: %q", got)
	}
	// Through the listener (the client sends Host: 127.0.0.1:PORT).
	r := e.do(t, "GET", "/products/?a=1", "")
	if want := "https://127.0.0.1:8443/products/?a=1"; r.StatusCode() != 308 || header(r, "Location") != want {
		t.Errorf("plaintext listener: %d Location %q, want 308 %q", r.StatusCode(), header(r, "Location"), want)
	}
	if o.hits.Load() != 0 {
		t.Errorf("redirected requests reached the origin %d times", o.hits.Load())
	}
}

func redirectLocation(port, host, target string) string {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetHost(host)
	ctx.Request.SetRequestURI(target)
	redirectToHTTPS(port)(&ctx)
	return string(ctx.Response.Header.Peek("Location"))
}

// TestTLSBadClients: garbage instead of a ClientHello and a client that stops
// mid-handshake get a closed connection (the latter after the handshake
// timeout), and the edge keeps serving.
func TestTLSBadClients(t *testing.T) {
	ca := newTestCA(t)
	o := newOrigin(t, "o1", nil)
	cfg := tlsTestConfig([]config.Certificate{ca.issue("s", []string{"shop.test"}, leafOpts{})}, o)
	cfg.TLS.HandshakeTimeout = 300 * time.Millisecond
	e := startTLSEdge(t, cfg, Options{})
	closedWithin := func(name string, send []byte, d time.Duration) {
		c, err := net.Dial("tcp", e.tlsAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if send != nil {
			_, _ = c.Write(send)
		}
		_ = c.SetReadDeadline(time.Now().Add(d))
		start := time.Now()
		_, err = io.ReadAll(c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("%s: connection still open after %v", name, d)
		}
		t.Logf("%s: closed after %v", name, time.Since(start).Round(time.Millisecond))
	}
	closedWithin("garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 2*time.Second)
	closedWithin("silent client", nil, 2*time.Second)
	// Half a ClientHello record header, then nothing.
	closedWithin("stopped mid-handshake", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}, 2*time.Second)
	if n := e.s.tls.handshakeFailures.Get(); n < 3 {
		t.Errorf("handshake failures counted: %d, want 3", n)
	}
	r, _ := get(t, httpsClient(ca, "shop.test"), "https://"+e.tlsAddr+"/")
	if r.StatusCode != 200 {
		t.Fatalf("after bad clients: %d", r.StatusCode)
	}
}

// TestTLSSessionTicketsSharedByRedis: two edges sharing Redis resume each
// other's sessions; two edges with local keys do not.
func TestTLSSessionTicketsSharedByRedis(t *testing.T) {
	ca := newTestCA(t)
	cc := ca.issue("s", []string{"shop.test"}, leafOpts{})
	o := newOrigin(t, "o1", nil)
	ns := fmt.Sprintf("tk-%d:", time.Now().UnixNano())
	mk := func(redis bool) *tlsEdge {
		cfg := tlsTestConfig([]config.Certificate{cc}, o)
		cfg.TLS.SessionTickets.Namespace = ns
		cfg.TLS.SessionTickets.Rotate = time.Hour
		if redis {
			cfg.Cache.Enabled, cfg.Cache.RedisURL = true, testenv.Redis(t)
		}
		return startTLSEdge(t, cfg, Options{})
	}
	for _, tc := range []struct {
		name       string
		redis      bool
		wantResume bool
	}{{"redis", true, true}, {"local", false, false}} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := mk(tc.redis), mk(tc.redis)
			for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
				hc := httpsClient(ca, "shop.test")
				hc.Transport.(*http.Transport).TLSClientConfig.MaxVersion = v
				hc.Transport.(*http.Transport).DisableKeepAlives = true
				r, _ := get(t, hc, "https://"+a.tlsAddr+"/")
				if r.TLS.DidResume {
					t.Fatal("first connection resumed")
				}
				r, _ = get(t, hc, "https://"+b.tlsAddr+"/")
				if r.TLS.DidResume != tc.wantResume {
					t.Fatalf("TLS %x: session from edge A resumed on edge B = %v, want %v", v, r.TLS.DidResume, tc.wantResume)
				}
			}
			if st := a.s.TLSStatus().SessionTickets; st.Shared != tc.redis || st.Error != "" {
				t.Fatalf("ticket status %+v", st)
			}
		})
	}
}

// TestTicketKeysRotate: keys of a short period change with the period and a
// key still decrypts for one period after it stops encrypting.
func TestTicketKeysRotate(t *testing.T) {
	cfg := config.Default()
	cfg.TLS.SessionTickets.Rotate = time.Second
	tc := &tls.Config{}
	k, err := newTicketKeys(cfg, tc, zap.NewNop(), NewMetrics().set)
	if err != nil {
		t.Fatal(err)
	}
	e := k.status().Epoch
	cur, _ := k.key(e)
	next, _ := k.key(e + 1)
	if cur == next {
		t.Fatal("two periods share a key")
	}
	time.Sleep(time.Until(time.Unix(0, (e+1)*int64(time.Second))) + 10*time.Millisecond)
	k.refresh()
	if k.status().Epoch != e+1 {
		t.Fatalf("epoch %d after a period, want %d", k.status().Epoch, e+1)
	}
	if again, _ := k.key(e + 1); again != next {
		t.Fatal("the next period's key changed when it became current")
	}
	if _, ok := k.key(e); !ok {
		t.Fatal("the previous key was dropped one period too early")
	}
}

// FuzzRedirectHTTPS: whatever the Host and target, the redirect is an https
// URL on one line, or a 400.
func FuzzRedirectHTTPS(f *testing.F) {
	for _, s := range []string{"shop.test", "shop.test:80", "[::1]:8080", "::1", "a/b", "x@y", ""} {
		f.Add(s, "/p?q=1")
	}
	h := redirectToHTTPS("8443")
	f.Fuzz(func(t *testing.T, host, target string) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetHost(host)
		ctx.Request.SetRequestURI(target)
		h(&ctx)
		loc := string(ctx.Response.Header.Peek("Location"))
		switch ctx.Response.StatusCode() {
		case 308:
			if !strings.HasPrefix(loc, "https://") || strings.ContainsAny(loc, "\r\n") {
				t.Fatalf("Location %q", loc)
			}
			if rest := loc[len("https://"):]; strings.IndexAny(rest, "/@?#\\") < strings.IndexByte(rest, ':') && !strings.HasPrefix(rest, "[") {
				t.Fatalf("Location %q: authority broken by the Host", loc)
			}
		case 400:
		default:
			t.Fatalf("status %d", ctx.Response.StatusCode())
		}
	})
}

// HTTP/1.1 over TLS passes the same strict framer as the plaintext listener
// (docs/http-parsing.md): a folded header line is a 400, never forwarded.
func TestTLSStrictFraming(t *testing.T) {
	ca := newTestCA(t)
	var seen atomic.Int64
	o := newOrigin(t, "o1", func(ctx *fasthttp.RequestCtx) {
		seen.Add(1)
		ctx.SetBodyString("ok")
	})
	cfg := tlsTestConfig([]config.Certificate{ca.issue("s", []string{"shop.test"}, leafOpts{})}, o)
	e := startTLSEdge(t, cfg, Options{})
	for _, tt := range []struct {
		name, raw string
		code      int
		forwarded int64
	}{
		{"valid", "GET /a HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n", 200, 1},
		{"obs-fold", "GET /b HTTP/1.1\r\nHost: shop.test\r\nFoo: bar\r\n Content-Length: 3\r\n\r\nabc", 400, 0},
		{"CL and TE", "POST /c HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := seen.Load()
			c, err := tls.Dial("tcp", e.tlsAddr, &tls.Config{RootCAs: ca.pool, ServerName: "shop.test", NextProtos: []string{"http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write([]byte(tt.raw)); err != nil {
				t.Fatal(err)
			}
			var resp fasthttp.Response
			if err := resp.Read(bufio.NewReader(c)); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode() != tt.code {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode(), tt.code, resp.Body())
			}
			if got := seen.Load() - before; got != tt.forwarded {
				t.Fatalf("origin saw %d requests, want %d", got, tt.forwarded)
			}
		})
	}
}
