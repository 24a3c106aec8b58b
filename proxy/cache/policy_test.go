package cache

import (
	"testing"
	"time"
)

func dirs(v string) directives {
	var d directives
	d.reset()
	parseDirectives([]byte(v), &d)
	return d
}

func TestParseDirectives(t *testing.T) {
	cases := []struct {
		in   string
		want func(d directives) bool
	}{
		{"max-age=60", func(d directives) bool { return d.maxAge == 60 && d.sMaxAge == -1 }},
		{"Public, S-MAXAGE=30", func(d directives) bool { return d.public && d.sMaxAge == 30 }},
		{`max-age="60"`, func(d directives) bool { return d.maxAge == 60 }},
		// RFC 9111 section 4.2.1: first occurrence wins.
		{"max-age=10, max-age=99", func(d directives) bool { return d.maxAge == 10 }},
		// Section 4.2.1: an invalid value means stale.
		{"max-age=abc", func(d directives) bool { return d.maxAge == 0 }},
		{"max-age", func(d directives) bool { return d.maxAge == 0 }},
		// Section 1.2.2: overflow becomes 2^31.
		{"max-age=99999999999999999999", func(d directives) bool { return d.maxAge == maxDelta }},
		{`no-cache="Set-Cookie", private="x"`, func(d directives) bool { return d.noCache && d.private }},
		{"no-store,must-revalidate,proxy-revalidate", func(d directives) bool { return d.noStore && d.mustRevalidate && d.proxyRevalidate }},
		// RFC 5861 sections 3 and 4.
		{"max-age=1, stale-while-revalidate=30, stale-if-error=600", func(d directives) bool { return d.swr == 30 && d.sie == 600 }},
		{"max-stale", func(d directives) bool { return d.maxStaleAny }},
		{"max-stale=5, min-fresh=3, only-if-cached", func(d directives) bool { return d.maxStale == 5 && d.minFresh == 3 && d.onlyIfCached }},
		{"unknown-ext=\"a,b\", max-age=5", func(d directives) bool { return d.maxAge == 5 }},
		{"", func(d directives) bool { return !d.present && d.maxAge == -1 }},
		{" , ,", func(d directives) bool { return !d.present }},
	}
	for _, c := range cases {
		if d := dirs(c.in); !c.want(d) {
			t.Errorf("parseDirectives(%q) = %+v", c.in, d)
		}
	}
}

func FuzzParseDirectives(f *testing.F) {
	for _, s := range []string{"max-age=60", `no-cache="a, b", public`, "s-maxage=\"", "=,=,", "max-age=-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := dirs(s)
		for _, v := range []int64{d.maxAge, d.sMaxAge, d.swr, d.sie, d.maxStale, d.minFresh} {
			if v < -1 || v > maxDelta {
				t.Fatalf("out of range delta %d in %+v", v, d)
			}
		}
	})
}

func ri(status int, cc string) *respInfo {
	r := &respInfo{status: status, cc: dirs(cc)}
	return r
}

func TestStorable(t *testing.T) {
	withExpires := ri(200, "")
	withExpires.status = 302
	withExpires.expires = 100
	cookie := ri(200, "public, max-age=60")
	cookie.setCookie = true
	cases := []struct {
		name     string
		ri       *respInfo
		personal bool
		reqNS    bool
		want     string
	}{
		{"RFC 9111 s3: max-age 200", ri(200, "max-age=60"), false, false, ""},
		{"s3: heuristically cacheable status without directives", ri(404, ""), false, false, ""},
		{"s3: 302 needs explicit freshness", ri(302, ""), false, false, reasonNoFresh},
		{"s3: 302 with Expires", withExpires, false, false, ""},
		{"s3: status not understood (206 ranges are cut by the cache)", ri(206, "max-age=60"), false, false, reasonStatus},
		{"s3: 500 with explicit freshness", ri(500, "max-age=60"), false, false, ""},
		{"s3: 599 with explicit freshness", ri(599, "s-maxage=60"), false, false, ""},
		{"s3: 500 without explicit freshness", ri(500, ""), false, false, reasonNoFresh},
		{"s3: interim 1xx is never final", ri(103, "max-age=60"), false, false, reasonStatus},
		{"s3: 304 only updates", ri(304, "max-age=60"), false, false, reasonStatus},
		{"s5.2.2.3: must-understand, status not understood", ri(299, "max-age=60, must-understand, no-store"), false, false, reasonStatus},
		{"s5.2.2.3: must-understand, understood status ignores no-store", ri(200, "max-age=60, must-understand, no-store"), false, false, ""},
		{"s5.2.2.3: must-understand does not override private", ri(200, "max-age=60, must-understand, private"), false, false, reasonPrivate},
		{"s5.2.2.5 no-store", ri(200, "no-store, max-age=60"), false, false, reasonNoStore},
		{"s5.2.1.5 request no-store", ri(200, "max-age=60"), false, true, reasonReqNoStore},
		{"s5.2.2.7 private in a shared cache", ri(200, "private, max-age=60"), false, false, reasonPrivate},
		{"s3.5 Authorization without public/s-maxage", ri(200, "max-age=60"), true, false, reasonAuth},
		{"s3.5 Authorization with public", ri(200, "public, max-age=60"), true, false, ""},
		{"s3.5 Authorization with s-maxage", ri(200, "s-maxage=60"), true, false, ""},
		{"s3.5 must-revalidate alone is not enough here", ri(200, "must-revalidate, max-age=60"), true, false, reasonAuth},
		{"s7.3 Set-Cookie", cookie, false, false, reasonSetCookie},
		{"s5.2.2.4 no-cache is storable (revalidate each time)", ri(200, "no-cache"), false, false, ""},
	}
	for _, c := range cases {
		if got := storable(c.ri, c.personal, c.reqNS); got != c.want {
			t.Errorf("%s: storable = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestFreshnessLifetime(t *testing.T) {
	const now = 10_000_000
	mk := func(status int, cc string, f func(*respInfo)) *respInfo {
		r := ri(status, cc)
		if f != nil {
			f(r)
		}
		return r
	}
	cases := []struct {
		name      string
		ri        *respInfo
		want      time.Duration
		heuristic bool
	}{
		{"RFC 9111 s4.2.1: s-maxage beats max-age", mk(200, "max-age=10, s-maxage=20", nil), 20 * time.Second, false},
		{"s4.2.1: max-age beats Expires", mk(200, "max-age=10", func(r *respInfo) { r.expires, r.date = now+100, now }), 10 * time.Second, false},
		{"s4.2.1: Expires minus Date", mk(200, "", func(r *respInfo) { r.expires, r.date = now+100, now-50 }), 150 * time.Second, false},
		{"s4.2.1: Expires without Date uses response time", mk(200, "", func(r *respInfo) { r.expires = now + 30 }), 30 * time.Second, false},
		{"s5.3: invalid Expires is already expired", mk(200, "", func(r *respInfo) { r.expiresBad = true }), 0, false},
		{"s5.3: Expires in the past", mk(200, "", func(r *respInfo) { r.expires, r.date = now-10, now }), 0, false},
		{"s4.2.2: 10% of Date minus Last-Modified", mk(200, "", func(r *respInfo) { r.date, r.lastModified = now, now-1000 }), 100 * time.Second, true},
		{"s4.2.2: capped by HeuristicMax", mk(200, "", func(r *respInfo) { r.date, r.lastModified = now, now-1_000_000 }), time.Hour, true},
		{"s4.2.2: not for a status that is not heuristically cacheable", mk(302, "", func(r *respInfo) { r.date, r.lastModified = now, now-1000 }), 0, false},
		{"s4.2.2: public allows no heuristics for a status that is not heuristically cacheable (deliberate)", mk(302, "public", func(r *respInfo) { r.date, r.lastModified = now, now-1000 }), 0, false},
		{"s4.2.2: never for 201", mk(201, "public", func(r *respInfo) { r.date, r.lastModified = now, now-1000 }), 0, false},
		{"RFC 9213 s2.1: CDN-Cache-Control ignores Expires", mk(200, "", func(r *respInfo) { r.hasCDN, r.expires, r.date = true, now+100, now }), 0, false},
	}
	for _, c := range cases {
		got, h := freshnessLifetime(c.ri, now, time.Hour)
		if got != c.want || h != c.heuristic {
			t.Errorf("%s: lifetime %v heuristic %v, want %v %v", c.name, got, h, c.want, c.heuristic)
		}
	}
}

func TestCurrentAge(t *testing.T) {
	s := int64(time.Second)
	cases := []struct {
		name                             string
		ageValue, date, reqT, respT, now int64
		want                             time.Duration
	}{
		{"RFC 9111 s4.2.3: resident time only", 0, 100, 100 * s, 100 * s, 130 * s, 30 * time.Second},
		{"s4.2.3: Age header plus response delay", 10, 0, 100 * s, 102 * s, 102 * s, 12 * time.Second},
		{"s4.2.3: apparent age from Date", 0, 90, 100 * s, 100 * s, 100 * s, 10 * time.Second},
		{"s4.2.3: max of apparent and corrected", 3, 90, 100 * s, 100 * s, 105 * s, 15 * time.Second},
		{"clock going backwards never gives a negative age", 0, 0, 100 * s, 100 * s, 90 * s, 0},
	}
	for _, c := range cases {
		if got := currentAge(c.ageValue, c.date, c.reqT, c.respT, c.now); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestJudge(t *testing.T) {
	e := func(lifetime, swr time.Duration, opts, flags byte) *entry {
		return &entry{lifetime: lifetime, swr: swr, opts: opts, flags: flags}
	}
	cases := []struct {
		name string
		e    *entry
		age  time.Duration
		req  string
		want verdict
	}{
		{"RFC 9111 s4.2: fresh", e(60*time.Second, 0, 0, 0), 10 * time.Second, "", useFresh},
		{"s4.2: stale without permission revalidates", e(60*time.Second, 0, 0, 0), 61 * time.Second, "", revalidateStale},
		{"s5.2.1.4: request no-cache", e(60*time.Second, 0, 0, 0), 1 * time.Second, "no-cache", revalidateForRequest},
		{"s5.2.1.1: request max-age exceeded", e(60*time.Second, 0, 0, 0), 10 * time.Second, "max-age=5", revalidateForRequest},
		{"s5.2.1.1: request max-age=0", e(60*time.Second, 0, 0, 0), 1 * time.Second, "max-age=0", revalidateForRequest},
		{"s5.2.1.3: min-fresh", e(60*time.Second, 0, 0, 0), 50 * time.Second, "min-fresh=20", revalidateForRequest},
		{"s5.2.1.2: max-stale", e(60*time.Second, 0, 0, 0), 65 * time.Second, "max-stale=10", useMaxStale},
		{"s5.2.2.2: must-revalidate beats max-stale", e(60*time.Second, 0, optMustRevalidate, 0), 65 * time.Second, "max-stale", revalidateStale},
		{"s5.2.2.4: no-cache response always revalidates", e(60*time.Second, 0, optNoCache, 0), 0, "", revalidateStale},
		{"RFC 5861 s3: within stale-while-revalidate", e(60*time.Second, 30*time.Second, 0, 0), 80 * time.Second, "", useStaleRevalidate},
		{"RFC 5861 s3: past stale-while-revalidate", e(60*time.Second, 30*time.Second, 0, 0), 95 * time.Second, "", revalidateStale},
		{"s5.2.2.8: proxy-revalidate blocks swr", e(60*time.Second, 30*time.Second, optMustRevalidate, 0), 80 * time.Second, "", revalidateStale},
		{"soft purge serves stale while revalidating", e(60*time.Second, 0, 0, flagSoftPurged), 1 * time.Second, "", useStaleRevalidate},
		{"soft purge of a must-revalidate entry revalidates first", e(60*time.Second, 0, optMustRevalidate, flagSoftPurged), 1 * time.Second, "", revalidateStale},
	}
	for _, c := range cases {
		d := dirs(c.req)
		if got := judge(c.e, c.age, &d); got != c.want {
			t.Errorf("%s: verdict %d, want %d", c.name, got, c.want)
		}
	}
}

func TestServableOnError(t *testing.T) {
	c := &Cache{cfg: Config{StaleOnError: time.Minute}}
	withSIE := func(opts byte) *entry {
		return &entry{lifetime: 10 * time.Second, sie: 60 * time.Second, opts: opts | optHasSIE}
	}
	plain := func(opts byte) *entry { return &entry{lifetime: 10 * time.Second, opts: opts} }
	cases := []struct {
		name        string
		e           *entry
		age         time.Duration
		unreachable bool
		want        string
	}{
		{"RFC 5861 s4: within stale-if-error", withSIE(0), 30 * time.Second, false, "stale-if-error"},
		{"RFC 5861 s4: past stale-if-error", withSIE(0), 71 * time.Second, true, ""},
		{"RFC 9111 s4.2.4: must-revalidate forbids stale-if-error", withSIE(optMustRevalidate), 30 * time.Second, true, ""},
		{"s4.2.4: origin unreachable, within stale_on_error", plain(0), 69 * time.Second, true, "stale-on-error"},
		{"s4.2.4: origin unreachable, past stale_on_error", plain(0), 71 * time.Second, true, ""},
		{"s4.2.4: an origin's 5xx is an answer, no stale_on_error", plain(0), 20 * time.Second, false, ""},
		{"s5.2.2.2: must-revalidate forbids stale_on_error", plain(optMustRevalidate), 11 * time.Second, true, ""},
		{"s5.2.2.4: no-cache forbids stale_on_error", plain(optNoCache), 11 * time.Second, true, ""},
		{"s5.2.2.10: s-maxage forbids stale_on_error", plain(optSMaxAge), 11 * time.Second, true, ""},
		{"stale-if-error=0 wins over stale_on_error", &entry{lifetime: 10 * time.Second, opts: optHasSIE}, 11 * time.Second, true, ""},
	}
	for _, tc := range cases {
		if got := c.servableOnError(tc.e, tc.age, tc.unreachable); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	off := &Cache{cfg: Config{StaleOnError: -1}}
	if got := off.servableOnError(plain(0), 11*time.Second, true); got != "" {
		t.Errorf("stale_on_error off: %q", got)
	}
}
