package cache

import (
	"testing"
	"time"
)

// TestParseHTTPDate: RFC 9110 section 5.6.7's three forms, exactly as the
// grammar spells them; anything else is invalid, which for Expires means
// "already expired" (RFC 9111 section 5.3).
func TestParseHTTPDate(t *testing.T) {
	want := time.Date(1994, 11, 6, 8, 49, 37, 0, time.UTC).Unix()
	cases := []struct {
		in string
		ok bool
	}{
		{"Sun, 06 Nov 1994 08:49:37 GMT", true},
		{"Sunday, 06-Nov-94 08:49:37 GMT", true},
		{"Sun Nov  6 08:49:37 1994", true},
		{"Sun Nov 06 08:49:37 1994", true},
		{"Mon, 06 Nov 1994 08:49:37 GMT", true}, // the weekday is not checked against the date
		{"Sun, 06  Nov 1994 08:49:37 GMT", false},
		{"Sun,  06 Nov 1994 08:49:37 GMT", false},
		{"Sun, 06 Nov 1994 8:49:37 GMT", false},
		{"Sun, 06 Nov 1994 08:49:37 UTC", false},
		{"Sun, 06 Nov 94 08:49:37 GMT", false},
		{"Sun 06 Nov 1994 08:49:37 GMT", false},
		{"Sun, 06-Nov-1994 08:49:37 GMT", false},
		{"Sun, 06 Nov 1994 08.49.37 GMT", false},
		{"SUN, 06 Nov 1994 08:49:37 GMT", false},
		{"Sun, 06 NOV 1994 08:49:37 GMT", false},
		{"Sun, 06 Nov 1994 08:49:37 gmt", false},
		{"Sun, 31 Nov 1994 08:49:37 GMT", false},
		{"Sun, 06 Nov 1994 24:00:00 GMT", false},
		{"Sun, 06 Nov 1994 08:49:37 GMT ", false},
		{"0", false},
		{"", false},
	}
	for _, c := range cases {
		got, ok := parseHTTPDate([]byte(c.in))
		if ok != c.ok || (ok && got != want) {
			t.Errorf("parseHTTPDate(%q) = %d, %v; want ok=%v (%d)", c.in, got, ok, c.ok, want)
		}
	}
}

func FuzzParseHTTPDate(f *testing.F) {
	for _, s := range []string{"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "Thu, 18 Aug 2050 2:01:18 GMT"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseHTTPDate([]byte(s))
		if !ok {
			return
		}
		// Every accepted IMF-fixdate renders back to itself, but for the
		// weekday (not checked) and a leap second (normalised).
		if len(s) == 29 && s[3] == ',' && s[23:25] != "60" {
			if r := time.Unix(got, 0).UTC().Format("02 Jan 2006 15:04:05 GMT"); r != s[5:] {
				t.Fatalf("%q parsed as %s", s, r)
			}
		}
	})
}

// TestParseTargetedDirectives: RFC 9213 section 2.1, the field is an RFC
// 8941 Dictionary; an invalid one, or a known directive of the wrong type,
// makes the whole field ignored.
func TestParseTargetedDirectives(t *testing.T) {
	cases := []struct {
		in   string
		ok   bool
		want func(d directives) bool
	}{
		{"max-age=60", true, func(d directives) bool { return d.maxAge == 60 }},
		{"max-age=60, s-maxage=10, public", true, func(d directives) bool { return d.maxAge == 60 && d.sMaxAge == 10 && d.public }},
		{"no-store", true, func(d directives) bool { return d.noStore }},
		{"no-store=?0, max-age=5", true, func(d directives) bool { return !d.noStore && d.maxAge == 5 }},
		{"foobar, max-age=3600", true, func(d directives) bool { return d.maxAge == 3600 }},
		{`foo="bar", baz=(1 2);a=1, max-age=7;x`, true, func(d directives) bool { return d.maxAge == 7 }},
		{`private="set-cookie"`, true, func(d directives) bool { return d.private }},
		{"max-age=10, max-age=20", true, func(d directives) bool { return d.maxAge == 20 }}, // RFC 8941: last wins
		{"max-age=99999999999", true, func(d directives) bool { return d.maxAge == maxDelta }},
		{"max-age=10000, &&&&&", false, nil},
		{`max-age="10000"`, false, nil},
		{"max-age=1.5", false, nil},
		{"max-age=-1", false, nil},
		{"max-age=tok", false, nil},
		{"max-age =100", false, nil},
		{"max-age= 100", false, nil},
		{"MaX-aGe=3600", false, nil},
		{"max-age=60,", false, nil},
		{"", false, nil},
		{"no-cache=?2", false, nil},
		{`foo="unterminated`, false, nil},
		{"max-age=1234567890123456", false, nil},
	}
	for _, c := range cases {
		var d directives
		d.reset()
		ok := parseTargetedDirectives([]byte(c.in), &d)
		if ok != c.ok || (ok && !c.want(d)) {
			t.Errorf("parseTargetedDirectives(%q) = %v %+v, want ok=%v", c.in, ok, d, c.ok)
		}
	}
}

func FuzzParseTargetedDirectives(f *testing.F) {
	for _, s := range []string{"max-age=60", `a=("x" y);q=1, b=:AQ==:, c=?1, d=-1.25`, "max-age=10000, &&&&&", `max-age="1"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var d directives
		d.reset()
		if !parseTargetedDirectives([]byte(s), &d) {
			return
		}
		for _, v := range []int64{d.maxAge, d.sMaxAge, d.swr, d.sie} {
			if v < -1 || v > maxDelta {
				t.Fatalf("out of range delta %d in %+v", v, d)
			}
		}
	})
}

// TestReadAge: RFC 9111 section 5.1; anything but one delta-seconds (or a
// list repeating one) is bad, and the answer is then treated as stale.
func TestReadAge(t *testing.T) {
	cases := []struct {
		in  string
		n   int64
		bad bool
	}{
		{"0", 0, false},
		{"3600", 3600, false},
		{"0, 0", 0, true},
		{"7200,7200", 0, true},
		{"99999999999", maxDelta, false},
		{"old, 0", 0, true},
		{"0, 7200", 0, true},
		{"7200, 0", 0, true},
		{"-7200", 0, true},
		{"7200.0", 0, true},
		{"abc", 0, true},
		{"", 0, true},
		{" , ", 0, true},
	}
	for _, c := range cases {
		n, bad := readAge([]byte(c.in))
		if n != c.n || bad != c.bad {
			t.Errorf("readAge(%q) = %d, %v; want %d, %v", c.in, n, bad, c.n, c.bad)
		}
	}
}

func FuzzReadAge(f *testing.F) {
	for _, s := range []string{"0", "old, 0", "7200,7200", "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, bad := readAge([]byte(s)); n < 0 || n > maxDelta || (bad && n != 0) {
			t.Fatalf("readAge(%q) = %d, %v", s, n, bad)
		}
	})
}
