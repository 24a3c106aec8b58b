package proxy

import (
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestValidRequestID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"abc", true}, {"A-b_c.9", true}, {strings.Repeat("x", 128), true},
		{"", false}, {strings.Repeat("x", 129), false}, {"a b", false}, {"a/b", false},
		{"ä", false}, {"a\r\nb", false}, {`"x"`, false},
	}
	for _, tt := range tests {
		if got := validRequestID([]byte(tt.id)); got != tt.want {
			t.Errorf("validRequestID(%q) = %v", tt.id, got)
		}
	}
	a, b := appendRequestID(nil), appendRequestID(nil)
	if string(a) == string(b) || !validRequestID(a) {
		t.Fatalf("generated ids %q, %q", a, b)
	}
	// Each loop numbers its own ids: still never the same id twice.
	seen := map[string]bool{}
	for i := range 64 {
		id := string(appendRequestIDOn(nil, uint(i%3)))
		if seen[id] || !validRequestID([]byte(id)) {
			t.Fatalf("id %q given twice or invalid", id)
		}
		seen[id] = true
	}
}

func TestConnectionTokens(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"close", nil},
		{"keep-alive, X-A", []string{"X-A"}},
		{" X-A ,X-B,, Close ,x-c", []string{"X-A", "X-B", "x-c"}},
	}
	for _, tt := range tests {
		var got []string
		for tok := range connectionTokens([]byte(tt.in)) {
			got = append(got, string(tok))
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("tokens(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAppendForwardedFor(t *testing.T) {
	tests := []struct {
		prior string
		ip    net.IP
		want  string
	}{
		{"", net.ParseIP("10.0.0.1"), "10.0.0.1"},
		{"1.2.3.4", net.ParseIP("10.0.0.1"), "1.2.3.4, 10.0.0.1"},
		{"", net.ParseIP("::1"), "::1"},
		{"", net.IPv4(10, 0, 0, 2).To16(), "10.0.0.2"},
		{"", nil, "unknown"},
	}
	for _, tt := range tests {
		if got := string(appendForwardedFor(nil, []byte(tt.prior), tt.ip)); got != tt.want {
			t.Errorf("XFF(%q, %v) = %q, want %q", tt.prior, tt.ip, got, tt.want)
		}
	}
}

// FuzzStripHop parses arbitrary header blocks and checks that, after stripping, no
// hop-by-hop field and no field named by Connection reaches the origin.
func FuzzStripHop(f *testing.F) {
	f.Add("Connection: X-A, keep-alive\r\nX-A: 1\r\nKeep-Alive: 5\r\nX-B: 2\r\n")
	f.Add("Connection: close\r\nTE: trailers\r\nUpgrade: h2c\r\n")
	f.Add("Connection: ,,,\r\nProxy-Connection: x\r\n")
	f.Add("X-Plain: 1\r\n")
	f.Fuzz(func(t *testing.T, block string) {
		raw := "GET / HTTP/1.1\r\nHost: x\r\n" + block + "\r\n"
		var h fasthttp.RequestHeader
		if err := h.Read(bufioReader(raw)); err != nil {
			return
		}
		var named []string
		for _, v := range h.PeekAll(fasthttp.HeaderConnection) {
			for tok := range connectionTokens(v) {
				named = append(named, string(tok))
			}
		}
		stripHopRequest(&h, nil)
		for _, name := range append(named, append([]string{"Connection"}, hopHeaders...)...) {
			if v := h.Peek(name); len(v) > 0 {
				t.Fatalf("%s survived: %q", name, v)
			}
		}
	})
}

func BenchmarkStripHopRequest(b *testing.B) {
	var h fasthttp.RequestHeader
	var scratch []byte
	b.ReportAllocs()
	for b.Loop() {
		h.Set("Connection", "X-A, keep-alive")
		h.Set("X-A", "1")
		h.Set("Keep-Alive", "5")
		scratch = stripHopRequest(&h, scratch)
	}
}

func BenchmarkStripHopRequestClean(b *testing.B) {
	var h fasthttp.RequestHeader
	h.Set("Accept", "*/*")
	h.Set("User-Agent", "bench")
	h.Set("X-Forwarded-For", "1.2.3.4")
	var scratch []byte
	b.ReportAllocs()
	for b.Loop() {
		scratch = stripHopRequest(&h, scratch)
	}
}

func TestScanInbound(t *testing.T) {
	tests := []struct {
		name  string
		block string
		want  inbound
	}{
		{"plain", "Accept: */*\r\n", inbound{}},
		{"valid id kept", "X-Request-ID: abc-1\r\n", inbound{validID: true}},
		{"invalid id", "X-Request-ID: a b\r\n", inbound{}},
		{"first id decides", "X-Request-ID: ok\r\nX-Request-ID: \"bad\"\r\n", inbound{validID: true}},
		{"lower-case identity", "x-user-id: 7\r\nX-USER-ROLE: staff\r\n", inbound{userID: true, userRole: true}},
		{"xff and expect", "X-Forwarded-For: 1.2.3.4\r\nExpect: 100-continue\r\n", inbound{forwardedFor: true, expect: true}},
		{"empty expect", "Expect: \r\n", inbound{}},
		{"hop field", "Keep-Alive: 5\r\n", inbound{hop: true}},
		{"connection close", "Connection: close\r\n", inbound{hop: true}},
		{"connection names a field", "Connection: X-A\r\nX-A: 1\r\n", inbound{hop: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h fasthttp.RequestHeader
			if err := h.Read(bufioReader("GET / HTTP/1.1\r\nHost: x\r\n" + tt.block + "\r\n")); err != nil {
				t.Fatal(err)
			}
			if got := scanInbound(&h); got != tt.want {
				t.Fatalf("scanInbound = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// FuzzScanInbound checks the one-pass scan against the plain look-ups it
// replaced: after the handler's steps no client identity header survives, and
// the request-id and Expect decisions match Peek's.
func FuzzScanInbound(f *testing.F) {
	f.Add("X-Request-ID: abc\r\nX-User-ID: 1\r\n")
	f.Add("Connection: X-User-Role, X-Request-ID\r\nX-User-Role: staff\r\nX-Request-ID: ok\r\n")
	f.Add("x-user-id: 1\r\nX-User-Id: 2\r\nExpect: 100-continue\r\n")
	f.Fuzz(func(t *testing.T, block string) {
		var h fasthttp.RequestHeader
		if err := h.Read(bufioReader("GET / HTTP/1.1\r\nHost: x\r\n" + block + "\r\n")); err != nil {
			return
		}
		in := scanInbound(&h)
		if in.hop {
			stripHopRequest(&h, nil)
			in = scanInbound(&h)
		}
		if in.validID != validRequestID(h.Peek("X-Request-ID")) {
			t.Fatalf("validID = %v, Peek = %q", in.validID, h.Peek("X-Request-ID"))
		}
		if in.expect != (len(h.Peek("Expect")) > 0) {
			t.Fatalf("expect = %v, Peek = %q", in.expect, h.Peek("Expect"))
		}
		if in.userID {
			h.Del("X-User-ID")
		}
		if in.userRole {
			h.Del("X-User-Role")
		}
		for k := range h.All() {
			if s := strings.ToLower(string(k)); s == "x-user-id" || s == "x-user-role" {
				t.Fatalf("%s survived", k)
			}
		}
	})
}
