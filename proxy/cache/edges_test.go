package cache

import (
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/internal/testenv"
)

// TestFreshnessEdgesEndToEnd stores a response, lets the clock run, and
// checks whether the next request is a fresh hit or finds the entry stale
// (fwd=stale). Stale cases carry an ETag, so the entry is kept for
// revalidation and the second request shows what the cache decided about
// it rather than a plain miss.
func TestFreshnessEdgesEndToEnd(t *testing.T) {
	url := testenv.Redis(t)
	etag := []string{"ETag", `"e"`}
	cases := []struct {
		name    string
		resp    []string
		advance time.Duration
		fresh   bool
	}{
		{"RFC 9111 s5.2: Cache-Control lines are one list, s-maxage on the second line wins", []string{"Cache-Control", "max-age=3600", "Cache-Control", "s-maxage=1"}, 2 * time.Second, false},
		{"s5.2: Cache-Control lines are one list, s-maxage on the first line wins", []string{"Cache-Control", "s-maxage=1", "Cache-Control", "max-age=3600"}, 2 * time.Second, false},
		{"s5.2: a longer s-maxage on the second line still wins", []string{"Cache-Control", "max-age=1", "Cache-Control", "s-maxage=3600"}, 2 * time.Second, true},
		{"s5.1: Age that is a list is invalid, so stale", []string{"Cache-Control", "max-age=3600", "Age", "old, 0"}, 0, false},
		{"s5.1: Age over two lines with different values is stale", []string{"Cache-Control", "max-age=3600", "Age", "0", "Age", "7200"}, 0, false},
		{"s5.1: negative Age is stale", []string{"Cache-Control", "max-age=3600", "Age", "-7200"}, 0, false},
		{"s5.1: non-numeric Age is stale", []string{"Cache-Control", "max-age=3600", "Age", "abc"}, 0, false},
		{"s5.1: fractional Age is stale", []string{"Cache-Control", "max-age=3600", "Age", "10.0"}, 0, false},
		{"s5.1: a list that repeats one Age is still a list, so stale", []string{"Cache-Control", "max-age=3600", "Age", "0, 0"}, 0, false},
		{"s5.1: two identical Age lines are a list, so stale", []string{"Cache-Control", "max-age=3600", "Age", "0", "Age", "0"}, 0, false},
		{"s5.1: a valid Age counts", []string{"Cache-Control", "max-age=3600", "Age", "3500"}, 200 * time.Second, false},
		{"s5.3: Expires with extra spaces is already expired", []string{"Expires", "Wed, 01  Jan  2031 00:00:00 GMT"}, 0, false},
		{"s5.3: Expires with a one-digit hour is already expired", []string{"Expires", "Wed, 01 Jan 2031 0:00:00 GMT"}, 0, false},
		{"s5.3: Expires on several lines is already expired", []string{"Expires", "Wed, 01 Jan 2031 00:00:00 GMT", "Expires", "Wed, 01 Jan 2031 00:00:00 GMT"}, 0, false},
		{"s5.3: Expires in UTC is not an HTTP-date", []string{"Expires", "Wed, 01 Jan 2031 00:00:00 UTC"}, 0, false},
		{"s5.3: a valid IMF-fixdate Expires is fresh", []string{"Expires", "Wed, 01 Jan 2031 00:00:00 GMT"}, time.Hour, true},
		{"RFC 9110 s5.6.7: an rfc850 Expires is accepted", []string{"Expires", "Wednesday, 01-Jan-31 00:00:00 GMT"}, time.Hour, true},
		{"RFC 9110 s5.6.7: an asctime Expires is accepted", []string{"Expires", "Wed Jan  1 00:00:00 2031"}, time.Hour, true},
		{"RFC 9213 s2.1: an invalid CDN-Cache-Control falls back to Cache-Control", []string{"Cache-Control", "max-age=1", "CDN-Cache-Control", "max-age =100"}, 2 * time.Second, false},
		{"RFC 9213 s2.1: a valid CDN-Cache-Control beats Cache-Control", []string{"Cache-Control", "max-age=1", "CDN-Cache-Control", "max-age=100"}, 2 * time.Second, true},
		{"s4.2: a stored 500 becomes stale like any other", []string{"Cache-Control", "max-age=1"}, 2 * time.Second, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			c := newTestCache(t, url, randName(t), clk)
			status := 200
			if strings.Contains(tc.name, "500") {
				status = 500
			}
			o := newOrigin(static(status, "body", append(append([]string(nil), tc.resp...), etag...)...))
			do(c, o, "GET", "/f")
			// The entry is visible once a request no longer misses the URI.
			var r *fasthttp.Response
			eventually(t, 2*time.Second, "the stored entry", func() bool {
				r = do(c, o, "GET", "/f")
				return !strings.Contains(cacheStatus(r), "uri-miss")
			})
			if tc.advance > 0 {
				clk.advance(tc.advance)
				r = do(c, o, "GET", "/f")
			}
			if tc.fresh && !isHit(r) {
				t.Fatalf("want a fresh hit, got Cache-Status %q", cacheStatus(r))
			}
			if !tc.fresh && !strings.Contains(cacheStatus(r), "fwd=stale") {
				t.Fatalf("want the stored answer found stale (fwd=stale), got Cache-Status %q", cacheStatus(r))
			}
		})
	}
}

// TestHitKeepsStoredDate: RFC 9110 section 6.6.1 and RFC 9111 section 4:
// a cache forwards the stored Date; the time the answer spent in the cache
// shows in Age. A response that came without Date gets the time it was
// received, recorded when stored.
func TestHitKeepsStoredDate(t *testing.T) {
	clk := newClock()
	c := newTestCache(t, testenv.Redis(t), randName(t), clk)
	const originDate = "Sun, 01 Mar 2026 11:59:50 GMT" // 10 s before the clock
	o := newOrigin(static(200, "d", "Cache-Control", "max-age=600", "Date", originDate, "Expires", "Sun, 01 Mar 2026 12:09:50 GMT"))
	do(c, o, "GET", "/date")
	eventually(t, 2*time.Second, "a hit", func() bool { return isHit(do(c, o, "GET", "/date")) })
	clk.advance(30 * time.Second)
	r := do(c, o, "GET", "/date")
	if !isHit(r) {
		t.Fatalf("not a hit: %q", cacheStatus(r))
	}
	if got := string(r.Header.Peek("Date")); got != originDate {
		t.Fatalf("hit Date = %q, want the stored %q", got, originDate)
	}
	if got := string(r.Header.Peek("Age")); got != "40" {
		t.Fatalf("hit Age = %q, want 40 (10 s old when received, 30 s in the cache)", got)
	}

	noDate := newOrigin(static(200, "n", "Cache-Control", "max-age=600"))
	do(c, noDate, "GET", "/nodate")
	eventually(t, 2*time.Second, "a hit", func() bool { return isHit(do(c, noDate, "GET", "/nodate")) })
	clk.advance(5 * time.Second)
	r = do(c, noDate, "GET", "/nodate")
	if got, want := string(r.Header.Peek("Date")), "Sun, 01 Mar 2026 12:00:30 GMT"; got != want {
		t.Fatalf("hit Date for a response without one = %q, want the receive time %q", got, want)
	}
	if got := string(r.Header.Peek("Age")); got != "5" {
		t.Fatalf("hit Age = %q, want 5", got)
	}
}

// realOrigin is an HTTP server on 127.0.0.1 that the test can stop, and a
// fetch function that reaches it through a fasthttp client, as the edge's
// balancer does: once the server is stopped, fetch fails with "connection
// refused".
type realOrigin struct {
	srv  *fasthttp.Server
	ln   net.Listener
	cli  *fasthttp.HostClient
	done chan struct{}
	// timeout bounds each fetch; default 1 s.
	timeout time.Duration
}

func startRealOrigin(t *testing.T, h fasthttp.RequestHandler) *realOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ro := &realOrigin{
		srv:  &fasthttp.Server{Handler: h, NoDefaultDate: true},
		ln:   ln,
		cli:  &fasthttp.HostClient{Addr: ln.Addr().String(), ReadTimeout: time.Second, WriteTimeout: time.Second, MaxIdleConnDuration: 10 * time.Millisecond},
		done: make(chan struct{}),
	}
	go func() { defer close(ro.done); _ = ro.srv.Serve(ln) }()
	t.Cleanup(ro.stop)
	return ro
}

func (ro *realOrigin) stop() {
	_ = ro.srv.Shutdown()
	<-ro.done
	ro.cli.CloseIdleConnections()
}

// TestStaleOnErrorResetAndTimeout: an origin that is up but resets the
// connection mid-answer, or does not answer within the fetch's timeout, is
// as unreachable as a stopped one.
func TestStaleOnErrorResetAndTimeout(t *testing.T) {
	url := testenv.Redis(t)
	for _, mode := range []string{"reset", "timeout"} {
		t.Run(mode, func(t *testing.T) {
			clk := newClock()
			clk.ns.Store(time.Now().UnixNano())
			c := newTestCache(t, url, randName(t), clk)
			var broken atomic.Bool
			ro := startRealOrigin(t, func(ctx *fasthttp.RequestCtx) {
				if broken.Load() {
					if mode == "reset" {
						_ = ctx.Conn().Close()
						return
					}
					time.Sleep(300 * time.Millisecond)
				}
				ctx.Response.Header.Set("Cache-Control", "max-age=1")
				ctx.SetBodyString("stored")
			})
			ro.timeout = 100 * time.Millisecond
			doFetch(c, ro.fetch, "/rt")
			eventually(t, 2*time.Second, "the stored entry", func() bool {
				return !strings.Contains(cacheStatus(doFetch(c, ro.fetch, "/rt")), "uri-miss")
			})
			broken.Store(true)
			clk.advance(2 * time.Second)
			r := doFetch(c, ro.fetch, "/rt")
			if r.StatusCode() != 200 || string(r.Body()) != "stored" || cacheStatus(r) != "novashop-edge; fwd=stale; fwd-status=502; detail=stale-on-error" {
				t.Fatalf("%s: %d %q %q", mode, r.StatusCode(), r.Body(), cacheStatus(r))
			}
		})
	}
}

// fetch forwards like the edge's own fetch: on failure it leaves the edge's
// JSON 502 in resp and returns the error.
func (ro *realOrigin) fetch(req *fasthttp.Request, resp *fasthttp.Response) error {
	timeout := ro.timeout
	if timeout == 0 {
		timeout = time.Second
	}
	err := ro.cli.DoTimeout(req, resp, timeout)
	if err != nil {
		resp.Reset()
		resp.SetStatusCode(fasthttp.StatusBadGateway)
		resp.SetBodyString(`{"error":"bad gateway"}`)
	}
	return err
}

func doFetch(c *Cache, fetch FetchFunc, uri string) *fasthttp.Response {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("GET")
	ctx.Request.SetRequestURI(uri)
	ctx.Request.Header.SetHost("shop.test")
	c.Serve(&ctx, fetch)
	out := &fasthttp.Response{}
	ctx.Response.CopyTo(out)
	return out
}

// TestStaleOnErrorRealOrigin: RFC 9111 section 4.2.4 lets a cache serve a
// stale answer when it cannot reach the origin. With a real origin that is
// stopped (connection refused), a max-age=1 answer one second past expiry
// is served stale, marked in Cache-Status, for Config.StaleOnError past
// expiry and no longer; never when the stored answer forbids serving
// stale; the origin's stale-if-error wins over the configured bound.
func TestStaleOnErrorRealOrigin(t *testing.T) {
	url := testenv.Redis(t)
	cases := []struct {
		name   string
		cc     string
		at     time.Duration // past expiry
		served bool
	}{
		{"s4.2.4: origin gone, one second past expiry", "max-age=1", time.Second, true},
		{"s4.2.4: origin gone, within the bound", "max-age=1", 59 * time.Second, true},
		{"s4.2.4: origin gone, past the bound", "max-age=1", 61 * time.Second, false},
		{"s5.2.2.2: must-revalidate forbids it", "max-age=1, must-revalidate", time.Second, false},
		{"s5.2.2.8: proxy-revalidate forbids it", "max-age=1, proxy-revalidate", time.Second, false},
		{"s5.2.2.10: s-maxage forbids it", "s-maxage=1", time.Second, false},
		{"s5.2.2.4: no-cache forbids it", "max-age=1, no-cache", time.Second, false},
		{"RFC 5861 s4: a shorter stale-if-error wins", "max-age=1, stale-if-error=5", 10 * time.Second, false},
		{"RFC 5861 s4: a longer stale-if-error wins", "max-age=1, stale-if-error=300", 120 * time.Second, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			clk.ns.Store(time.Now().UnixNano())
			c := newTestCache(t, url, randName(t), clk)
			ro := startRealOrigin(t, func(ctx *fasthttp.RequestCtx) {
				ctx.Response.Header.Set("Cache-Control", tc.cc)
				ctx.Response.Header.Set("ETag", `"s"`)
				ctx.SetBodyString("stored")
			})
			if r := doFetch(c, ro.fetch, "/soe"); r.StatusCode() != 200 {
				t.Fatalf("fill: %d %q", r.StatusCode(), cacheStatus(r))
			}
			eventually(t, 2*time.Second, "the stored entry", func() bool {
				return !strings.Contains(cacheStatus(doFetch(c, ro.fetch, "/soe")), "uri-miss")
			})
			ro.stop()
			clk.advance(time.Second + tc.at)
			r := doFetch(c, ro.fetch, "/soe")
			if tc.served {
				if r.StatusCode() != 200 || string(r.Body()) != "stored" {
					t.Fatalf("want the stale answer, got %d %q (%q)", r.StatusCode(), r.Body(), cacheStatus(r))
				}
				want := "novashop-edge; fwd=stale; fwd-status=502; detail=stale-on-error"
				if strings.Contains(tc.cc, "stale-if-error") {
					want = "novashop-edge; fwd=stale; fwd-status=502; detail=stale-if-error"
				}
				if cacheStatus(r) != want {
					t.Fatalf("Cache-Status %q, want %q", cacheStatus(r), want)
				}
				return
			}
			if r.StatusCode() != 502 || !strings.Contains(string(r.Body()), `"error"`) {
				t.Fatalf("want the 502, got %d %q (%q)", r.StatusCode(), r.Body(), cacheStatus(r))
			}
		})
	}
}

// TestStaleOnErrorNoUpstream: the edge's own "no upstream available" 503
// (every host down or ejected) counts as an unreachable origin; the stale
// answer says which status the forward got. An origin that answers 500
// itself is an answer, not an outage: without stale-if-error it is relayed.
func TestStaleOnErrorNoUpstream(t *testing.T) {
	clk := newClock()
	c := newTestCache(t, testenv.Redis(t), randName(t), clk)
	mode := 0
	o := newOrigin(func(req *fasthttp.Request, resp *fasthttp.Response) error {
		switch mode {
		case 1:
			resp.SetStatusCode(503)
			resp.SetBodyString(`{"error":"no upstream available"}`)
			return errors.New("no upstream available")
		case 2:
			resp.SetStatusCode(500)
			resp.SetBodyString("origin broke")
			return nil
		}
		return static(200, "ok", "Cache-Control", "max-age=1")(req, resp)
	})
	do(c, o, "GET", "/nu")
	eventually(t, 2*time.Second, "the stored entry", func() bool { return !strings.Contains(cacheStatus(do(c, o, "GET", "/nu")), "uri-miss") })
	clk.advance(3 * time.Second)
	mode = 1
	r := do(c, o, "GET", "/nu")
	if r.StatusCode() != 200 || cacheStatus(r) != "novashop-edge; fwd=stale; fwd-status=503; detail=stale-on-error" {
		t.Fatalf("no upstream: %d %q", r.StatusCode(), cacheStatus(r))
	}
	mode = 2
	if r := do(c, o, "GET", "/nu"); r.StatusCode() != 500 {
		t.Fatalf("origin 500: %d %q, want the origin's 500", r.StatusCode(), cacheStatus(r))
	}
}

// TestStaleOnErrorOff: a negative StaleOnError turns the grace off.
func TestStaleOnErrorOff(t *testing.T) {
	clk := newClock()
	cfg := Config{RedisURL: testenv.Redis(t), Namespace: "t:" + randName(t) + ":", TagIndexNamespace: "ti:" + randName(t) + ":", StaleOnError: -1, Now: clk.now, RedisTimeout: testRedisTimeout}
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	down := false
	o := newOrigin(func(req *fasthttp.Request, resp *fasthttp.Response) error {
		if down {
			return errors.New("refused")
		}
		return static(200, "ok", "Cache-Control", "max-age=1", "ETag", `"x"`)(req, resp)
	})
	do(c, o, "GET", "/off")
	eventually(t, 2*time.Second, "the stored entry", func() bool { return !strings.Contains(cacheStatus(do(c, o, "GET", "/off")), "uri-miss") })
	clk.advance(2 * time.Second)
	down = true
	if r := do(c, o, "GET", "/off"); r.StatusCode() != 502 {
		t.Fatalf("stale_on_error off: %d %q", r.StatusCode(), cacheStatus(r))
	}
}
