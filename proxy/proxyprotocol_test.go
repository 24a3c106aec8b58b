package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/novashop/edge/proxy/config"
	"github.com/valyala/fasthttp"
)

// ppV2 builds a PROXY protocol v2 header: cmd 0 LOCAL or 1 PROXY, family
// byte, then the address block and TLVs.
func ppV2(cmd, fam byte, body ...[]byte) []byte {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n")
	b = append(b, 0x20|cmd, fam, 0, 0)
	for _, p := range body {
		b = append(b, p...)
	}
	binary.BigEndian.PutUint16(b[14:16], uint16(len(b)-16))
	return b
}

// ppTCP4 is a v2 TCP4 address block for src:sport -> 10.0.0.1:8080.
func ppTCP4(src string, sport uint16) []byte {
	a := netip.MustParseAddr(src).As4()
	b := append(a[:], 10, 0, 0, 1, 0, 0, 0x1f, 0x90)
	binary.BigEndian.PutUint16(b[8:10], sport)
	return b
}

// ppEdge starts an edge whose plaintext listener takes the PROXY protocol from
// trusted, in front of origins.
func ppEdge(t *testing.T, trusted []string, timeout time.Duration, edit func(*config.Config), origins ...*origin) *edge {
	t.Helper()
	cfg := testConfig(origins...)
	cfg.ProxyProtocol = config.ProxyProtocol{Enabled: true, Trusted: trusted, Timeout: timeout}
	if edit != nil {
		edit(&cfg)
	}
	return startEdge(t, cfg, Options{})
}

// ppExchange writes parts on one connection (pausing between them), then
// half-closes it when closeWrite, and reads answers until the edge closes.
// closed reports that the edge closed the connection (not a timeout).
func ppExchange(t *testing.T, addr string, parts [][]byte, closeWrite bool) (codes []int, bodies []string, closed bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	for i, p := range parts {
		if i > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := c.Write(p); err != nil {
			break // the edge closed first: read what it said
		}
	}
	if closeWrite {
		_ = c.(*net.TCPConn).CloseWrite()
	}
	br := bufio.NewReader(c)
	for {
		var r fasthttp.Response
		if err := r.Read(br); err != nil {
			var ne net.Error
			return codes, bodies, !(errors.As(err, &ne) && ne.Timeout())
		}
		codes = append(codes, r.StatusCode())
		bodies = append(bodies, string(r.Body()))
		if r.ConnectionClose() {
			return codes, bodies, true
		}
	}
}

// ppRejected reads edge_proxy_protocol_rejected_total{reason}.
func ppRejected(t *testing.T, e *edge, reason string) string {
	t.Helper()
	var b bytes.Buffer
	e.s.metrics.WritePrometheus(&b)
	prefix := `edge_proxy_protocol_rejected_total{reason="` + reason + `"} `
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return v
		}
	}
	t.Fatalf("no %s series in\n%s", prefix, b.String())
	return ""
}

// xffOrigin records the X-Forwarded-For of every request it serves.
func xffOrigin(t *testing.T, name string) (*origin, func() []string) {
	var mu sync.Mutex
	var seen []string
	o := newOrigin(t, name, func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		seen = append(seen, string(ctx.Request.Header.Peek("X-Forwarded-For")))
		mu.Unlock()
		ctx.Response.Header.Set("Cache-Control", "no-store")
		ctx.SetBodyString(name)
	})
	return o, func() []string {
		mu.Lock()
		defer mu.Unlock()
		s := seen
		seen = nil
		return s
	}
}

const ppGet = "GET /products/ HTTP/1.1\r\nHost: shop.test\r\n\r\n"

// TestProxyProtocol sends raw bytes to an edge with proxy_protocol enabled
// (both I/O cores: EDGE_TEST_IO=eventloop) and checks what it answers, what
// the origin sees as the client (X-Forwarded-For) and what it counts.
func TestProxyProtocol(t *testing.T) {
	o, xff := xffOrigin(t, "o1")
	e := ppEdge(t, []string{"127.0.0.0/8", "::1"}, 300*time.Millisecond, nil, o)
	tlvs := []byte{0x01, 0x00, 0x02, 'h', '2', 0xea, 0x00, 0x05, 0x01, 'v', 'p', 'c', 'e'}
	v2tcp6 := append(append(netip.MustParseAddr("2001:db8::7").AsSlice(), netip.MustParseAddr("2001:db8::1").AsSlice()...), 0x10, 0x00, 0x00, 0x50)
	tests := []struct {
		name       string
		parts      []string
		closeWrite bool
		wantXFF    []string // one per answered request; nil: closed unanswered
		reason     string   // the rejection counted, if any
	}{
		{"v1 TCP4", []string{"PROXY TCP4 203.0.113.7 10.0.0.1 51000 8080\r\n" + ppGet}, true, []string{"203.0.113.7"}, ""},
		{"v1 TCP6", []string{"PROXY TCP6 2001:db8::7 2001:db8::1 51000 8080\r\n" + ppGet}, true, []string{"2001:db8::7"}, ""},
		{"v1 UNKNOWN keeps the socket's address", []string{"PROXY UNKNOWN\r\n" + ppGet}, true, []string{"127.0.0.1"}, ""},
		{"v2 PROXY TCP4 with TLVs", []string{string(ppV2(1, 0x11, ppTCP4("198.51.100.9", 40000), tlvs)) + ppGet}, true, []string{"198.51.100.9"}, ""},
		{"v2 PROXY TCP6", []string{string(ppV2(1, 0x21, v2tcp6)) + ppGet}, true, []string{"2001:db8::7"}, ""},
		{"v2 LOCAL keeps the socket's address", []string{string(ppV2(0, 0x00)) + ppGet}, true, []string{"127.0.0.1"}, ""},
		{"header in pieces, request after a pause", []string{"PROXY TCP4 203.0.", "113.8 10.0.0.1 51000 8080\r", "\n", ppGet}, true, []string{"203.0.113.8"}, ""},
		{"v2 header in pieces", []string{string(ppV2(1, 0x11, ppTCP4("198.51.100.10", 1))[:7]), string(ppV2(1, 0x11, ppTCP4("198.51.100.10", 1))[7:]) + ppGet[:10], ppGet[10:]}, true, []string{"198.51.100.10"}, ""},
		{"pipelined requests behind the header", []string{"PROXY TCP4 203.0.113.9 10.0.0.1 1 2\r\n" + ppGet + ppGet + ppGet}, true, []string{"203.0.113.9", "203.0.113.9", "203.0.113.9"}, ""},
		{"no header", []string{ppGet}, true, nil, "invalid"},
		{"malformed v1", []string{"PROXY TCP4 203.0.113.7 10.0.0.1 51000\r\n" + ppGet}, true, nil, "invalid"},
		{"v1 with an IPv6 address", []string{"PROXY TCP4 2001:db8::7 10.0.0.1 1 2\r\n" + ppGet}, true, nil, "invalid"},
		{"v1 too long", []string{"PROXY UNKNOWN " + strings.Repeat("x", 120) + "\r\n" + ppGet}, true, nil, "invalid"},
		{"v2 too long", []string{string(ppV2(1, 0x11, ppTCP4("198.51.100.9", 1), make([]byte, 5000))) + ppGet}, true, nil, "invalid"},
		{"v2 bad command", []string{"\r\n\r\n\x00\r\nQUIT\n\x23\x11\x00\x0c" + string(ppTCP4("198.51.100.9", 1)) + ppGet}, true, nil, "invalid"},
		{"closed within the header", []string{"PROXY TCP4 203.0"}, true, nil, "invalid"},
		{"slow header", []string{"PROXY TCP4 203.0"}, false, nil, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := map[string]string{}
			for _, r := range []string{"invalid", "timeout", "untrusted"} {
				before[r] = ppRejected(t, e, r)
			}
			parts := make([][]byte, len(tt.parts))
			for i, p := range tt.parts {
				parts[i] = []byte(p)
			}
			start := time.Now()
			codes, _, closed := ppExchange(t, e.addr, parts, tt.closeWrite)
			if !closed {
				t.Fatalf("the edge neither answered nor closed within 10 s (answers %v)", codes)
			}
			got := xff()
			if tt.wantXFF == nil {
				if len(codes) != 0 || len(got) != 0 {
					t.Fatalf("answers %v, origin saw %v; want the connection closed unanswered", codes, got)
				}
				if tt.reason == "timeout" && time.Since(start) > 5*time.Second {
					t.Fatalf("closed after %v with proxy_protocol.timeout 300ms", time.Since(start))
				}
			} else {
				if len(codes) != len(tt.wantXFF) || fmt.Sprint(got) != fmt.Sprint(tt.wantXFF) {
					t.Fatalf("answers %v, origin saw X-Forwarded-For %q; want %q", codes, got, tt.wantXFF)
				}
				for _, c := range codes {
					if c != 200 {
						t.Fatalf("answers %v", codes)
					}
				}
			}
			for _, r := range []string{"invalid", "timeout", "untrusted"} {
				want := before[r]
				if r == tt.reason {
					var n int
					fmt.Sscan(want, &n)
					want = fmt.Sprint(n + 1)
				}
				// The goroutine core counts in the connection's goroutine,
				// which may still run when the client sees the close.
				waitUntil(t, "edge_proxy_protocol_rejected_total{reason="+r+"} = "+want, 5*time.Second, func() bool { return ppRejected(t, e, r) == want })
			}
		})
	}
}

// TestProxyProtocolUntrusted: with proxy_protocol on, a connection from a
// source outside proxy_protocol.trusted is closed, whatever it sends.
func TestProxyProtocolUntrusted(t *testing.T) {
	o, xff := xffOrigin(t, "o1")
	e := ppEdge(t, []string{"10.0.0.0/8"}, time.Second, nil, o)
	codes, _, closed := ppExchange(t, e.addr, [][]byte{[]byte("PROXY TCP4 203.0.113.7 10.0.0.1 51000 8080\r\n" + ppGet)}, true)
	if !closed || len(codes) != 0 || len(xff()) != 0 {
		t.Fatalf("answers %v, closed %v: want the connection closed unanswered", codes, closed)
	}
	waitUntil(t, "the rejection counted", 5*time.Second, func() bool { return ppRejected(t, e, "untrusted") == "1" })
}

// TestProxyProtocolClientAddress: the header's address is the client the
// edge keys on: per-IP rate limits, hash-by-IP balancing, the access log.
func TestProxyProtocolClientAddress(t *testing.T) {
	from := func(ip string, reqs ...string) []byte {
		return []byte("PROXY TCP4 " + ip + " 10.0.0.1 51000 8080\r\n" + strings.Join(reqs, ""))
	}
	get := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: shop.test\r\n\r\n" }

	t.Run("rate limits", func(t *testing.T) {
		o, _ := xffOrigin(t, "o1")
		e := ppEdge(t, []string{"127.0.0.1"}, time.Second, func(c *config.Config) {
			c.RateLimits = []config.RateLimit{rateRule("limited", "/limited/", nil, 0.001, 1, 0, 0)}
		}, o)
		// One request per connection, so each has its own header.
		one := func(ip string) int {
			codes, _, _ := ppExchange(t, e.addr, [][]byte{from(ip, get("/limited/x"))}, true)
			if len(codes) != 1 {
				t.Fatalf("from %s: answers %v", ip, codes)
			}
			return codes[0]
		}
		if a1, a2, b1 := one("203.0.113.1"), one("203.0.113.1"), one("203.0.113.2"); a1 != 200 || a2 != 429 || b1 != 200 {
			t.Fatalf("client A: %d then %d, client B: %d; want 200, 429, 200 (the bucket is the header's address, not 127.0.0.1)", a1, a2, b1)
		}
	})

	t.Run("hash by client IP", func(t *testing.T) {
		o1, _ := xffOrigin(t, "o1")
		o2, _ := xffOrigin(t, "o2")
		e := ppEdge(t, []string{"127.0.0.0/8"}, time.Second, func(c *config.Config) {
			c.Balancer.Policy, c.Balancer.HashKey = "hash", "ip"
		}, o1, o2)
		hosts := map[string]int{}
		for i := 0; i < 24; i++ {
			ip := fmt.Sprintf("198.51.100.%d", i+1)
			codes, bodies, _ := ppExchange(t, e.addr, [][]byte{from(ip, get("/products/"), get("/products/"))}, true)
			if len(codes) != 2 || bodies[0] != bodies[1] {
				t.Fatalf("from %s: answers %v from %v; want one host for one client", ip, codes, bodies)
			}
			hosts[bodies[0]]++
		}
		if hosts["o1"] == 0 || hosts["o2"] == 0 {
			t.Fatalf("24 client addresses all hashed to one host: %v (the balancer saw the socket's address)", hosts)
		}
	})

	t.Run("access log", func(t *testing.T) {
		o, _ := xffOrigin(t, "o1")
		out := &syncBuffer{}
		cfg := testConfig(o)
		cfg.ProxyProtocol = config.ProxyProtocol{Enabled: true, Trusted: []string{"127.0.0.0/8"}, Timeout: time.Second}
		cfg.AccessLog.Enabled, cfg.AccessLog.Sample, cfg.AccessLog.FlushInterval = true, 1, time.Millisecond
		e := startEdge(t, cfg, Options{AccessLog: out})
		if codes, _, _ := ppExchange(t, e.addr, [][]byte{from("192.0.2.44", get("/products/"))}, true); len(codes) != 1 || codes[0] != 200 {
			t.Fatalf("answers %v", codes)
		}
		waitUntil(t, "the access line", 5*time.Second, func() bool { return len(out.lines()) == 1 })
		var m map[string]any
		if err := json.Unmarshal([]byte(out.lines()[0]), &m); err != nil || m["client"] != "192.0.2.44" {
			t.Fatalf("access line %s (%v): want client 192.0.2.44", out.lines()[0], err)
		}
	})
}

// TestProxyProtocolOff: without proxy_protocol a PROXY line is a malformed
// request (400), and no rejection series exists.
func TestProxyProtocolOff(t *testing.T) {
	o, _ := xffOrigin(t, "o1")
	e := startEdge(t, testConfig(o), Options{})
	codes, _, _ := ppExchange(t, e.addr, [][]byte{[]byte("PROXY TCP4 203.0.113.7 10.0.0.1 51000 8080\r\n" + ppGet)}, true)
	if len(codes) != 1 || codes[0] != 400 {
		t.Fatalf("answers %v, want [400]", codes)
	}
	var b bytes.Buffer
	e.s.metrics.WritePrometheus(&b)
	if strings.Contains(b.String(), "edge_proxy_protocol_rejected_total") {
		t.Fatal("rejection series with proxy_protocol off")
	}
}

// TestProxyProtocolTLS: on the TLS listener the PROXY header comes before
// the ClientHello; a connection without one is closed before any handshake
// and counted as a PROXY protocol rejection, not a handshake failure.
func TestProxyProtocolTLS(t *testing.T) {
	ca := newTestCA(t)
	cert := ca.issue("shop", []string{"shop.test"}, leafOpts{})
	o, xff := xffOrigin(t, "o1")
	cfg := tlsTestConfig([]config.Certificate{cert}, o)
	cfg.ProxyProtocol = config.ProxyProtocol{Enabled: true, Trusted: []string{"127.0.0.0/8"}, Timeout: time.Second}
	e := startTLSEdge(t, cfg, Options{})
	dial := func(header string) (*tls.Conn, error) {
		c, err := net.DialTimeout("tcp", e.tlsAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte(header)); err != nil {
			t.Fatal(err)
		}
		tc := tls.Client(c, &tls.Config{RootCAs: ca.pool, ServerName: "shop.test"})
		return tc, tc.Handshake()
	}
	tc, err := dial("PROXY TCP4 203.0.113.50 10.0.0.1 51000 443\r\n")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Write([]byte(ppGet)); err != nil {
		t.Fatal(err)
	}
	var r fasthttp.Response
	if err := r.Read(bufio.NewReader(tc)); err != nil || r.StatusCode() != 200 {
		t.Fatalf("answer %d, %v", r.StatusCode(), err)
	}
	if got := xff(); fmt.Sprint(got) != "[203.0.113.50]" {
		t.Fatalf("origin saw X-Forwarded-For %q, want the header's address", got)
	}
	if _, err := dial(""); err == nil {
		t.Fatal("a handshake without a PROXY header succeeded")
	}
	waitUntil(t, "the rejection counted", 5*time.Second, func() bool { return ppRejected(t, e.edge, "invalid") == "1" })
	var b bytes.Buffer
	e.s.metrics.WritePrometheus(&b)
	if strings.Contains(b.String(), "edge_tls_handshake_failures_total 1") {
		t.Fatal("the refused connection was counted as a failed handshake too")
	}
}

// TestProxyProtocolH2CAndStreamedBody: the header's address also reaches the
// origin from an h2c connection (goroutine core) and from a request whose
// body streams (on the event loop: a connection detached to the goroutine
// core after the loop read the header).
func TestProxyProtocolH2CAndStreamedBody(t *testing.T) {
	o, xff := xffOrigin(t, "o1")
	e := ppEdge(t, []string{"127.0.0.0/8"}, time.Second, func(c *config.Config) {
		c.Limits.StreamRequestBytes = 1024
	}, o)
	body := strings.Repeat("b", 64<<10)
	codes, _, _ := ppExchange(t, e.addr, [][]byte{[]byte("PROXY TCP4 203.0.113.60 10.0.0.1 1 2\r\nPOST /upload HTTP/1.1\r\nHost: shop.test\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body)}, true)
	if len(codes) != 1 || codes[0] != 200 {
		t.Fatalf("streamed POST: answers %v", codes)
	}
	if got := xff(); fmt.Sprint(got) != "[203.0.113.60]" {
		t.Fatalf("streamed POST: origin saw X-Forwarded-For %q", got)
	}

	if e.s.loops != nil {
		if st := e.s.loops.Stats(); st.Detached != 1 {
			t.Fatalf("the streamed POST was not detached from the loop: %+v", st)
		}
	}
	cfg := testConfig(o)
	cfg.H2C = true
	cfg.ProxyProtocol = config.ProxyProtocol{Enabled: true, Trusted: []string{"127.0.0.0/8"}, Timeout: time.Second}
	h := startEdge(t, cfg, Options{})
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true) // h2c with prior knowledge
	tr := &http.Transport{Protocols: &protos, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := net.Dial(network, addr)
		if err == nil {
			_, err = c.Write([]byte("PROXY TCP6 2001:db8::60 ::1 1 2\r\n"))
		}
		return c, err
	}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://" + h.addr + "/products/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("h2c: %d over %s", resp.StatusCode, resp.Proto)
	}
	if got := xff(); fmt.Sprint(got) != "[2001:db8::60]" {
		t.Fatalf("h2c: origin saw X-Forwarded-For %q", got)
	}
}
