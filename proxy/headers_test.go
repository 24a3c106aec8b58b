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
