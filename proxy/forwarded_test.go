package proxy

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/novashop/edge/proxy/config"
	"github.com/valyala/fasthttp"
)

// fwdReqHeader reads a request's header block from raw lines.
func fwdReqHeader(t testing.TB, lines ...string) *fasthttp.RequestHeader {
	t.Helper()
	h, err := readFwdReqHeader(lines...)
	if err != nil {
		t.Fatalf("%q: %v", lines, err)
	}
	return h
}

func readFwdReqHeader(lines ...string) (*fasthttp.RequestHeader, error) {
	var h fasthttp.RequestHeader
	raw := "GET / HTTP/1.1\r\nHost: shop\r\n" + strings.Join(lines, "\r\n")
	if len(lines) > 0 {
		raw += "\r\n"
	}
	return &h, h.Read(bufio.NewReader(strings.NewReader(raw + "\r\n")))
}

// TestResolveForwarded pins the header reading: which address is the client,
// which scheme, and what counts as an unreadable entry, for both header kinds,
// with and without recursion.
func TestResolveForwarded(t *testing.T) {
	trusted := []string{"10.0.0.0/8", "2001:db8:ffff::/48"}
	xff := &forwardTrust{trusted: config.Forwarded{Trusted: trusted}.Prefixes()}
	xffRec := &forwardTrust{trusted: xff.trusted, recursive: true}
	fwd := &forwardTrust{trusted: xff.trusted, rfc7239: true}
	fwdRec := &forwardTrust{trusted: xff.trusted, rfc7239: true, recursive: true}
	tests := []struct {
		name    string
		f       *forwardTrust
		headers []string
		client  string // "" when the header names none
		scheme  int
		invalid bool
		chain   string // Forwarded only: the X-Forwarded-For list made from it
	}{
		{"no header", xff, nil, "", schemeNone, false, ""},
		{"one address", xff, []string{"X-Forwarded-For: 203.0.113.7"}, "203.0.113.7", schemeNone, false, ""},
		{"rightmost wins", xff, []string{"X-Forwarded-For: 1.1.1.1, 203.0.113.7"}, "203.0.113.7", schemeNone, false, ""},
		{"rightmost even when trusted, not recursive", xff, []string{"X-Forwarded-For: 203.0.113.7, 10.1.1.1"}, "10.1.1.1", schemeNone, false, ""},
		{"recursive skips trusted hops", xffRec, []string{"X-Forwarded-For: 1.1.1.1, 203.0.113.7, 10.1.1.1,10.2.2.2"}, "203.0.113.7", schemeNone, false, ""},
		{"recursive, every hop trusted: the leftmost", xffRec, []string{"X-Forwarded-For: 10.3.3.3, 10.1.1.1"}, "10.3.3.3", schemeNone, false, ""},
		{"several field lines are one list", xffRec, []string{"X-Forwarded-For: 198.51.100.1", "X-Forwarded-For: 10.1.1.1"}, "198.51.100.1", schemeNone, false, ""},
		{"empty elements", xff, []string{"X-Forwarded-For: ,203.0.113.7 , ,"}, "203.0.113.7", schemeNone, false, ""},
		{"ipv4 with port", xff, []string{"X-Forwarded-For: 203.0.113.7:51234"}, "203.0.113.7", schemeNone, false, ""},
		{"ipv6", xff, []string{"X-Forwarded-For: 2001:db8::7"}, "2001:db8::7", schemeNone, false, ""},
		{"bracketed ipv6 with port", xff, []string{"X-Forwarded-For: [2001:db8::7]:443"}, "2001:db8::7", schemeNone, false, ""},
		{"ipv4-mapped ipv6 is ipv4", xff, []string{"X-Forwarded-For: ::ffff:203.0.113.7"}, "203.0.113.7", schemeNone, false, ""},
		{"recursive over trusted ipv6", xffRec, []string{"X-Forwarded-For: 2001:db8::7, 2001:db8:ffff::1"}, "2001:db8::7", schemeNone, false, ""},
		{"garbage rightmost: the peer", xff, []string{"X-Forwarded-For: 203.0.113.7, bogus"}, "", schemeNone, true, ""},
		{"garbage stops the walk", xffRec, []string{"X-Forwarded-For: 203.0.113.7, bogus, 10.1.1.1"}, "10.1.1.1", schemeNone, true, ""},
		{"zone refused", xff, []string{"X-Forwarded-For: fe80::1%eth0"}, "", schemeNone, true, ""},
		{"brackets around ipv4", xff, []string{"X-Forwarded-For: [203.0.113.7]"}, "", schemeNone, true, ""},
		{"bad port", xff, []string{"X-Forwarded-For: 203.0.113.7:http"}, "", schemeNone, true, ""},
		{"unknown", xff, []string{"X-Forwarded-For: unknown"}, "", schemeNone, true, ""},
		{"https", xff, []string{"X-Forwarded-Proto: https"}, "", schemeHTTPS, false, ""},
		{"HTTP upper case", xff, []string{"X-Forwarded-Proto: HTTP"}, "", schemeHTTP, false, ""},
		{"ssl on", xff, []string{"X-Forwarded-Ssl: on"}, "", schemeHTTPS, false, ""},
		{"ssl off", xff, []string{"X-Forwarded-Ssl: off"}, "", schemeHTTP, false, ""},
		{"proto and ssl agree", xff, []string{"X-Forwarded-Proto: https", "X-Forwarded-Ssl: on"}, "", schemeHTTPS, false, ""},
		{"https with ssl off (gunicorn invalid/019)", xff, []string{"X-Forwarded-Proto: https", "X-Forwarded-Ssl: off"}, "", schemeBad, false, ""},
		{"http with ssl on", xff, []string{"X-Forwarded-Proto: http", "X-Forwarded-Ssl: on"}, "", schemeBad, false, ""},
		{"two protos in a list", xff, []string{"X-Forwarded-Proto: https, http"}, "", schemeBad, false, ""},
		{"two protos on two lines", xff, []string{"X-Forwarded-Proto: https", "X-Forwarded-Proto: http"}, "", schemeBad, false, ""},
		{"the same proto twice", xff, []string{"X-Forwarded-Proto: https,https"}, "", schemeHTTPS, false, ""},
		{"unknown proto", xff, []string{"X-Forwarded-Proto: gopher"}, "", schemeBad, false, ""},
		{"unknown ssl value", xff, []string{"X-Forwarded-Ssl: yes"}, "", schemeBad, false, ""},
		{"x-forwarded-* ignored in forwarded mode", fwd, []string{"X-Forwarded-For: 203.0.113.7", "X-Forwarded-Proto: https"}, "", schemeNone, false, ""},
		{"forwarded ignored in x-forwarded-for mode", xff, []string{"Forwarded: for=203.0.113.7;proto=https"}, "", schemeNone, false, ""},

		{"forwarded for", fwd, []string{"Forwarded: for=203.0.113.7"}, "203.0.113.7", schemeNone, false, "203.0.113.7"},
		{"forwarded case and spaces", fwd, []string{"Forwarded: For=203.0.113.7 ; Proto=HTTPS ;by=10.0.0.1"}, "203.0.113.7", schemeHTTPS, false, "203.0.113.7"},
		{"forwarded quoted ipv4 with port", fwd, []string{`Forwarded: for="203.0.113.7:4711"`}, "203.0.113.7", schemeNone, false, "203.0.113.7"},
		{"forwarded bracketed ipv6", fwd, []string{`Forwarded: for="[2001:db8:cafe::17]"`}, "2001:db8:cafe::17", schemeNone, false, "2001:db8:cafe::17"},
		{"forwarded bracketed ipv6 with port", fwd, []string{`Forwarded: for="[2001:db8:cafe::17]:4711";proto=https`}, "2001:db8:cafe::17", schemeHTTPS, false, "2001:db8:cafe::17"},
		{"forwarded rightmost", fwd, []string{"Forwarded: for=198.51.100.1;proto=https, for=10.1.1.1;proto=http"}, "10.1.1.1", schemeHTTP, false, "198.51.100.1, 10.1.1.1"},
		{"forwarded recursive: the client's hop's proto", fwdRec, []string{"Forwarded: for=198.51.100.1;proto=https, for=10.1.1.1;proto=http"}, "198.51.100.1", schemeHTTPS, false, "198.51.100.1, 10.1.1.1"},
		{"forwarded over two lines", fwdRec, []string{"Forwarded: for=198.51.100.1", "Forwarded: for=10.1.1.1"}, "198.51.100.1", schemeNone, false, "198.51.100.1, 10.1.1.1"},
		{"forwarded proto only", fwd, []string{"Forwarded: proto=https"}, "", schemeHTTPS, false, "unknown"},
		{"forwarded unknown", fwdRec, []string{"Forwarded: for=unknown, for=10.1.1.1"}, "10.1.1.1", schemeNone, false, "unknown, 10.1.1.1"},
		{"forwarded obfuscated", fwd, []string{"Forwarded: for=_hidden"}, "", schemeNone, false, "unknown"},
		{"forwarded garbage address", fwd, []string{`Forwarded: for="not an address"`}, "", schemeNone, true, "unknown"},
		{"forwarded quoted comma stays in its element", fwd, []string{`Forwarded: for=203.0.113.7;ext="a,b"`}, "203.0.113.7", schemeNone, false, "203.0.113.7"},
		{"forwarded two protos in one element", fwd, []string{"Forwarded: for=203.0.113.7;proto=https;proto=http"}, "203.0.113.7", schemeBad, false, "203.0.113.7"},
		{"forwarded unknown proto", fwd, []string{"Forwarded: for=203.0.113.7;proto=gopher"}, "203.0.113.7", schemeBad, false, "203.0.113.7"},
		{"forwarded for twice: ignored", fwd, []string{"Forwarded: for=1.1.1.1;for=2.2.2.2"}, "", schemeNone, true, ""},
		{"forwarded unterminated quote: ignored", fwd, []string{`Forwarded: for="1.1.1.1`}, "", schemeNone, true, ""},
		{"forwarded no value: ignored", fwd, []string{"Forwarded: for"}, "", schemeNone, true, ""},
		{"forwarded garbage: ignored", fwd, []string{"Forwarded: for=1.1.1.1 junk"}, "", schemeNone, true, ""},
		{"forwarded empty elements", fwd, []string{"Forwarded: , for=203.0.113.7 ,"}, "203.0.113.7", schemeNone, false, "203.0.113.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := fwdReqHeader(t, tt.headers...)
			v, chain := tt.f.resolveForwarded(h, nil)
			client := ""
			if v.client.IsValid() {
				client = v.client.String()
			}
			if client != tt.client || v.scheme != tt.scheme || v.invalid != tt.invalid || string(chain) != tt.chain {
				t.Fatalf("client %q scheme %d invalid %v chain %q; want %q %d %v %q", client, v.scheme, v.invalid, chain, tt.client, tt.scheme, tt.invalid, tt.chain)
			}
		})
	}
}

// TestForwardedLongChain: a client may prepend any number of Forwarded
// elements; the walk reads the rightmost maxForwardedHops, which the trusted
// hops wrote.
func TestForwardedLongChain(t *testing.T) {
	f := &forwardTrust{trusted: config.Forwarded{Trusted: []string{"10.0.0.0/8"}}.Prefixes(), rfc7239: true, recursive: true}
	var b strings.Builder
	b.WriteString("Forwarded: ")
	for i := range 100 {
		fmt.Fprintf(&b, "for=192.0.2.%d, ", i%250)
	}
	b.WriteString("for=203.0.113.9, for=10.0.0.2")
	v, chain := f.resolveForwarded(fwdReqHeader(t, b.String()), nil)
	if v.client.String() != "203.0.113.9" || v.invalid || strings.Count(string(chain), ",") != 101 {
		t.Fatalf("client %v invalid %v, chain of %d", v.client, v.invalid, strings.Count(string(chain), ",")+1)
	}
}

// fwdOrigin records the forwarding headers each request reaches it with.
func fwdOrigin(t *testing.T, name string) (*origin, func() [][2]string) {
	var mu sync.Mutex
	var seen [][2]string
	o := newOrigin(t, name, func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		seen = append(seen, [2]string{string(ctx.Request.Header.Peek("X-Forwarded-For")), string(ctx.Request.Header.Peek("X-Forwarded-Proto"))})
		mu.Unlock()
		ctx.Response.Header.Set("Cache-Control", "no-store")
		ctx.SetBodyString(name)
	})
	return o, func() [][2]string {
		mu.Lock()
		defer mu.Unlock()
		s := seen
		seen = nil
		return s
	}
}

// startFwdEdge starts an edge that trusts the forwarding headers of trusted.
func startFwdEdge(t *testing.T, fw config.Forwarded, edit func(*config.Config), origins ...*origin) *edge {
	t.Helper()
	cfg := testConfig(origins...)
	cfg.Forwarded = fw
	if edit != nil {
		edit(&cfg)
	}
	return startEdge(t, cfg, Options{})
}

// TestForwardedHeaders runs requests through edges that trust loopback, or
// not, on both I/O cores (EDGE_TEST_IO=eventloop), and checks what the origin
// sees: the chain sent on is the received one plus the peer, the scheme the
// trusted one, and contradicting schemes are refused with a JSON 400 that
// never reaches the origin.
func TestForwardedHeaders(t *testing.T) {
	o, seen := fwdOrigin(t, "o1")
	xff := startFwdEdge(t, config.Forwarded{Trusted: []string{"127.0.0.1"}, Header: config.ForwardedXFF, Recursive: true}, nil, o)
	rfc := startFwdEdge(t, config.Forwarded{Trusted: []string{"127.0.0.0/8", "::1"}, Header: config.ForwardedRFC7239}, nil, o)
	untrusted := startFwdEdge(t, config.Forwarded{Trusted: []string{"10.0.0.0/8"}, Header: config.ForwardedXFF}, nil, o)
	off := startEdge(t, testConfig(o), Options{})
	tests := []struct {
		name      string
		e         *edge
		headers   []string // name, value, ...
		status    int
		xff       string // what the origin sees
		proto     string
		badScheme bool
	}{
		{"trusted: chain kept, peer appended", xff, []string{"X-Forwarded-For", "203.0.113.7"}, 200, "203.0.113.7, 127.0.0.1", "http", false},
		{"trusted: https from the balancer", xff, []string{"X-Forwarded-For", "203.0.113.7", "X-Forwarded-Proto", "https"}, 200, "203.0.113.7, 127.0.0.1", "https", false},
		{"trusted: ssl on", xff, []string{"X-Forwarded-Ssl", "on"}, 200, "127.0.0.1", "https", false},
		{"trusted: https with ssl off", xff, []string{"X-Forwarded-Proto", "https", "X-Forwarded-Ssl", "off"}, 400, "", "", true},
		{"trusted: unknown proto", xff, []string{"X-Forwarded-Proto", "ftp"}, 400, "", "", true},
		{"trusted: garbage address still forwarded", xff, []string{"X-Forwarded-For", "<script>"}, 200, "<script>, 127.0.0.1", "http", false},
		{"trusted forwarded: for= chain as X-Forwarded-For", rfc, []string{"Forwarded", `for="[2001:db8::9]:443";proto=https`}, 200, "2001:db8::9, 127.0.0.1", "https", false},
		{"trusted forwarded: contradicting protos", rfc, []string{"Forwarded", "for=203.0.113.7;proto=https;proto=http"}, 400, "", "", true},
		{"trusted forwarded: no header", rfc, []string{"X-Forwarded-Proto", "https"}, 200, "127.0.0.1", "http", false},
		{"untrusted: proto overwritten", untrusted, []string{"X-Forwarded-For", "203.0.113.7", "X-Forwarded-Proto", "https", "X-Forwarded-Ssl", "off"}, 200, "203.0.113.7, 127.0.0.1", "http", false},
		{"off: as before", off, []string{"X-Forwarded-For", "203.0.113.7", "X-Forwarded-Proto", "https"}, 200, "203.0.113.7, 127.0.0.1", "http", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen()
			before := fwdMetric(t, tt.e, `edge_forwarded_header_problems_total{problem="bad_scheme"}`)
			var hs []string
			for i := 0; i+1 < len(tt.headers); i += 2 {
				hs = append(hs, tt.headers[i]+": "+tt.headers[i+1])
			}
			r := tt.e.do(t, "GET", "/products/", "", hs...)
			if tt.status != 200 {
				wantJSONError(t, r, tt.status)
				if got := seen(); len(got) != 0 {
					t.Fatalf("a refused request reached the origin: %v", got)
				}
			} else {
				got := seen()
				if r.StatusCode() != 200 || len(got) != 1 || got[0] != [2]string{tt.xff, tt.proto} {
					t.Fatalf("status %d, the origin saw %q; want X-Forwarded-For %q, X-Forwarded-Proto %q", r.StatusCode(), got, tt.xff, tt.proto)
				}
			}
			after := fwdMetric(t, tt.e, `edge_forwarded_header_problems_total{problem="bad_scheme"}`)
			if (after > before) != tt.badScheme {
				t.Fatalf("bad_scheme counter %v -> %v", before, after)
			}
		})
	}
}

// fwdMetric scrapes one series from e's metrics ("" reads as -1 when absent).
func fwdMetric(t *testing.T, e *edge, series string) float64 {
	t.Helper()
	var b strings.Builder
	e.s.metrics.WritePrometheus(&b)
	for _, l := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return -1
}

// TestForwardedClientAddress: from a trusted peer, the header's client is
// the rate-limit key, the hash key and the access log's client.
func TestForwardedClientAddress(t *testing.T) {
	trust := config.Forwarded{Trusted: []string{"127.0.0.1", "::1"}, Header: config.ForwardedXFF}

	t.Run("rate limits", func(t *testing.T) {
		o, _ := fwdOrigin(t, "o1")
		e := startFwdEdge(t, trust, func(c *config.Config) {
			c.RateLimits = []config.RateLimit{rateRule("limited", "/limited/", nil, 0.001, 1, 0, 0)}
		}, o)
		one := func(ip string) int {
			return e.do(t, "GET", "/limited/x", "", "X-Forwarded-For: 192.0.2.1, "+ip).StatusCode()
		}
		if a1, a2, b1 := one("203.0.113.1"), one("203.0.113.1"), one("2001:db8::2"); a1 != 200 || a2 != 429 || b1 != 200 {
			t.Fatalf("client A: %d then %d, client B: %d; want 200, 429, 200 (the bucket is the header's address, not 127.0.0.1)", a1, a2, b1)
		}
	})

	t.Run("untrusted peer: one bucket", func(t *testing.T) {
		o, _ := fwdOrigin(t, "o1")
		e := startFwdEdge(t, config.Forwarded{Trusted: []string{"10.0.0.0/8"}, Header: config.ForwardedXFF}, func(c *config.Config) {
			c.RateLimits = []config.RateLimit{rateRule("limited", "/limited/", nil, 0.001, 1, 0, 0)}
		}, o)
		one := func(ip string) int { return e.do(t, "GET", "/limited/x", "", "X-Forwarded-For: "+ip).StatusCode() }
		if a, b := one("203.0.113.1"), one("203.0.113.2"); a != 200 || b != 429 {
			t.Fatalf("%d then %d; want 200, 429 (an untrusted header names no client)", a, b)
		}
	})

	t.Run("hash by client IP", func(t *testing.T) {
		o1, _ := fwdOrigin(t, "o1")
		o2, _ := fwdOrigin(t, "o2")
		e := startFwdEdge(t, trust, func(c *config.Config) {
			c.Balancer.Policy, c.Balancer.HashKey = "hash", "ip"
		}, o1, o2)
		hosts := map[string]int{}
		for i := range 24 {
			ip := fmt.Sprintf("198.51.100.%d", i+1)
			a := string(e.do(t, "GET", "/products/", "", "X-Forwarded-For: "+ip).Body())
			b := string(e.do(t, "GET", "/products/", "", "X-Forwarded-For: "+ip).Body())
			if a != b {
				t.Fatalf("%s went to %s then %s; want one host for one client", ip, a, b)
			}
			hosts[a]++
		}
		if hosts["o1"] == 0 || hosts["o2"] == 0 {
			t.Fatalf("24 client addresses all hashed to one host: %v (the balancer saw the peer's address)", hosts)
		}
	})

	t.Run("access log", func(t *testing.T) {
		o, _ := fwdOrigin(t, "o1")
		out := &syncBuffer{}
		cfg := testConfig(o)
		cfg.Forwarded = trust
		cfg.AccessLog.Enabled, cfg.AccessLog.Sample, cfg.AccessLog.FlushInterval = true, 1, 1e6
		e := startEdge(t, cfg, Options{AccessLog: out})
		if r := e.do(t, "GET", "/products/", "", "X-Forwarded-For: [2001:db8::44]:9"); r.StatusCode() != 200 {
			t.Fatalf("status %d", r.StatusCode())
		}
		waitUntil(t, "the access line", 5e9, func() bool { return len(out.lines()) == 1 })
		if l := out.lines()[0]; !strings.Contains(l, `"client":"2001:db8::44"`) {
			t.Fatalf("access line %s: want client 2001:db8::44", l)
		}
	})

	t.Run("after the PROXY protocol", func(t *testing.T) {
		// The peer the trust list is checked against is the PROXY header's
		// source (the L7 balancer behind an L4 one), not the socket's.
		o, seen := fwdOrigin(t, "o1")
		e := ppEdge(t, []string{"127.0.0.1"}, time.Second, func(c *config.Config) {
			c.Forwarded = config.Forwarded{Trusted: []string{"10.9.0.0/16"}, Header: config.ForwardedXFF}
			c.RateLimits = []config.RateLimit{rateRule("limited", "/limited/", nil, 0.001, 1, 0, 0)}
		}, o)
		get := func(src, xff string) int {
			raw := "PROXY TCP4 " + src + " 10.0.0.1 51000 8080\r\nGET /limited/x HTTP/1.1\r\nHost: shop.test\r\nX-Forwarded-For: " + xff + "\r\n\r\n"
			codes, _, _ := ppExchange(t, e.addr, [][]byte{[]byte(raw)}, true)
			if len(codes) != 1 {
				t.Fatalf("answers %v", codes)
			}
			return codes[0]
		}
		if a, b := get("10.9.1.1", "203.0.113.1"), get("10.9.1.1", "203.0.113.2"); a != 200 || b != 200 {
			t.Fatalf("two clients behind a trusted balancer: %d, %d; want 200, 200", a, b)
		}
		if got := seen(); len(got) != 2 || got[0][0] != "203.0.113.1, 10.9.1.1" {
			t.Fatalf("the origin saw %q", got)
		}
		if a, b := get("192.0.2.5", "203.0.113.3"), get("192.0.2.5", "203.0.113.4"); a != 200 || b != 429 {
			t.Fatalf("an untrusted PROXY source's header: %d, %d; want 200, 429 (one bucket, the source's)", a, b)
		}
	})

	t.Run("reload", func(t *testing.T) {
		o, _ := fwdOrigin(t, "o1")
		cfg := testConfig(o)
		cfg.RateLimits = []config.RateLimit{rateRule("limited", "/limited/", nil, 0.001, 1, 0, 0)}
		e := startEdge(t, cfg, Options{})
		one := func(ip string) int { return e.do(t, "GET", "/limited/x", "", "X-Forwarded-For: "+ip).StatusCode() }
		if a, b := one("203.0.113.1"), one("203.0.113.2"); a != 200 || b != 429 {
			t.Fatalf("trusting nothing: %d, %d; want 200, 429", a, b)
		}
		cfg.Forwarded.Trusted = []string{"127.0.0.1"}
		if err := e.s.Reload(cfg); err != nil {
			t.Fatal(err)
		}
		if a := one("203.0.113.3"); a != 200 {
			t.Fatalf("after a reload trusting loopback: %d; want 200 (the header's own bucket)", a)
		}
	})

	t.Run("garbage counted", func(t *testing.T) {
		o, _ := fwdOrigin(t, "o1")
		e := startFwdEdge(t, trust, nil, o)
		before := fwdMetric(t, e, `edge_forwarded_header_problems_total{problem="invalid_address"}`)
		if r := e.do(t, "GET", "/products/", "", "X-Forwarded-For: 999.1.1.1"); r.StatusCode() != 200 {
			t.Fatalf("status %d", r.StatusCode())
		}
		if after := fwdMetric(t, e, `edge_forwarded_header_problems_total{problem="invalid_address"}`); after != before+1 {
			t.Fatalf("invalid_address %v -> %v", before, after)
		}
	})
}

// FuzzForwarded feeds arbitrary forwarding headers to both readers: they must
// not panic, must name a valid client or none, and the X-Forwarded-For list
// made from Forwarded must be a clean comma list of addresses and "unknown".
func FuzzForwarded(f *testing.F) {
	for _, s := range []string{
		"203.0.113.7", "1.1.1.1, 10.0.0.1", "[2001:db8::1]:80", "fe80::1%eth0", "unknown, ,",
		`for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.1`, `for=_hidden;by=x;proto="http"`,
		`for="a\"b"`, "for=1.1.1.1;for=2.2.2.2", `for="`, "proto=https;proto=http",
	} {
		f.Add(s, "https", true)
	}
	trusted := config.Forwarded{Trusted: []string{"10.0.0.0/8", "::1"}}.Prefixes()
	f.Fuzz(func(t *testing.T, value, proto string, recursive bool) {
		h, err := readFwdReqHeader("X-Forwarded-For: "+value, "Forwarded: "+value, "X-Forwarded-Proto: "+proto, "X-Forwarded-Ssl: "+proto)
		if err != nil || strings.ContainsAny(value+proto, "\r\n") {
			return // not a header fasthttp lets through
		}
		for _, rfc := range []bool{false, true} {
			ft := &forwardTrust{trusted: trusted, rfc7239: rfc, recursive: recursive}
			v, chain := ft.resolveForwarded(h, nil)
			if v.client.IsValid() && (v.client.Zone() != "" || v.client.Is4In6()) {
				t.Fatalf("client %v", v.client)
			}
			if v.scheme < schemeNone || v.scheme > schemeBad {
				t.Fatalf("scheme %d", v.scheme)
			}
			if !rfc && len(chain) != 0 {
				t.Fatalf("chain %q from X-Forwarded-For", chain)
			}
			for item := range strings.SplitSeq(string(chain), ", ") {
				if item == "unknown" || len(chain) == 0 {
					continue
				}
				if ip := net.ParseIP(item); ip == nil {
					t.Fatalf("chain %q has %q", chain, item)
				}
			}
		}
	})
}

// BenchmarkResolveForwarded is the per-request cost of reading a trusted
// peer's headers (a three-hop chain with recursion, and the scheme).
func BenchmarkResolveForwarded(b *testing.B) {
	trusted := config.Forwarded{Trusted: []string{"10.0.0.0/8"}}.Prefixes()
	for _, c := range []struct {
		name string
		f    *forwardTrust
		hdr  []string
	}{
		{"x-forwarded-for", &forwardTrust{trusted: trusted, recursive: true}, []string{"X-Forwarded-For: 198.51.100.1, 203.0.113.9, 10.1.1.1", "X-Forwarded-Proto: https"}},
		{"forwarded", &forwardTrust{trusted: trusted, rfc7239: true, recursive: true}, []string{`Forwarded: for=198.51.100.1, for="[2001:db8::9]:443";proto=https, for=10.1.1.1`}},
	} {
		b.Run(c.name, func(b *testing.B) {
			h := fwdReqHeader(b, c.hdr...)
			var chain []byte
			b.ReportAllocs()
			for b.Loop() {
				var v forwardedView
				v, chain = c.f.resolveForwarded(h, chain[:0])
				if !v.client.IsValid() {
					b.Fatal("no client")
				}
			}
		})
	}
}
