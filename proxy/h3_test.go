package proxy

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/novashop/edge/proxy/config"
	"github.com/quic-go/quic-go/http3"
	"github.com/valyala/fasthttp"
)

// TestHTTP3SamePipeline: quic-go's own client reaches the same handler over
// QUIC on the TLS port's UDP twin: forwarding with X-Forwarded-Proto https and
// the client's address, HSTS, JWT refusal, compression; HTTPS answers over TCP
// advertise h3 with Alt-Svc.
func TestHTTP3SamePipeline(t *testing.T) {
	o := newOrigin(t, "o1", func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/html")
		ctx.SetBody(page)
	})
	e, ca := newH2Edge(t, "", o, func(c *config.Config) { c.Compression.Encodings = []string{"br", "gzip"} })
	tcpAddr, _ := net.ResolveTCPAddr("tcp", e.tlsAddr)
	pc, err := net.ListenPacket("udp", tcpAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	go e.s.ServeHTTP3(pc) //nolint:errcheck
	t.Cleanup(func() { _ = pc.Close() })

	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, ServerName: "shop.test"}}
	t.Cleanup(func() { _ = tr.Close() })
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	base := "https://" + e.tlsAddr
	var r *http.Response
	var body string
	waitUntil(t, "the HTTP/3 listener", 5*time.Second, func() bool {
		req, _ := http.NewRequest("GET", base+"/p?q=1", nil)
		req.Header.Set("Accept-Encoding", "identity")
		resp, err := hc.Do(req)
		if err != nil {
			return false
		}
		b := new(strings.Builder)
		_, _ = strings.NewReader("").WriteTo(b)
		buf := make([]byte, 1<<16)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		resp.Body.Close()
		r, body = resp, b.String()
		return true
	})
	if r.ProtoMajor != 3 || r.StatusCode != 200 || body != string(page) {
		t.Fatalf("h3: proto %s, status %d, %d bytes", r.Proto, r.StatusCode, len(body))
	}
	if r.Header.Get("X-Echo-X-Forwarded-Proto") != "https" || r.Header.Get("X-Echo-X-Forwarded-For") != "127.0.0.1" || r.Header.Get("Strict-Transport-Security") == "" {
		t.Errorf("h3 headers: proto %q, for %q, HSTS %q", r.Header.Get("X-Echo-X-Forwarded-Proto"), r.Header.Get("X-Echo-X-Forwarded-For"), r.Header.Get("Strict-Transport-Security"))
	}
	r, body = get(t, hc, base+"/p", "Accept-Encoding: br")
	if r.Header.Get("Content-Encoding") != "br" || len(body) >= len(page)/2 {
		t.Errorf("h3 compression: %q, %d bytes", r.Header.Get("Content-Encoding"), len(body))
	}
	if r, body := get(t, hc, base+"/api/orders"); r.StatusCode != 401 || !strings.HasPrefix(body, `{"error":`) {
		t.Errorf("protected route over h3: %d %s", r.StatusCode, body)
	}
	// The HTTP/1.1 per-line limits hold over HTTP/3 too (the default
	// limits.max_header_fields: 100).
	many := make([]string, 0, 101)
	for i := 0; i < 101; i++ {
		many = append(many, fmt.Sprintf("X-F%d: v", i))
	}
	if r, body := get(t, hc, base+"/p", many...); r.StatusCode != 431 || !strings.HasPrefix(body, `{"error":`) {
		t.Errorf("101 header fields over h3: %d %s", r.StatusCode, body)
	}
	// Alt-Svc on HTTPS over TCP (HTTP/2 here).
	r, _ = get(t, h2Client(ca), base+"/p")
	_, port, _ := net.SplitHostPort(e.tlsAddr)
	if want := `h3=":` + port + `"; ma=86400`; r.Header.Get("Alt-Svc") != want {
		t.Errorf("Alt-Svc %q, want %q", r.Header.Get("Alt-Svc"), want)
	}
}
