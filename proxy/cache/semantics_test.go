package cache

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/internal/testenv"
)

// TestStoreRulesEndToEnd sends two identical requests through Serve and
// checks whether the second reached the origin, per RFC 9111 section 3 and
// this cache's privacy rules.
func TestStoreRulesEndToEnd(t *testing.T) {
	url := testenv.Redis(t)
	cases := []struct {
		name   string
		resp   []string
		req    []string
		stored bool
		detail string
		status int
	}{
		{"s3: public max-age", []string{"Cache-Control", "public, max-age=60"}, nil, true, "stored", 200},
		{"s5.2.2.5: no-store", []string{"Cache-Control", "no-store, max-age=60"}, nil, false, "detail=no-store", 200},
		{"s5.2.2.7: private", []string{"Cache-Control", "private, max-age=60"}, nil, false, "detail=private", 200},
		{"s7.3: Set-Cookie is never stored", []string{"Cache-Control", "public, max-age=60", "Set-Cookie", "sid=1"}, nil, false, "detail=set-cookie", 200},
		{"s3.5: Authorization without public", []string{"Cache-Control", "max-age=60"}, []string{"Authorization", "Bearer x"}, false, "detail=authorization", 200},
		{"s3.5: access cookie counts as Authorization", []string{"Cache-Control", "max-age=60"}, []string{"Cookie", "novashop_access=tok"}, false, "detail=authorization", 200},
		{"s3.5: Authorization with public", []string{"Cache-Control", "public, max-age=60"}, []string{"Authorization", "Bearer x"}, true, "stored", 200},
		{"s3.5: Authorization with s-maxage", []string{"Cache-Control", "s-maxage=60"}, []string{"Authorization", "Bearer x"}, true, "stored", 200},
		{"s4.1: Vary * is never stored", []string{"Cache-Control", "max-age=60", "Vary", "*"}, nil, false, "detail=vary-star", 200},
		{"s5.2.1.5: request no-store", []string{"Cache-Control", "max-age=60"}, []string{"Cache-Control", "no-store"}, false, "detail=request-no-store", 200},
		{"s3: 500 with explicit freshness is stored", []string{"Cache-Control", "max-age=60"}, nil, true, "stored", 500},
		{"s3: 299 with explicit freshness is stored", []string{"Cache-Control", "max-age=60"}, nil, true, "stored", 299},
		{"s3: 303 with explicit freshness is stored", []string{"Cache-Control", "max-age=60"}, nil, true, "stored", 303},
		{"s3: 400 with explicit freshness is stored", []string{"Cache-Control", "max-age=60"}, nil, true, "stored", 400},
		{"s3: 499 with Expires is stored", []string{"Expires", "Wed, 01 Jan 2031 00:00:00 GMT"}, nil, true, "stored", 499},
		{"s3: 503 with s-maxage is stored", []string{"Cache-Control", "s-maxage=60"}, nil, true, "stored", 503},
		{"s3: 599 with max-age is stored", []string{"Cache-Control", "max-age=60"}, nil, true, "stored", 599},
		{"s3: 500 without explicit freshness is not stored", []string{"Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT"}, nil, false, "detail=no-freshness", 500},
		{"s4.2.2: 201 gets no heuristic freshness", []string{"Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT"}, nil, false, "detail=no-freshness", 201},
		{"s4.2.2: 202 gets no heuristic freshness", []string{"Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT"}, nil, false, "detail=no-freshness", 202},
		{"s5.2.2.3: must-understand, status not understood", []string{"Cache-Control", "max-age=60, must-understand, no-store"}, nil, false, "detail=status", 299},
		{"s5.2.2.3: must-understand overrides no-store for an understood status", []string{"Cache-Control", "max-age=60, must-understand, no-store"}, nil, true, "stored", 200},
		{"s3: an interim 1xx is never stored", []string{"Cache-Control", "max-age=60"}, nil, false, "detail=status", 103},
		{"s4.1: Vary * over two field lines is never stored", []string{"Cache-Control", "max-age=60", "Vary", "Accept-Language", "Vary", ", *"}, nil, false, "detail=vary-star", 200},
		{"RFC 9213 s2.1: CDN-Cache-Control that is no Structured Field (unknown type) is ignored", []string{"CDN-Cache-Control", "max-age=10000, &&&&&", "Cache-Control", "no-store"}, nil, false, "detail=no-store", 200},
		{"RFC 9213 s2.1: CDN-Cache-Control with a wrong value type is ignored", []string{"CDN-Cache-Control", `max-age="10000"`, "Cache-Control", "no-store"}, nil, false, "detail=no-store", 200},
		{"RFC 9213 s2.1: CDN-Cache-Control over two lines is one dictionary", []string{"CDN-Cache-Control", "public", "CDN-Cache-Control", "max-age=60", "Cache-Control", "no-store"}, nil, true, "stored", 200},
		{"s7.3 safety rule: Set-Cookie is never stored, even with CDN-Cache-Control", []string{"CDN-Cache-Control", "public, max-age=60", "Set-Cookie", "sid=2"}, nil, false, "detail=set-cookie", 200},
		{"s4.2.2: heuristic freshness from Last-Modified", []string{"Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT"}, nil, true, "stored", 200},
		{"s4.2.2: no heuristics without Last-Modified", nil, nil, false, "detail=no-freshness", 200},
		{"RFC 9213 s2.1: CDN-Cache-Control beats Cache-Control no-store", []string{"Cache-Control", "no-store", "CDN-Cache-Control", "max-age=60"}, nil, true, "stored", 200},
		{"RFC 9213 s2.1: CDN-Cache-Control no-store beats Cache-Control", []string{"Cache-Control", "public, max-age=60", "CDN-Cache-Control", "no-store"}, nil, false, "detail=no-store", 200},
		{"edge's own field beats CDN-Cache-Control and Cache-Control", []string{"Cache-Control", "no-store", "CDN-Cache-Control", "no-store", "Novashop-Edge-Cache-Control", "max-age=60"}, nil, true, "stored", 200},
		{"edge's own no-store beats Cache-Control", []string{"Cache-Control", "public, max-age=60", "Novashop-Edge-Cache-Control", "no-store"}, nil, false, "detail=no-store", 200},
		{"s5.3: Expires in the future", []string{"Expires", "Wed, 01 Jan 2031 00:00:00 GMT", "Date", "Sun, 01 Mar 2026 12:00:00 GMT"}, nil, true, "stored", 200},
		{"s5.3: invalid Expires means expired", []string{"Expires", "0"}, nil, false, "detail=no-freshness", 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			c := newTestCache(t, url, randName(t), clk)
			o := newOrigin(static(tc.status, "body", tc.resp...))
			r1 := do(c, o, "GET", "/x", tc.req...)
			if !strings.Contains(cacheStatus(r1), tc.detail) {
				t.Fatalf("first Cache-Status = %q, want it to contain %q", cacheStatus(r1), tc.detail)
			}
			if len(r1.Header.Peek("Set-Cookie")) == 0 && strings.Contains(tc.name, "Set-Cookie") {
				t.Fatalf("the client lost its Set-Cookie")
			}
			if tc.stored {
				eventually(t, 2*time.Second, "a hit", func() bool { return isHit(do(c, o, "GET", "/x", tc.req...)) })
				if n := o.calls.Load(); n != 1 {
					t.Fatalf("origin saw %d requests, want 1", n)
				}
				return
			}
			for i := 0; i < 3; i++ {
				if r := do(c, o, "GET", "/x", tc.req...); isHit(r) {
					t.Fatalf("served from cache: %q", cacheStatus(r))
				}
			}
			if n := o.calls.Load(); n != 4 {
				t.Fatalf("origin saw %d requests, want 4", n)
			}
		})
	}
}

// TestEdgeTargetedLifetime: the origin's edge-only field sets this cache's
// lifetime (an hour where browsers and nginx get a minute), a 304 keeps it
// whether it repeats the field or not (RFC 9111 section 4.3.4: fields the
// 304 omits are kept), and it never reaches a client.
func TestEdgeTargetedLifetime(t *testing.T) {
	for _, repeat := range []bool{true, false} {
		t.Run(fmt.Sprintf("304 repeats the field=%v", repeat), func(t *testing.T) {
			clk := newClock()
			c := newTestCache(t, testenv.Redis(t), randName(t), clk)
			var revalidation atomic.Bool
			o := newOrigin(func(req *fasthttp.Request, resp *fasthttp.Response) error {
				resp.Header.Set("Cache-Control", "public, max-age=0, s-maxage=60")
				resp.Header.Set("ETag", `"v1"`)
				if string(req.Header.Peek("If-None-Match")) == `"v1"` {
					revalidation.Store(true)
					if repeat {
						resp.Header.Set("Novashop-Edge-Cache-Control", "public, max-age=3600")
					}
					resp.SetStatusCode(fasthttp.StatusNotModified)
					return nil
				}
				resp.Header.Set("Novashop-Edge-Cache-Control", "public, max-age=3600")
				resp.SetBodyString("page")
				return nil
			})
			var answers []*fasthttp.Response
			get := func() *fasthttp.Response {
				r := do(c, o, "GET", "/p")
				answers = append(answers, r)
				return r
			}
			get()
			eventually(t, 2*time.Second, "a hit", func() bool { return isHit(get()) })
			clk.advance(30 * time.Minute)
			if r := get(); !isHit(r) || o.calls.Load() != 1 {
				t.Fatalf("after 30 min: Cache-Status %q, origin calls %d; want a hit on the hour-long edge lifetime", cacheStatus(r), o.calls.Load())
			}
			clk.advance(31 * time.Minute)
			if r := get(); string(r.Body()) != "page" || !revalidation.Load() {
				t.Fatalf("after 61 min: %q, Cache-Status %q, revalidated %v; want the stored page revalidated", r.Body(), cacheStatus(r), revalidation.Load())
			}
			calls := o.calls.Load()
			eventually(t, 2*time.Second, "a hit after the 304", func() bool { return isHit(get()) })
			clk.advance(30 * time.Minute)
			if r := get(); !isHit(r) || o.calls.Load() != calls {
				t.Fatalf("30 min after the 304: Cache-Status %q, origin calls %d (were %d); the refresh lost the edge lifetime", cacheStatus(r), o.calls.Load(), calls)
			}
			for _, r := range answers {
				if v := r.Header.Peek("Novashop-Edge-Cache-Control"); len(v) != 0 {
					t.Fatalf("edge-only field reached the client (%q): %q", cacheStatus(r), v)
				}
				if got := string(r.Header.Peek("Cache-Control")); got != "public, max-age=0, s-maxage=60" {
					t.Fatalf("Cache-Control for downstream caches changed to %q", got)
				}
			}
		})
	}
}

func TestHeadSharesGetAndHasNoBody(t *testing.T) {
	c := newTestCache(t, testenv.Redis(t), randName(t), newClock())
	o := newOrigin(static(200, "0123456789", "Cache-Control", "max-age=60", "X-Request-ID", "req-1", "Connection", "X-Hop", "X-Hop", "1"))
	r := do(c, o, "HEAD", "/h")
	if got := o.lastReq(); string(got.Header.Method()) != "GET" {
		t.Fatalf("HEAD miss filled with %s, want GET", got.Header.Method())
	}
	if wire := r.String(); !strings.Contains(wire, "Content-Length: 10\r\n") || strings.HasSuffix(wire, "0123456789") {
		t.Fatalf("HEAD answer on the wire:\n%s", wire)
	}
	eventually(t, 2*time.Second, "GET hit", func() bool { return isHit(do(c, o, "GET", "/h")) })
	hit := do(c, o, "GET", "/h")
	if string(hit.Body()) != "0123456789" {
		t.Fatal("GET hit lost the body")
	}
	// RFC 9111 s3.1: fields named by Connection are not stored; nor is
	// another request's id.
	if len(hit.Header.Peek("X-Hop")) != 0 || len(hit.Header.Peek("X-Request-ID")) != 0 {
		t.Fatalf("stored per-hop or per-request fields: %q", hit.Header.String())
	}
}

func TestVarySelectsVariants(t *testing.T) {
	c := newTestCache(t, testenv.Redis(t), randName(t), newClock())
	o := newOrigin(func(req *fasthttp.Request, resp *fasthttp.Response) error {
		resp.Header.Set("Cache-Control", "max-age=60")
		resp.Header.Set("Vary", "Accept-Language")
		resp.SetBodyString("lang=" + string(req.Header.Peek("Accept-Language")))
		return nil
	})
	for _, lang := range []string{"en", "fr"} {
		r := do(c, o, "GET", "/v", "Accept-Language", lang)
		if want := "lang=" + lang; string(r.Body()) != want {
			t.Fatalf("miss body %q, want %q", r.Body(), want)
		}
	}
	for _, lang := range []string{"en", "fr"} {
		var r *fasthttp.Response
		eventually(t, 2*time.Second, "variant hit", func() bool { r = do(c, o, "GET", "/v", "Accept-Language", lang); return isHit(r) })
		if want := "lang=" + lang; string(r.Body()) != want {
			t.Fatalf("hit body %q, want %q (RFC 9111 s4.1: Vary-named headers select the variant)", r.Body(), want)
		}
	}
	r := do(c, o, "GET", "/v", "Accept-Language", "de")
	if !strings.Contains(cacheStatus(r), "fwd=vary-miss") {
		t.Fatalf("new variant Cache-Status %q, want fwd=vary-miss", cacheStatus(r))
	}
}

func TestConditionalFromCache(t *testing.T) {
	c := newTestCache(t, testenv.Redis(t), randName(t), newClock())
	o := newOrigin(static(200, "payload", "Cache-Control", "max-age=60", "ETag", `"e1"`, "Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT"))
	first := do(c, o, "GET", "/c", "If-None-Match", `"e1"`)
	if first.StatusCode() != 304 {
		t.Fatalf("RFC 9111 s4.3.2: a miss with a matching If-None-Match gets %d, want 304", first.StatusCode())
	}
	if got := o.lastReq(); len(got.Header.Peek("If-None-Match")) != 0 {
		t.Fatal("the client's If-None-Match reached the origin on a fill")
	}
	eventually(t, 2*time.Second, "hit", func() bool { return isHit(do(c, o, "GET", "/c")) })
	cases := []struct {
		fields []string
		status int
	}{
		{[]string{"If-None-Match", `"e1"`}, 304},
		{[]string{"If-None-Match", `"other"`}, 200},
		{[]string{"If-Modified-Since", "Tue, 02 Jan 2024 00:00:00 GMT"}, 304},
		{[]string{"If-Modified-Since", "Sun, 31 Dec 2023 00:00:00 GMT"}, 200},
	}
	for _, cs := range cases {
		r := do(c, o, "GET", "/c", cs.fields...)
		if r.StatusCode() != cs.status || !isHit(r) {
			t.Errorf("%v: status %d (%q), want %d from cache", cs.fields, r.StatusCode(), cacheStatus(r), cs.status)
		}
		if cs.status == 304 && len(r.Body()) != 0 {
			t.Errorf("304 with a body")
		}
	}
}

// TestRevalidationUpdatesStoredFields: a stale entry is revalidated with
// its validators and a 304 refreshes it (RFC 9111 sections 4.3.1, 4.3.3,
// 4.3.4 and 3.2).
func TestRevalidationUpdatesStoredFields(t *testing.T) {
	clk := newClock()
	c := newTestCache(t, testenv.Redis(t), randName(t), clk)
	var mode atomic.Int32
	o := newOrigin(func(req *fasthttp.Request, resp *fasthttp.Response) error {
		if mode.Load() == 0 {
			return static(200, "v1", "Cache-Control", "max-age=10", "ETag", `"e1"`, "X-Version", "1", "Content-Type", "text/plain")(req, resp)
		}
		if string(req.Header.Peek("If-None-Match")) != `"e1"` {
			return errors.New("revalidation without the stored ETag")
		}
		resp.SetStatusCode(304)
		resp.Header.Set("Cache-Control", "max-age=100")
		resp.Header.Set("ETag", `"e1"`)
		resp.Header.Set("X-Version", "2")
		return nil
	})
	do(c, o, "GET", "/r")
	eventually(t, 2*time.Second, "hit", func() bool { return isHit(do(c, o, "GET", "/r")) })
	clk.advance(20 * time.Second)
	mode.Store(1)
	r := do(c, o, "GET", "/r")
	if r.StatusCode() != 200 || string(r.Body()) != "v1" || string(r.Header.Peek("X-Version")) != "2" {
		t.Fatalf("after 304: %d %q X-Version=%q (%q)", r.StatusCode(), r.Body(), r.Header.Peek("X-Version"), cacheStatus(r))
	}
	if !strings.Contains(cacheStatus(r), "fwd=stale; fwd-status=304; stored") {
		t.Fatalf("Cache-Status %q", cacheStatus(r))
	}
	if string(r.Header.ContentType()) != "text/plain" {
		t.Fatalf("Content-Type changed by a 304: %q", r.Header.ContentType())
	}
	calls := o.calls.Load()
	clk.advance(50 * time.Second) // fresh again thanks to the 304's max-age=100
	eventually(t, 2*time.Second, "hit after 304", func() bool { return isHit(do(c, o, "GET", "/r")) })
	if o.calls.Load() != calls {
		t.Fatalf("the refreshed entry was not used")
	}
}

func TestStaleWhileRevalidate(t *testing.T) {
	clk := newClock()
	c := newTestCache(t, testenv.Redis(t), randName(t), clk)
	var version atomic.Int32
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // runs before c.Close
	o := newOrigin(func(req *fasthttp.Request, resp *fasthttp.Response) error {
		v := version.Add(1)
		if v > 1 {
			<-release
		}
		return static(200, "v"+string(rune('0'+v)), "Cache-Control", "max-age=10, stale-while-revalidate=60")(req, resp)
	})
	do(c, o, "GET", "/s")
	eventually(t, 2*time.Second, "hit", func() bool { return isHit(do(c, o, "GET", "/s")) })
	clk.advance(30 * time.Second)
	for i := 0; i < 5; i++ {
		r := do(c, o, "GET", "/s")
		if string(r.Body()) != "v1" || !strings.Contains(cacheStatus(r), "stale-while-revalidate") {
			t.Fatalf("RFC 5861 s3: want stale v1 at once, got %q %q", r.Body(), cacheStatus(r))
		}
	}
	eventually(t, 2*time.Second, "the background refresh", func() bool { return o.calls.Load() == 2 })
	do(c, o, "GET", "/s")
	if n := o.calls.Load(); n != 2 {
		t.Fatalf("origin saw %d requests, want 2 (one background refresh per key)", n)
	}
	once.Do(func() { close(release) })
	eventually(t, 3*time.Second, "refreshed entry", func() bool {
		r := do(c, o, "GET", "/s")
		return string(r.Body()) == "v2" && isHit(r)
	})
}

func TestStaleIfError(t *testing.T) {
	clk := newClock()
	c := newTestCache(t, testenv.Redis(t), randName(t), clk)
	var fail atomic.Int32
	o := newOrigin(func(req *fasthttp.Request, resp *fasthttp.Response) error {
		switch fail.Load() {
		case 1:
			return errors.New("every origin is down")
		case 2:
			resp.SetStatusCode(503)
			return nil
		}
		return static(200, "good", "Cache-Control", "max-age=10, stale-if-error=60")(req, resp)
	})
	do(c, o, "GET", "/e")
	eventually(t, 2*time.Second, "hit", func() bool { return isHit(do(c, o, "GET", "/e")) })
	clk.advance(30 * time.Second)
	for mode, fs := range map[int32]string{1: "fwd-status=502", 2: "fwd-status=503"} {
		fail.Store(mode)
		r := do(c, o, "GET", "/e")
		if r.StatusCode() != 200 || string(r.Body()) != "good" || !strings.Contains(cacheStatus(r), fs+"; detail=stale-if-error") {
			t.Fatalf("RFC 5861 s4 mode %d: %d %q %q", mode, r.StatusCode(), r.Body(), cacheStatus(r))
		}
	}
	clk.advance(60 * time.Second)
	fail.Store(1)
	r := do(c, o, "GET", "/e")
	if r.StatusCode() != 502 || !strings.Contains(string(r.Body()), `"error"`) {
		t.Fatalf("past stale-if-error: %d %q", r.StatusCode(), r.Body())
	}
}

func TestRangeFromStoredResponse(t *testing.T) {
	c := newTestCache(t, testenv.Redis(t), randName(t), newClock())
	o := newOrigin(static(200, "0123456789", "Cache-Control", "max-age=60", "ETag", `"r"`))
	r := do(c, o, "GET", "/range", "Range", "bytes=2-4")
	if got := o.lastReq(); len(got.Header.Peek("Range")) != 0 {
		t.Fatal("Range reached the origin on a fill")
	}
	if r.StatusCode() != 206 || string(r.Body()) != "234" || string(r.Header.Peek("Content-Range")) != "bytes 2-4/10" {
		t.Fatalf("miss range: %d %q %q", r.StatusCode(), r.Body(), r.Header.Peek("Content-Range"))
	}
	eventually(t, 2*time.Second, "hit", func() bool { return isHit(do(c, o, "GET", "/range")) })
	cases := []struct {
		fields []string
		status int
		body   string
		cr     string
	}{
		{[]string{"Range", "bytes=-3"}, 206, "789", "bytes 7-9/10"},
		{[]string{"Range", "bytes=20-"}, 416, "", "bytes */10"},
		{[]string{"Range", "bytes=0-1,3-4"}, 200, "0123456789", ""},
		{[]string{"Range", "bytes=0-1", "If-Range", `"r"`}, 206, "01", "bytes 0-1/10"},
		{[]string{"Range", "bytes=0-1", "If-Range", `"old"`}, 200, "0123456789", ""},
	}
	for _, cs := range cases {
		r := do(c, o, "GET", "/range", cs.fields...)
		if r.StatusCode() != cs.status || string(r.Body()) != cs.body || string(r.Header.Peek("Content-Range")) != cs.cr {
			t.Errorf("RFC 9110 s14 %v: %d %q %q", cs.fields, r.StatusCode(), r.Body(), r.Header.Peek("Content-Range"))
		}
	}
}

func TestRequestDirectives(t *testing.T) {
	c := newTestCache(t, testenv.Redis(t), randName(t), newClock())
	o := newOrigin(static(200, "x", "Cache-Control", "max-age=60"))
	do(c, o, "GET", "/d")
	eventually(t, 2*time.Second, "hit", func() bool { return isHit(do(c, o, "GET", "/d")) })
	r := do(c, o, "GET", "/d", "Cache-Control", "no-cache")
	if !strings.Contains(cacheStatus(r), "fwd=request") {
		t.Fatalf("RFC 9111 s5.2.1.4: no-cache request Cache-Status %q", cacheStatus(r))
	}
	r = do(c, o, "GET", "/other", "Cache-Control", "only-if-cached")
	if r.StatusCode() != 504 {
		t.Fatalf("RFC 9111 s5.2.1.7: only-if-cached miss = %d, want 504", r.StatusCode())
	}
}

func TestUnsafeMethodInvalidates(t *testing.T) {
	c := newTestCache(t, testenv.Redis(t), randName(t), newClock())
	tag := "t-" + randName(t)
	get := newOrigin(static(200, "list", "Cache-Control", "max-age=60", "Cache-Tag", tag))
	do(c, get, "GET", "/items/")
	do(c, get, "GET", "/items/7/")
	eventually(t, 2*time.Second, "hits", func() bool {
		return isHit(do(c, get, "GET", "/items/")) && isHit(do(c, get, "GET", "/items/7/"))
	})
	post := newOrigin(static(201, "created", "Location", "/items/7/", "Cache-Invalidate", tag))
	r := do(c, post, "POST", "/items/")
	if cacheStatus(r) != "novashop-edge; fwd=method" || len(r.Header.Peek("Cache-Invalidate")) != 0 {
		t.Fatalf("POST answer: %q, Cache-Invalidate %q", cacheStatus(r), r.Header.Peek("Cache-Invalidate"))
	}
	// RFC 9111 s4.4: the target URI and Location are invalidated, and the
	// bumped tag stops every entry that depends on it at once.
	for _, u := range []string{"/items/", "/items/7/"} {
		if r := do(c, get, "GET", u); isHit(r) {
			t.Fatalf("%s still a hit after the write: %q", u, cacheStatus(r))
		}
	}
	failed := newOrigin(static(409, "conflict", "Cache-Invalidate", "unrelated"))
	do(c, get, "GET", "/items/")
	eventually(t, 2*time.Second, "hit", func() bool { return isHit(do(c, get, "GET", "/items/")) })
	do(c, failed, "POST", "/items/")
	if !isHit(do(c, get, "GET", "/items/")) {
		t.Fatal("s4.4: a failed write (409) must not invalidate")
	}
}

// TestSetCookieLinesSurvivePassThrough: an answer that is not stored keeps
// every Set-Cookie line intact for its one client.
func TestSetCookieLinesSurvivePassThrough(t *testing.T) {
	c := newTestCache(t, testenv.Redis(t), randName(t), newClock())
	o := newOrigin(static(200, "x", "Cache-Control", "public, max-age=60", "Set-Cookie", "a=1; Path=/", "Set-Cookie", "b=2; Path=/"))
	r := do(c, o, "GET", "/login/")
	var got []string
	for _, v := range r.Header.Cookies() {
		got = append(got, string(v))
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], "a=1") || !strings.HasPrefix(got[1], "b=2") {
		t.Fatalf("Set-Cookie lines = %q", got)
	}
}

// TestFetchErrorAnswerIsKept: when no origin answered, the edge's own error
// answer (which fetch leaves in resp) reaches the client, with Cache-Status.
func TestFetchErrorAnswerIsKept(t *testing.T) {
	c := newTestCache(t, testenv.Redis(t), randName(t), newClock())
	o := newOrigin(func(_ *fasthttp.Request, resp *fasthttp.Response) error {
		resp.SetStatusCode(503)
		resp.SetBodyString(`{"error":"no upstream available"}`)
		return errors.New("no upstream")
	})
	for _, m := range []string{"GET", "POST"} {
		r := do(c, o, m, "/down")
		if r.StatusCode() != 503 || string(r.Body()) != `{"error":"no upstream available"}` || !strings.Contains(cacheStatus(r), "origin-unreachable") {
			t.Fatalf("%s: %d %q %q", m, r.StatusCode(), r.Body(), cacheStatus(r))
		}
	}
	bare := newOrigin(func(*fasthttp.Request, *fasthttp.Response) error { return errors.New("refused") })
	if r := do(c, bare, "GET", "/down2"); r.StatusCode() != 502 || !strings.Contains(string(r.Body()), `"error"`) {
		t.Fatalf("bare error: %d %q", r.StatusCode(), r.Body())
	}
}

// TestRevalidationFieldUpdates: which stored fields a 304 replaces (RFC 9111
// section 3.2). Content-Type is updated when the 304 carries one (the
// http-cache-tests suite's 304-etag-update-response-Content-Type) and kept
// when it does not (fasthttp reports a default then); the fields that
// describe the stored bytes (Content-Encoding, Content-Range, Content-MD5,
// Digest) are never replaced, since the body stays.
func TestRevalidationFieldUpdates(t *testing.T) {
	cases := []struct {
		name, field, stored, in304, want string
	}{
		{"Content-Type from the 304", "Content-Type", "text/plain", "text/plain;charset=utf-8", "text/plain;charset=utf-8"},
		{"Content-Type kept when the 304 has none", "Content-Type", "text/csv", "", "text/csv"},
		{"Content-MD5 describes the stored body", "Content-MD5", "rL0Y20zC+Fzt72VPzMSk2A==", "N7UdGUp1E+RbVvZSTy1R8g==", "rL0Y20zC+Fzt72VPzMSk2A=="},
		{"Digest describes the stored body", "Digest", "sha-256=AAAA", "sha-256=BBBB", "sha-256=AAAA"},
		{"Content-Encoding describes the stored body", "Content-Encoding", "gzip", "br", "gzip"},
		{"other fields are replaced", "X-Version", "1", "2", "2"},
	}
	url := testenv.Redis(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			c := newTestCache(t, url, randName(t), clk)
			var mode atomic.Int32
			o := newOrigin(func(req *fasthttp.Request, resp *fasthttp.Response) error {
				if mode.Load() == 0 {
					return static(200, "v1", "Cache-Control", "max-age=10", "ETag", `"e1"`, tc.field, tc.stored)(req, resp)
				}
				resp.SetStatusCode(304)
				resp.Header.Set("ETag", `"e1"`)
				resp.Header.Set("Cache-Control", "max-age=100")
				if tc.in304 != "" {
					resp.Header.Set(tc.field, tc.in304)
				}
				return nil
			})
			do(c, o, "GET", "/r")
			eventually(t, 2*time.Second, "hit", func() bool { return isHit(do(c, o, "GET", "/r")) })
			clk.advance(20 * time.Second)
			mode.Store(1)
			r := do(c, o, "GET", "/r")
			if !strings.Contains(cacheStatus(r), "fwd-status=304") {
				t.Fatalf("not revalidated: %q", cacheStatus(r))
			}
			if got := string(r.Header.Peek(tc.field)); got != tc.want {
				t.Errorf("after the 304 %s = %q, want %q", tc.field, got, tc.want)
			}
			eventually(t, 2*time.Second, "hit after 304", func() bool { return isHit(do(c, o, "GET", "/r")) })
			if got := string(do(c, o, "GET", "/r").Header.Peek(tc.field)); got != tc.want {
				t.Errorf("stored after the 304 %s = %q, want %q", tc.field, got, tc.want)
			}
		})
	}
}

// TestRelayedPartialContentKeepsContentRange: an origin's own 206 (it
// answered a range the cache did not ask for) is relayed, never stored, with
// the origin's Content-Range; the cache cuts ranges only from a stored 200
// (the suite's partial-store-partial-complete saw "bytes 0-0/5" for the
// origin's "bytes 0-4/10").
func TestRelayedPartialContentKeepsContentRange(t *testing.T) {
	c := newTestCache(t, testenv.Redis(t), randName(t), newClock())
	o := newOrigin(static(206, "01234", "Cache-Control", "max-age=3600", "Content-Range", "bytes 0-4/10"))
	for _, rng := range []string{"bytes=-5", "bytes=0-1", ""} {
		var r *fasthttp.Response
		if rng == "" {
			r = do(c, o, "GET", "/p")
		} else {
			r = do(c, o, "GET", "/p", "Range", rng)
		}
		if r.StatusCode() != 206 || string(r.Body()) != "01234" || string(r.Header.Peek("Content-Range")) != "bytes 0-4/10" {
			t.Errorf("Range %q: %d %q Content-Range %q, want the origin's 206 as it came", rng, r.StatusCode(), r.Body(), r.Header.Peek("Content-Range"))
		}
		if n := strings.Count(string(r.Header.Header()), "Content-Range"); n != 1 {
			t.Errorf("Range %q: %d Content-Range lines", rng, n)
		}
	}
}
