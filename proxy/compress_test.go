package proxy

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/novashop/edge/proxy/config"
	"github.com/valyala/fasthttp"
)

func testCompressor(t testing.TB, mutate func(*config.Compression)) *compressor {
	cfg := config.Default().Compression
	cfg.Encodings = []string{"br", "zstd", "gzip"}
	if mutate != nil {
		mutate(&cfg)
	}
	s := &Server{metrics: NewMetrics()}
	s.setupCompression(cfg)
	return s.comp
}

func TestChooseEncoding(t *testing.T) {
	c := testCompressor(t, nil)
	cases := []struct{ ae, want string }{
		{"", ""},
		{"gzip", "gzip"},
		{"gzip, deflate, br", "br"},
		{"gzip, deflate, br, zstd", "br"}, // equal q: the edge's order
		{"br;q=0.5, gzip", "gzip"},
		{"br;q=0.5, gzip;q=0.8, zstd;q=0.9", "zstd"},
		{"BR", "br"},
		{"*", "br"},
		{"*;q=0.1, gzip;q=0.2", "gzip"},
		{"*;q=0, gzip", "gzip"},
		{"br;q=0, zstd;q=0, gzip;q=0", ""},
		{"identity", ""},
		{"deflate", ""},
		{"gzip;q=0.001", "gzip"},
		{"gzip;q=1.0", "gzip"},
		{"gzip;q=2", ""},    // malformed q counts as 0
		{"gzip;q=0.5x", ""}, // malformed
		{"gzip ; q=0.3 , br ; q=0.2", "gzip"},
		{"gzip;level=9", "gzip"}, // other parameters ignored
		{",,,", ""},
	}
	for _, tc := range cases {
		got := ""
		if cd := c.choose([]byte(tc.ae)); cd != nil {
			got = cd.name
		}
		if got != tc.want {
			t.Errorf("Accept-Encoding %q: %q, want %q", tc.ae, got, tc.want)
		}
	}
	// The edge's own order decides ties: gzip first.
	g := testCompressor(t, func(c *config.Compression) { c.Encodings = []string{"gzip", "br"} })
	if cd := g.choose([]byte("br, gzip")); cd == nil || cd.name != "gzip" {
		t.Errorf("tie with gzip preferred: %v", cd)
	}
}

func FuzzAcceptEncoding(f *testing.F) {
	for _, s := range []string{"gzip", "br;q=0.5, *;q=0.1", ";;q=,", "gzip;q=0.12345"} {
		f.Add(s)
	}
	c := testCompressor(f, nil)
	f.Fuzz(func(t *testing.T, ae string) {
		cd := c.choose([]byte(ae))
		if cd != nil && codingQ([]byte(ae), cd.token) <= 0 && codingQ([]byte(ae), []byte("*")) <= 0 {
			t.Fatalf("%q chose %s with q 0", ae, cd.name)
		}
	})
}

var page = bytes.Repeat([]byte("<div class=product><a href=/products/42/>Blue mug</a> 12.00 EUR</div>\n"), 200) // ~14 KB

// TestCompressEligibility: which answers are compressed, and the headers.
func TestCompressEligibility(t *testing.T) {
	c := testCompressor(t, nil)
	cases := []struct {
		name       string
		method     string
		reqHdr     []string
		status     int
		ctype      string
		body       []byte
		respHdr    []string
		wantEnc    string
		wantVary   string
		wantETag   string
		wantCookie bool
		untouched  bool // the origin's own encoding: body and headers as they were
	}{
		{name: "html gzip", ctype: "text/html; charset=utf-8", wantEnc: "gzip", wantVary: "Accept-Encoding"},
		{name: "json br", reqHdr: []string{"Accept-Encoding: br"}, ctype: "application/json", wantEnc: "br", wantVary: "Accept-Encoding"},
		{name: "no accept-encoding", reqHdr: []string{"Accept-Encoding:"}, ctype: "text/html", wantVary: "Accept-Encoding"},
		{name: "image not compressed", ctype: "image/png"},
		{name: "small body", ctype: "text/html", body: []byte("tiny")},
		{name: "already encoded", ctype: "text/html", respHdr: []string{"Content-Encoding: gzip"}, wantEnc: "gzip", untouched: true},
		{name: "no-transform", ctype: "text/html", respHdr: []string{"Cache-Control: public, no-transform"}},
		{name: "private (BREACH)", ctype: "text/html", respHdr: []string{"Cache-Control: private, max-age=0"}},
		{name: "sets a cookie (BREACH)", ctype: "text/html", respHdr: []string{"Set-Cookie: a=1"}, wantCookie: true},
		{name: "not 200", ctype: "text/html", status: 404},
		{name: "HEAD", method: "HEAD", ctype: "text/html"},
		{name: "range request", reqHdr: []string{"Accept-Encoding: gzip", "Range: bytes=0-10"}, ctype: "text/html"},
		{name: "vary kept", ctype: "text/html", respHdr: []string{"Vary: Cookie"}, wantEnc: "gzip", wantVary: "Cookie, Accept-Encoding"},
		{name: "vary already", ctype: "text/html", respHdr: []string{"Vary: accept-encoding"}, wantEnc: "gzip", wantVary: "accept-encoding"},
		{name: "strong etag weakened", ctype: "text/html", respHdr: []string{`ETag: "v1"`}, wantEnc: "gzip", wantVary: "Accept-Encoding", wantETag: `W/"v1"`},
		{name: "weak etag kept", ctype: "text/html", respHdr: []string{`ETag: W/"v1"`}, wantEnc: "gzip", wantVary: "Accept-Encoding", wantETag: `W/"v1"`},
		{name: "incompressible", ctype: "text/plain", body: randomBytes(4096), wantVary: "Accept-Encoding"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1)}, nil)
			if tc.method != "" {
				ctx.Request.Header.SetMethod(tc.method)
			}
			ctx.Request.Header.Set("Accept-Encoding", "gzip")
			for _, h := range tc.reqHdr {
				k, v, _ := strings.Cut(h, ":")
				ctx.Request.Header.Set(k, strings.TrimSpace(v))
			}
			ctx.Response.SetStatusCode(max(tc.status, 200))
			ctx.Response.Header.SetContentType(tc.ctype)
			for _, h := range tc.respHdr {
				k, v, _ := strings.Cut(h, ":")
				ctx.Response.Header.Set(k, strings.TrimSpace(v))
			}
			body := tc.body
			if body == nil {
				body = page
			}
			ctx.Response.SetBody(body)
			c.apply(&ctx)
			r := &ctx.Response
			if got := string(r.Header.ContentEncoding()); got != tc.wantEnc {
				t.Fatalf("Content-Encoding %q, want %q", got, tc.wantEnc)
			}
			if got := string(r.Header.Peek("Vary")); got != tc.wantVary && !(tc.wantVary == "" && got == "") {
				t.Errorf("Vary %q, want %q", got, tc.wantVary)
			}
			if tc.wantETag != "" && string(r.Header.Peek("ETag")) != tc.wantETag {
				t.Errorf("ETag %q, want %q", r.Header.Peek("ETag"), tc.wantETag)
			}
			if tc.untouched {
				if !bytes.Equal(r.Body(), body) || len(r.Header.Peek("Vary")) != 0 {
					t.Fatal("an encoded answer was changed")
				}
				return
			}
			plain, err := decoded(r)
			if err != nil || !bytes.Equal(plain, body) {
				t.Fatalf("body does not decode to the original (%v)", err)
			}
			if tc.wantEnc != "" && len(r.Body()) >= len(body)/2 {
				t.Errorf("compressed to %d of %d bytes", len(r.Body()), len(body))
			}
		})
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// decoded returns r's body without its content coding.
func decoded(r *fasthttp.Response) ([]byte, error) {
	switch string(r.Header.ContentEncoding()) {
	case "gzip":
		return r.BodyGunzip()
	case "br":
		return r.BodyUnbrotli()
	case "zstd":
		return r.BodyUnzstd()
	}
	return r.Body(), nil
}

// TestCompressThroughEdge: every encoding over the edge's listener decodes to
// the origin's page; a repeated answer comes from the memo, not a second
// compression; HTTP/2 carries the encoded answer too.
func TestCompressThroughEdge(t *testing.T) {
	o := newOrigin(t, "o1", func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/html; charset=utf-8")
		ctx.SetBody(page)
	})
	ca := newTestCA(t)
	cfg := tlsTestConfig([]config.Certificate{ca.issue("shop", []string{"shop.test"}, leafOpts{})}, o)
	cfg.Compression.Encodings = []string{"br", "zstd", "gzip"}
	e := startTLSEdge(t, cfg, Options{})
	for _, enc := range []string{"br", "zstd", "gzip"} {
		for i := 0; i < 2; i++ {
			r := e.do(t, "GET", "/", "", "Accept-Encoding: "+enc)
			plain, err := decoded(r)
			if header(r, "Content-Encoding") != enc || err != nil || !bytes.Equal(plain, page) {
				t.Fatalf("%s: Content-Encoding %q, %d bytes, decode error %v", enc, header(r, "Content-Encoding"), len(r.Body()), err)
			}
			t.Logf("%s: %d -> %d bytes", enc, len(page), len(r.Body()))
		}
	}
	if hits := e.s.comp.memoHits.Get(); hits != 3 {
		t.Errorf("memo hits %d, want 3 (one per encoding's second request)", hits)
	}
	m := string(e.adminDo(t, "GET", "/metrics", "").Body())
	if !strings.Contains(m, `edge_compressed_total{encoding="br"} 2`) {
		t.Errorf("/metrics lacks the compressed count")
	}
	// HTTP/2: the encoded bytes and headers come through the bridge.
	hc := h2Client(ca)
	r, body := get(t, hc, "https://"+e.tlsAddr+"/", "Accept-Encoding: gzip")
	if r.Header.Get("Content-Encoding") != "gzip" || r.Header.Get("Vary") != "Accept-Encoding" || len(body) >= len(page)/2 {
		t.Fatalf("h2: Content-Encoding %q, Vary %q, %d bytes", r.Header.Get("Content-Encoding"), r.Header.Get("Vary"), len(body))
	}
}

// BenchmarkCompressedHit: the handler's CPU per cache hit of a 14 KB page,
// identity against each encoding from the memo, and against compressing every
// time (memo off, as nginx's gzip on does). Peers run interleaved in one run.
func BenchmarkCompressedHit(b *testing.B) {
	o := newOrigin(b, "o1", nil)
	mk := func(memo int64) *Server {
		cfg := testConfig(o)
		cfg.Health.Active = false
		cfg.Compression.Encodings = []string{"br", "zstd", "gzip"}
		cfg.Compression.MemoBytes = memo
		s, err := New(cfg, Options{Cache: &memCache{body: page}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(s.Close)
		return s
	}
	memo, none := mk(32<<20), mk(0)
	for _, tc := range []struct {
		name string
		s    *Server
		ae   string
	}{
		{"identity", memo, ""},
		{"gzip-memo", memo, "gzip"},
		{"br-memo", memo, "br"},
		{"zstd-memo", memo, "zstd"},
		{"gzip-every-time", none, "gzip"},
		{"br-every-time", none, "br"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := tc.s.Handler()
			var ctx fasthttp.RequestCtx
			ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 4000}, nil)
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				ctx.Request.Reset()
				ctx.Response.Reset()
				ctx.Request.SetRequestURI("/products/42/")
				ctx.Request.Header.SetHost("shop.example")
				if tc.ae != "" {
					ctx.Request.Header.Set("Accept-Encoding", tc.ae)
				}
				h(&ctx)
				n = len(ctx.Response.Body())
			}
			b.ReportMetric(float64(n), "bytes/answer")

		})
	}
}
