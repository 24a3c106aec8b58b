package proxy

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/proxy/cache"
)

// TestH2CopyHeader: the bridge's header copy keeps every field HTTP/2
// allows, repeated ones in order, and drops the hop-by-hop ones and
// Content-Length (set by the bridge). Names are lower case (what HTTP/2
// sends) except those x/net and quic-go look up canonically.
func TestH2CopyHeader(t *testing.T) {
	cases := []struct {
		name string
		set  func(h *fasthttp.ResponseHeader)
		want http.Header
	}{
		{"content type only", func(h *fasthttp.ResponseHeader) {}, http.Header{"Content-Type": {"text/plain; charset=utf-8"}}},
		{"common and unknown names", func(h *fasthttp.ResponseHeader) {
			h.SetContentType("application/json")
			h.Set("Cache-Control", "public, max-age=60")
			h.Set("X-Odd-Name", "v")
			h.Set("Etag", `"abc"`)
		}, http.Header{"Content-Type": {"application/json"}, "cache-control": {"public, max-age=60"}, "x-odd-name": {"v"}, "etag": {`"abc"`}}},
		{"repeated fields", func(h *fasthttp.ResponseHeader) {
			h.SetContentType("text/html")
			h.Add("Vary", "Accept-Encoding")
			h.Add("Vary", "Cookie")
			h.Add("Set-Cookie", "a=1")
			h.Add("Set-Cookie", "b=2")
		}, http.Header{"Content-Type": {"text/html"}, "vary": {"Accept-Encoding", "Cookie"}, "set-cookie": {"a=1", "b=2"}}},
		{"hop-by-hop dropped", func(h *fasthttp.ResponseHeader) {
			h.SetContentType("text/plain")
			h.SetContentLength(12)
			h.Set("Connection", "keep-alive")
			h.Set("Keep-Alive", "timeout=5")
			h.Set("Upgrade", "h2c")
			h.Set("Proxy-Connection", "x")
			h.Set("X-Kept", "1")
		}, http.Header{"Content-Type": {"text/plain"}, "x-kept": {"1"}}},
		{"names x/net looks up stay canonical", func(h *fasthttp.ResponseHeader) {
			h.SetContentType("text/plain")
			h.Set("Content-Encoding", "br")
			cache.SetDate(h, []byte("Sun, 06 Dec 2026 20:41:33 GMT")) // fasthttp's Set drops Date
		}, http.Header{"Content-Type": {"text/plain"}, "Content-Encoding": {"br"}, "Date": {"Sun, 06 Dec 2026 20:41:33 GMT"}}},
	}
	st := new(h2Stream)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var src fasthttp.ResponseHeader
			tc.set(&src)
			got := http.Header{}
			st.copyHeader(got, &src)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestH2CopyHeaderAllocs pins the copy's cost: one string for every value
// and one slice for every field, whatever the number of fields.
func TestH2CopyHeaderAllocs(t *testing.T) {
	var src fasthttp.ResponseHeader
	src.SetContentType("application/json")
	for _, kv := range [][2]string{{"Cache-Control", "public, max-age=60"}, {"Date", "Sun, 06 Dec 2026 20:41:33 GMT"},
		{"Strict-Transport-Security", "max-age=3600"}, {"X-Request-Id", "8c13f5f1ba80-1"}, {"X-Served-By", "o1"}, {"Vary", "Accept-Encoding"}} {
		src.Set(kv[0], kv[1])
	}
	st := new(h2Stream)
	h := http.Header{}
	st.copyHeader(h, &src)
	if n := testing.AllocsPerRun(100, func() {
		clear(h)
		st.copyHeader(h, &src)
	}); n > 2 {
		t.Fatalf("%.0f allocations per copy, want at most 2", n)
	}
}
