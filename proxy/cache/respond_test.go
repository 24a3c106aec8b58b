package cache

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestParseRange(t *testing.T) {
	cases := []struct {
		in       string
		n        int
		a, b     int
		ok       bool
		describe string
	}{
		{"bytes=0-9", 100, 0, 9, true, "RFC 9110 s14.1.2: first-last"},
		{"bytes=90-", 100, 90, 99, true, "s14.1.2: open end"},
		{"bytes=-10", 100, 90, 99, true, "s14.1.2: suffix"},
		{"bytes=-500", 100, 0, 99, true, "s14.1.2: suffix longer than the body"},
		{"bytes=50-500", 100, 50, 99, true, "s14.1.2: last past the end is clipped"},
		{"bytes=100-", 100, -1, -1, true, "s15.5.17: first byte past the end is 416"},
		{"bytes=-0", 100, -1, -1, true, "s14.1.2: empty suffix is unsatisfiable"},
		{"bytes=0-1,5-6", 100, 0, 0, false, "s14.2: several ranges may be ignored"},
		{"items=0-1", 100, 0, 0, false, "s14.2: unknown unit is ignored"},
		{"bytes=5-1", 100, 0, 0, false, "s14.1.2: last before first is invalid, ignored"},
		{"bytes=x-1", 100, 0, 0, false, "garbage is ignored"},
		{"BYTES=0-0", 100, 0, 0, true, "unit is case-insensitive"},
	}
	for _, c := range cases {
		a, b, ok := parseRange([]byte(c.in), c.n)
		if ok != c.ok || (ok && (a != c.a || b != c.b)) {
			t.Errorf("%s: parseRange(%q) = %d %d %v", c.describe, c.in, a, b, ok)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-9", "bytes=-5", "bytes=9-", "bytes=,", "bytes=--"} {
		f.Add(s, 100)
	}
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 0 || n > 1<<20 {
			return
		}
		a, b, ok := parseRange([]byte(s), n)
		if ok && a >= 0 && (a > b || b >= n) {
			t.Fatalf("parseRange(%q, %d) = %d-%d out of bounds", s, n, a, b)
		}
	})
}

func TestNotModified(t *testing.T) {
	e := &entry{status: 200, etag: []byte(`"abc"`), lastMod: 1_700_000_000}
	cases := []struct {
		name   string
		fields []string
		want   bool
	}{
		{"RFC 9110 s13.1.2: matching tag", []string{"If-None-Match", `"abc"`}, true},
		{"s13.1.2: weak comparison", []string{"If-None-Match", `W/"abc"`}, true},
		{"s13.1.2: list", []string{"If-None-Match", `"x", "abc"`}, true},
		{"s13.1.2: star", []string{"If-None-Match", `*`}, true},
		{"s13.1.2: no match", []string{"If-None-Match", `"zzz"`}, false},
		{"s13.2.2: If-None-Match wins over If-Modified-Since", []string{"If-None-Match", `"zzz"`, "If-Modified-Since", "Wed, 01 Jan 2031 00:00:00 GMT"}, false},
		{"s13.1.3: not modified since", []string{"If-Modified-Since", "Wed, 01 Jan 2031 00:00:00 GMT"}, true},
		{"s13.1.3: modified since", []string{"If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT"}, false},
		{"s13.1.3: invalid date ignored", []string{"If-Modified-Since", "yesterday"}, false},
		{"no conditional", nil, false},
	}
	for _, c := range cases {
		var h fasthttp.RequestHeader
		for i := 0; i+1 < len(c.fields); i += 2 {
			h.Add(c.fields[i], c.fields[i+1])
		}
		if got := notModified(&h, e); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// TestWriteEntryBodyOwnership pins the rule that lets hits skip a copy: a
// stored (decoded) entry's body is referenced by the answer, a borrowed
// one (built from a fetch's pooled response, reused after the fill) is
// copied, so reusing the fetch's buffer cannot change an answer not yet
// written.
func TestWriteEntryBodyOwnership(t *testing.T) {
	c := &Cache{}
	for _, borrowed := range []bool{false, true} {
		body := []byte("original body")
		e := &entry{status: fasthttp.StatusOK, body: body, borrowed: borrowed}
		var ctx fasthttp.RequestCtx
		c.writeEntry(&ctx, e, 0, []byte("edge; hit"))
		copy(body, "OVERWRITTEN!!")
		got := string(ctx.Response.Body())
		if borrowed && got != "original body" {
			t.Fatalf("borrowed entry: answer changed with the fetch buffer: %q", got)
		}
		if !borrowed && got != "OVERWRITTEN!!" {
			t.Fatalf("stored entry: answer copied the body (%q), the hit path should reference it", got)
		}
	}
}

// TestWriteEntryPlanMatchesAddPath pins the hit plan (hitPlan): into a
// response with no fields yet, writeEntry copies stored fields with the
// cheaper calls the plan allows; into one that already holds a field it
// takes the old path (AddBytesKV, SetDate) for every field. Both must give
// the same answer, field for field and byte for byte, for every kind of
// stored field and request: the old path's answer is writeEntry's on a
// Cache with noHitPlan set.
func TestWriteEntryPlanMatchesAddPath(t *testing.T) {
	const date = "Sun, 06 Dec 2026 20:00:00 GMT"
	body := []byte(`{"id":1,"name":"tea"}`)
	fields := func(kvs ...string) []kv {
		var out []kv
		for i := 0; i < len(kvs); i += 2 {
			out = append(out, kv{[]byte(kvs[i]), []byte(kvs[i+1])})
		}
		return out
	}
	entries := []struct {
		name   string
		status int
		header []kv
	}{
		{"typical", 200, fields("Content-Type", "application/json", "Date", date, "Etag", `"v1"`,
			"Last-Modified", "Sun, 06 Dec 2026 19:00:00 GMT", "Cache-Control", "public, max-age=60",
			"Edge-Cache-Control", "max-age=600", "Vary", "Accept-Encoding", "Cache-Tag", "product:1")},
		{"no date", 200, fields("Content-Type", "text/html; charset=utf-8", "X-Shop", "a")},
		{"date first", 200, fields("Date", date, "Server", "origin", "Content-Encoding", "gzip")},
		{"lower-case keys", 200, fields("content-type", "text/plain", "x-custom", "1", "date", date, "edge-cache-control", "max-age=1")},
		{"odd keys", 200, fields("X_Under", "1", "X-ÿ", "2", "WWW-Authenticate", "Basic", "X-1-a", "3", "x--Y", "4")},
		{"repeated names", 200, fields("Link", "</a>; rel=preload", "Vary", "Accept", "link", "</b>; rel=preload", "Link", "</c>", "Vary", "Origin")},
		{"set-cookie", 200, fields("Set-Cookie", "a=1; Path=/", "Set-Cookie", "b=2", "Content-Type", "text/plain")},
		{"trailer and connection", 200, fields("Trailer", "X-Sum", "Connection", "keep-alive", "Transfer-Encoding", "chunked", "Content-Length", "99")},
		{"value with newline", 200, fields("X-Bad", "a\r\nInjected: 1", "Content-Type", "text/plain")},
		{"two dates", 200, fields("Date", date, "X-A", "1", "date", "Mon, 07 Dec 2026 20:00:00 GMT")},
		{"trailer before date", 200, fields("Trailer", "X-Sum", "Date", date, "Content-Type", "text/plain")},
		{"stored 404", 404, fields("Content-Type", "application/json", "Date", date)},
		{"relayed 206", 206, fields("Content-Range", "bytes 0-4/100", "Date", date)},
	}
	requests := []struct {
		name string
		hdr  []string
		head bool
	}{
		{"get", nil, false},
		{"head", nil, true},
		{"if-none-match", []string{"If-None-Match", `"v1"`}, false},
		{"if-modified-since", []string{"If-Modified-Since", "Sun, 06 Dec 2026 21:00:00 GMT"}, false},
		{"range", []string{"Range", "bytes=2-5"}, false},
		{"range unsatisfiable", []string{"Range", "bytes=500-"}, false},
		{"request id", []string{"X-Request-Id", "abc"}, false},
	}
	answer := func(e *entry, req []string, head bool, old bool) (string, []string) {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI("/api/products/1")
		if head {
			ctx.Request.Header.SetMethod(fasthttp.MethodHead)
		}
		for i := 0; i < len(req); i += 2 {
			ctx.Request.Header.Set(req[i], req[i+1])
		}
		if old {
			(&Cache{noHitPlan: true}).writeEntry(&ctx, e, 42e9, []byte("edge; hit"))
		} else {
			(&Cache{}).writeEntry(&ctx, e, 42e9, []byte("edge; hit"))
		}
		var all []string
		for k, v := range ctx.Response.Header.All() {
			all = append(all, string(k)+": "+string(v))
		}
		return ctx.Response.String(), all
	}
	for _, es := range entries {
		for _, rq := range requests {
			t.Run(es.name+"/"+rq.name, func(t *testing.T) {
				e := &entry{status: es.status, header: es.header, body: body, etag: []byte(`"v1"`)}
				wantWire, wantFields := answer(e, rq.hdr, rq.head, true)
				if e.plan.Load() != nil {
					t.Fatal("the old path made a plan")
				}
				for range 2 { // the first answer makes the plan, the second uses it
					gotWire, gotFields := answer(e, rq.hdr, rq.head, false)
					if e.plan.Load() == nil {
						t.Fatal("no plan made")
					}
					if gotWire != wantWire {
						t.Fatalf("wire:\n got %q\nwant %q", gotWire, wantWire)
					}
					if strings.Join(gotFields, "\n") != strings.Join(wantFields, "\n") {
						t.Fatalf("fields:\n got %q\nwant %q", gotFields, wantFields)
					}
				}
			})
		}
	}
}

// TestIsCanonicalKey pins the names the plan may set without normalising.
func TestIsCanonicalKey(t *testing.T) {
	for _, tc := range []struct {
		k    string
		want bool
	}{
		{"Content-Type", true}, {"Age", true}, {"X-1-A", true}, {"Www-Authenticate", true},
		{"X-Ab9", true}, {"-X", true},
		{"", false}, {"content-type", false}, {"WWW-Authenticate", false}, {"X-1-a", false},
		{"X_Under", false}, {"X Y", false}, {"X:Y", false}, {"X-ÿ", false},
	} {
		if got := isCanonicalKey([]byte(tc.k)); got != tc.want {
			t.Errorf("isCanonicalKey(%q) = %v, want %v", tc.k, got, tc.want)
		}
	}
}
