package cache

import (
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
