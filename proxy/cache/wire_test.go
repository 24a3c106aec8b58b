package cache

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestRawHitMatchesResponsePath pins the raw hit path (writeRaw, wirePlan):
// for every kind of stored entry and request, either it writes the very bytes
// the ResponseHeader path sends (writeEntry into a response with the flags the
// edge's servers set, then fasthttp's serializer), or it declines and answers
// through that path. The raw head plus the blank line plus the body (none for
// HEAD and 304) is compared byte for byte with the serialized answer.
func TestRawHitMatchesResponsePath(t *testing.T) {
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
		body   []byte
		header []kv
		raw    bool // served raw (a plain GET)
	}{
		{"typical", 200, body, fields("Content-Type", "application/json", "Date", date, "Etag", `"v1"`,
			"Last-Modified", "Sun, 06 Dec 2026 19:00:00 GMT", "Cache-Control", "public, max-age=60",
			"Edge-Cache-Control", "max-age=600", "Vary", "Accept-Encoding"), true},
		{"bench origin", 200, body, fields("Server", "fixed-origin", "X-Served-By", "f1", "Cache-Control", "public, max-age=0, s-maxage=3600",
			"Content-Type", "application/json", "Date", date), true},
		{"date first", 200, body, fields("Date", date, "Server", "origin", "Content-Encoding", "gzip"), true},
		{"lower-case keys", 200, body, fields("content-type", "text/plain", "x-custom", "1", "date", date, "edge-cache-control", "max-age=1"), true},
		{"odd keys", 200, body, fields("Date", date, "X_Under", "1", "X-ÿ", "2", "WWW-Authenticate", "Basic", "X-1-a", "3", "x--Y", "4"), true},
		{"repeated names", 200, body, fields("Link", "</a>; rel=preload", "Vary", "Accept", "link", "</b>; rel=preload", "Date", date, "Link", "</c>", "Vary", "Origin"), true},
		{"no content type", 200, body, fields("Date", date, "X-A", "1"), true},
		{"two dates", 200, body, fields("Date", date, "X-A", "1", "date", "Mon, 07 Dec 2026 20:00:00 GMT"), true},
		{"value with newline", 200, body, fields("X-Bad", "a\r\nInjected: 1", "Content-Type", "text/plain", "Date", date), true},
		// Declined: the ResponseHeader path answers.
		{"no date", 200, body, fields("Content-Type", "text/html; charset=utf-8", "X-Shop", "a"), false},
		{"empty body", 200, nil, fields("Date", date), false},
		{"set-cookie", 200, body, fields("Set-Cookie", "a=1; Path=/", "Date", date, "Content-Type", "text/plain"), false},
		{"trailer and connection", 200, body, fields("Trailer", "X-Sum", "Connection", "keep-alive", "Transfer-Encoding", "chunked", "Content-Length", "99", "Date", date), false},
		{"connection close", 200, body, fields("Connection", "close", "Date", date), false},
		{"stored age", 200, body, fields("Age", "5", "Date", date), false},
		{"stored cache-status", 200, body, fields("cache-status", "x; hit", "Date", date), false},
		{"stored request id", 200, body, fields("X-Request-ID", "r1", "Date", date), false},
		{"cache-tag", 200, body, fields("Cache-Tag", "product:1", "Date", date), false},
		{"stored 404", 404, body, fields("Content-Type", "application/json", "Date", date), false},
		{"relayed 206", 206, body, fields("Content-Range", "bytes 0-4/100", "Date", date), false},
	}
	requests := []struct {
		name string
		hdr  []string
		head bool
		raw  bool // served raw when the entry is
	}{
		{"get", nil, false, true},
		{"head", nil, true, true},
		{"if-none-match", []string{"If-None-Match", `"v1"`}, false, true},
		{"if-none-match head", []string{"If-None-Match", `W/"v1"`}, true, true},
		{"if-none-match other", []string{"If-None-Match", `"v2"`}, false, true},
		{"if-modified-since", []string{"If-Modified-Since", "Sun, 06 Dec 2026 21:00:00 GMT"}, false, true},
		{"if-modified-since older", []string{"If-Modified-Since", "Sun, 06 Dec 2026 10:00:00 GMT"}, false, true},
		{"range", []string{"Range", "bytes=2-5"}, false, false},
		{"range unsatisfiable", []string{"Range", "bytes=500-"}, false, false},
		{"range with if-range", []string{"Range", "bytes=2-5", "If-Range", `"v2"`}, false, false},
	}
	newCtx := func(req []string, head bool) *fasthttp.RequestCtx {
		ctx := &fasthttp.RequestCtx{}
		ctx.Request.SetRequestURI("/api/products/1")
		if head {
			ctx.Request.Header.SetMethod(fasthttp.MethodHead)
		}
		for i := 0; i < len(req); i += 2 {
			ctx.Request.Header.Set(req[i], req[i+1])
		}
		ctx.Response.Header.SetNoDefaultContentType(true)
		setNoDefaultDate(&ctx.Response.Header)
		return ctx
	}
	c := &Cache{statusHit: []byte("edge; hit")}
	for _, es := range entries {
		for _, rq := range requests {
			t.Run(es.name+"/"+rq.name, func(t *testing.T) {
				e := &entry{status: es.status, header: es.header, body: es.body, etag: []byte(`"v1"`),
					lastMod: httpDate([]byte("Sun, 06 Dec 2026 19:00:00 GMT"))}
				old := newCtx(rq.hdr, rq.head)
				c.writeEntry(old, e, 42e9, c.statusHit)
				var want bytes.Buffer
				bw := bufio.NewWriter(&want)
				if err := old.Response.Write(bw); err != nil {
					t.Fatal(err)
				}
				_ = bw.Flush()
				for range 2 { // the first makes the plan, the second uses it
					ctx := newCtx(rq.hdr, rq.head)
					prefix := []byte("earlier answer")
					hr := scanHitRequest(&ctx.Request.Header)
					out, rbody, res := c.writeRaw(ctx, e, 42e9, &hr, prefix)
					if wantRaw := es.raw && rq.raw; (res == RawWritten) != wantRaw || (res != RawWritten && res != RawAnswered) {
						t.Fatalf("result %d, want raw %v", res, wantRaw)
					}
					if res == RawAnswered {
						if len(out) != len(prefix) {
							t.Fatal("declined but wrote")
						}
						continue
					}
					if !bytes.HasPrefix(out, prefix) {
						t.Fatal("dst not appended to")
					}
					got := append(out[len(prefix):], "\r\n"...)
					if !rq.head {
						got = append(got, rbody...)
					}
					if string(got) != want.String() {
						t.Fatalf("wire:\n got %q\nwant %q", got, want.String())
					}
					if ctx.Response.StatusCode() != old.Response.StatusCode() {
						t.Fatalf("status %d, want %d", ctx.Response.StatusCode(), old.Response.StatusCode())
					}
				}
			})
		}
	}
}

// TestRawHitAllocatesNothing pins the raw hit path on a warm entry: the
// lookup, the head and the fields, into an output with room.
func TestRawHitAllocatesNothing(t *testing.T) {
	c, o := warmHit(t)
	ctx := hitCtx()
	c.Serve(ctx, o.fetch)
	dst := make([]byte, 0, 8192)
	var res RawHit
	var out, body []byte
	allocs := testing.AllocsPerRun(200, func() {
		ctx.Response.Reset()
		out, body, res = c.TryServeLocalRaw(ctx, dst[:0])
	})
	if res != RawWritten || len(body) != len(json2K) || !bytes.Contains(out, []byte("; hit\r\n")) {
		t.Fatalf("not a raw hit: %d %q", res, out)
	}
	if allocs != 0 && !raceEnabled {
		t.Fatalf("a raw hit allocates %v times, want 0", allocs)
	}
}

// TestScanHitRequest pins the one-pass scan against what Peek returns for each
// field the hit path reads: the first of its name, whatever its case, empty
// values included.
func TestScanHitRequest(t *testing.T) {
	for _, raw := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nRange: bytes=1-2\r\nIf-None-Match: \"x\"\r\nIf-Modified-Since: Sun, 06 Dec 2026 10:00:00 GMT\r\nCache-Control: max-age=0\r\nNovashop-RV: t\r\n\r\n",
		"GET / HTTP/1.1\r\nhost: a\r\nrange: \r\nRANGE: bytes=1-2\r\ncache-control: no-cache\r\nCache-Control: max-age=1\r\nif-none-match: \"a\"\r\nIf-None-Match: \"b\"\r\nnovashop-rv: 1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nCookie: novashop_rv=1\r\nIf-Range: \"x\"\r\nCache-Controls: x\r\nX-Range: y\r\n\r\n",
	} {
		checkScanHitRequest(t, []byte(raw))
	}
}

func FuzzScanHitRequest(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\nRange: bytes=1-2\r\ncache-control: x\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) { checkScanHitRequest(t, raw) })
}

func checkScanHitRequest(t *testing.T, raw []byte) {
	var h fasthttp.RequestHeader
	if err := h.Read(bufio.NewReader(bytes.NewReader(raw))); err != nil {
		return
	}
	got := scanHitRequest(&h)
	for _, f := range []struct {
		name string
		got  []byte
	}{
		{fasthttp.HeaderRange, got.rng}, {fasthttp.HeaderCacheControl, got.cc}, {fasthttp.HeaderIfNoneMatch, got.inm},
		{fasthttp.HeaderIfModifiedSince, got.ims}, {HeaderReadYourWrites, got.ryw},
	} {
		if want := h.Peek(f.name); string(f.got) != string(want) {
			t.Errorf("%q: %s = %q, Peek says %q", raw, f.name, f.got, want)
		}
	}
}
