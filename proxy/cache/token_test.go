package cache

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/cachekeys"
	"github.com/novashop/edge/internal/testenv"
)

func TestParseToken(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1764118123456", 1764118123456, true},
		{"0", 0, true},
		{"007", 7, true},
		{"999999999999999", 999999999999999, true}, // 15 digits, the bound
		{"1000000000000000", 0, false},             // 16 digits
		{"", 0, false},
		{"-1764118123456", 0, false},
		{"+1764118123456", 0, false},
		{" 1764118123456", 0, false},
		{"1764118123456 ", 0, false},
		{`"1764118123456"`, 0, false},
		{"17641181234.5", 0, false},
		{"0x1f", 0, false},
		{"１２３", 0, false}, // full-width digits are not ASCII digits
		{"99999999999999999999999999", 0, false},
	}
	for _, tc := range cases {
		got, ok := parseToken([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseToken(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzParseToken: a token is accepted exactly when it is 1 to 15 ASCII
// digits, and then it is the decimal number those digits spell.
func FuzzParseToken(f *testing.F) {
	for _, s := range []string{"1764118123456", "0", "", "-1", "1e3", "999999999999999", "1000000000000000", "12\x00", "１"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := parseToken(b)
		digits := len(b) > 0 && len(b) <= maxTokenDigits
		for _, c := range b {
			if c < '0' || c > '9' {
				digits = false
			}
		}
		if ok != digits {
			t.Fatalf("parseToken(%q) ok = %v, want %v", b, ok, digits)
		}
		if !ok {
			if got != 0 {
				t.Fatalf("parseToken(%q) rejected but returned %d", b, got)
			}
			return
		}
		want, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil || got != want || got < 0 {
			t.Fatalf("parseToken(%q) = %d, strconv says %d (%v)", b, got, want, err)
		}
	})
}

func TestTokenLive(t *testing.T) {
	clk := newClock()
	nowMs := clk.now().UnixMilli()
	ms := func(d time.Duration) string { return strconv.FormatInt(nowMs+d.Milliseconds(), 10) }
	cases := []struct {
		name   string
		window time.Duration
		value  string
		want   bool
	}{
		{"deadline ahead", 0, ms(5 * time.Second), true},
		{"deadline 1 ms ahead", 0, ms(time.Millisecond), true},
		{"deadline now", 0, ms(0), false},
		{"deadline passed", 0, ms(-time.Second), false},
		{"ahead by twice the window (peer clock skew)", 0, ms(10 * time.Second), true},
		{"ahead by more than twice the window (forged)", 0, ms(10*time.Second + time.Millisecond), false},
		{"garbage", 0, "soon", false},
		{"empty", 0, "", false},
		{"turned off", -1, ms(time.Second), false},
		{"longer window", time.Minute, ms(90 * time.Second), true},
	}
	for _, tc := range cases {
		cfg := Config{ReadYourWritesWindow: tc.window, Now: clk.now}.withDefaults()
		c := &Cache{cfg: cfg}
		if got := c.tokenLive([]byte(tc.value), clk.now().UnixNano()); got != tc.want {
			t.Errorf("%s: tokenLive(%q) = %v, want %v", tc.name, tc.value, got, tc.want)
		}
	}
}

// tokenOf returns the token an answer carries: the Novashop-RV header,
// after checking that the cookie holds the same value.
func tokenOf(t testing.TB, r *fasthttp.Response) string {
	t.Helper()
	h := string(r.Header.Peek(HeaderReadYourWrites))
	ck := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(ck)
	ck.SetKey(CookieReadYourWrites)
	if !r.Header.Cookie(ck) {
		if h != "" {
			t.Fatalf("Novashop-RV %q without the %s cookie", h, CookieReadYourWrites)
		}
		return ""
	}
	if string(ck.Value()) != h {
		t.Fatalf("cookie %q and header %q differ", ck.Value(), h)
	}
	return h
}

// TestWriteIssuesToken: successful writes (RFC 9111 section 4.4 applies to
// 2xx and 3xx) get the token as cookie and header; failed writes, reads,
// and a cache with the token turned off do not.
func TestWriteIssuesToken(t *testing.T) {
	url := testenv.Redis(t)
	clk := newClock()
	c := newTestCache(t, url, randName(t), clk)
	cases := []struct {
		name   string
		method string
		status int
		fields []string
		want   bool
	}{
		{"PATCH 200 with tags", "PATCH", 200, []string{"Cache-Invalidate", "product:1"}, true},
		{"POST 201 without tags (URI invalidated)", "POST", 201, nil, true},
		{"DELETE 204", "DELETE", 204, nil, true},
		{"POST 303", "POST", 303, []string{"Location", "/orders/1/"}, true},
		{"PATCH 400", "PATCH", 400, []string{"Cache-Invalidate", "product:1"}, false},
		{"POST 500", "POST", 500, nil, false},
		{"OPTIONS 200 (safe)", "OPTIONS", 200, nil, false},
		{"GET 200", "GET", 200, []string{"Cache-Control", "max-age=60"}, false},
	}
	for _, tc := range cases {
		o := newOrigin(static(tc.status, "x", tc.fields...))
		r := do(c, o, tc.method, "/api/products/1/")
		got := tokenOf(t, r)
		if (got != "") != tc.want {
			t.Errorf("%s: token %q, want one: %v", tc.name, got, tc.want)
			continue
		}
		if !tc.want {
			continue
		}
		if want := strconv.FormatInt(clk.now().Add(DefaultReadYourWritesWindow).UnixMilli(), 10); got != want {
			t.Errorf("%s: token %q, want the deadline %s", tc.name, got, want)
		}
		sc := strings.ToLower(string(r.Header.Peek(fasthttp.HeaderSetCookie)))
		for _, attr := range []string{"path=/", "max-age=5", "httponly", "samesite=lax"} {
			if !strings.Contains(sc, attr) {
				t.Errorf("%s: Set-Cookie %q lacks %s", tc.name, sc, attr)
			}
		}
	}

	off := newTestCacheWith(t, url, randName(t), func(cfg *Config) { cfg.ReadYourWritesWindow = -1 })
	if got := tokenOf(t, do(off, newOrigin(static(200, "x")), "PATCH", "/p")); got != "" {
		t.Errorf("token %q issued with read_your_writes_window < 0", got)
	}
	long := newTestCacheWith(t, url, randName(t), func(cfg *Config) { cfg.ReadYourWritesWindow = 1500 * time.Millisecond })
	r := do(long, newOrigin(static(200, "x")), "PATCH", "/p")
	if sc := strings.ToLower(string(r.Header.Peek(fasthttp.HeaderSetCookie))); !strings.Contains(sc, "max-age=2") {
		t.Errorf("a 1.5 s window must round Max-Age up to 2: %q", sc)
	}
}

// newTestCacheWith is newTestCache with a config tweak.
func newTestCacheWith(t *testing.T, url, ns string, tweak func(*Config)) *Cache {
	t.Helper()
	cfg := Config{RedisURL: url, Namespace: "t:" + ns + ":", TagIndexNamespace: "ti:" + ns + ":", MaxMemoryBytes: 8 << 20, RedisTimeout: testRedisTimeout}
	tweak(&cfg)
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	waitConnected(t, c, url)
	return c
}

// TestTokenNeverChangesKeysOrEntries: a request with a token (cookie or
// header) reads and fills the same entry as everyone else, the origin never
// sees the token, and an entry never holds the write's Set-Cookie.
func TestTokenNeverChangesKeysOrEntries(t *testing.T) {
	clk := newClock()
	c := newTestCache(t, testenv.Redis(t), randName(t), clk)
	var sawToken atomic.Bool
	o := newOrigin(func(req *fasthttp.Request, resp *fasthttp.Response) error {
		if len(req.Header.Peek(HeaderReadYourWrites)) > 0 || len(req.Header.Cookie(CookieReadYourWrites)) > 0 {
			sawToken.Store(true)
		}
		if string(req.Header.Method()) != "GET" {
			return static(200, "ok", "Cache-Invalidate", "page")(req, resp)
		}
		// Vary: Cookie would split entries by the token if it stayed in
		// the request.
		return static(200, "page for "+string(req.Header.Cookie("theme")), "Cache-Control", "public, max-age=600",
			"Vary", "Cookie", "Cache-Tag", "page")(req, resp)
	})
	w := do(c, o, "POST", "/write/")
	tok := tokenOf(t, w)
	if tok == "" {
		t.Fatal("no token on a successful write")
	}
	for _, fields := range [][]string{
		{"Cookie", CookieReadYourWrites + "=" + tok + "; theme=dark"},
		{"Cookie", "theme=dark", HeaderReadYourWrites, tok},
		{"Cookie", "theme=dark; " + CookieReadYourWrites + "=" + tok},
	} {
		r := do(c, o, "GET", "/catalog/", fields...)
		if string(r.Body()) != "page for dark" {
			t.Fatalf("%v: body %q", fields, r.Body())
		}
		if len(r.Header.Peek(fasthttp.HeaderSetCookie)) > 0 || len(r.Header.Peek(HeaderReadYourWrites)) > 0 {
			t.Fatalf("%v: a read carries the token back: %q", fields, r.Header.String())
		}
	}
	if sawToken.Load() {
		t.Fatal("the token reached the origin")
	}
	if got := o.calls.Load(); got != 2 { // the POST and one fill
		t.Fatalf("origin saw %d requests, want 2: the token split the entry", got)
	}
	r := do(c, o, "GET", "/catalog/", "Cookie", "theme=dark")
	if !isHit(r) || string(r.Body()) != "page for dark" {
		t.Fatalf("a request without the token missed the entry a token holder filled: %q %q", cacheStatus(r), r.Body())
	}
	if len(r.Header.Peek(fasthttp.HeaderSetCookie)) > 0 {
		t.Fatalf("stored entry carries Set-Cookie: %q", r.Header.Peek(fasthttp.HeaderSetCookie))
	}
}

// TestTokenChecksRedis: a live token makes a hit check Redis
// (detail=rv-checked); garbage, expired or missing tokens keep the local
// path; a hit that Redis no longer backs is not served to the holder.
func TestTokenChecksRedis(t *testing.T) {
	url := testenv.Redis(t)
	clk := newClock()
	c := newTestCache(t, url, randName(t), clk)
	o := newOrigin(static(200, "v", "Cache-Control", "max-age=600", "Cache-Tag", "t-"+randName(t)))
	do(c, o, "GET", "/r")
	live := strconv.FormatInt(clk.now().Add(time.Second).UnixMilli(), 10)
	expired := strconv.FormatInt(clk.now().Add(-time.Second).UnixMilli(), 10)
	cases := []struct {
		name   string
		fields []string
		status string
	}{
		{"no token", nil, "novashop-edge; hit"},
		{"live header", []string{HeaderReadYourWrites, live}, "novashop-edge; hit; detail=rv-checked"},
		{"live cookie", []string{"Cookie", CookieReadYourWrites + "=" + live}, "novashop-edge; hit; detail=rv-checked"},
		{"garbage header, live cookie", []string{HeaderReadYourWrites, "x", "Cookie", CookieReadYourWrites + "=" + live}, "novashop-edge; hit; detail=rv-checked"},
		{"expired", []string{HeaderReadYourWrites, expired}, "novashop-edge; hit"},
		{"garbage", []string{HeaderReadYourWrites, live + "0000"}, "novashop-edge; hit"},
		{"signed", []string{HeaderReadYourWrites, "+" + live}, "novashop-edge; hit"},
	}
	for _, tc := range cases {
		if got := cacheStatus(do(c, o, "GET", "/r", tc.fields...)); got != tc.status {
			t.Errorf("%s: Cache-Status %q, want %q", tc.name, got, tc.status)
		}
	}

	// Another edge's deletion that this edge has not heard of yet is
	// simulated by deleting the entry from Redis behind the local table's
	// back through a client without tracking: only the token holder can
	// tell, and it must not get the entry.
	opt, _ := rueidis.ParseURL(url)
	opt.DisableCache = true
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	key := c.cfg.Namespace + "GET shop.test/r"
	if n, err := rc.Do(context.Background(), rc.B().Del().Key(key).Build()).AsInt64(); err != nil || n != 1 {
		t.Fatalf("DEL %s = %d, %v", key, n, err)
	}
	r := do(c, o, "GET", "/r", HeaderReadYourWrites, live)
	if isHit(r) {
		t.Fatalf("token holder got an entry Redis no longer holds: %q", cacheStatus(r))
	}
}

// TestTokenSkipsOlderFetch: a token holder never takes the answer of a
// fetch that began before its write; it fetches for itself.
func TestTokenSkipsOlderFetch(t *testing.T) {
	clk := newClock()
	c := newTestCache(t, testenv.Redis(t), randName(t), clk)
	var version atomic.Int64
	gate := make(chan struct{})
	o := newOrigin(func(req *fasthttp.Request, resp *fasthttp.Response) error {
		body := fmt.Sprintf("v%d", version.Load())
		if req.Header.Peek("X-Slow") != nil {
			<-gate // the "database" was read before the write below
		}
		return static(200, body, "Cache-Control", "max-age=600")(req, resp)
	})
	slow := make(chan string)
	go func() { slow <- string(do(c, o, "GET", "/p", "X-Slow", "1").Body()) }()
	eventually(t, 2*time.Second, "slow fetch under way", func() bool { return o.calls.Load() == 1 })
	version.Store(1) // the write commits
	tok := strconv.FormatInt(clk.now().Add(time.Second).UnixMilli(), 10)
	fresh := make(chan string)
	go func() { fresh <- string(do(c, o, "GET", "/p", HeaderReadYourWrites, tok).Body()) }()
	// Release the old fetch once the token holder fetched for itself (or
	// after a while, when it wrongly waits): a holder that waited would
	// now get the old fetch's v0.
	deadline := time.Now().Add(time.Second)
	for o.calls.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(gate)
	if got := <-fresh; got != "v1" {
		t.Fatalf("token holder got %q, want v1: it took the answer of a fetch begun before its write", got)
	}
	if got := <-slow; got != "v0" {
		t.Fatalf("slow request got %q", got)
	}
}

// TestReadYourWritesThroughAnyEdge (issue #4): two edges share one Redis; a
// client writes through A and at once reads through B with A's token, 200
// times, alternating tag bumps, URI-only invalidations and Vary entries.
// B must never answer the old value. Reads without the token in the same
// spot are counted and logged (they may see the old value until Redis'
// push reaches B; that window is measured, not asserted).
func TestReadYourWritesThroughAnyEdge(t *testing.T) {
	url, ns := testenv.Redis(t), randName(t)
	a, b := newTestCache(t, url, ns, nil), newTestCache(t, url, ns, nil)
	tag := "ryw-" + randName(t)
	paths := []string{"/tagged/1", "/uri/1", "/vary/1"}
	versions := map[string]*atomic.Int64{} // per path, read-only once built
	for _, p := range paths {
		versions[p] = new(atomic.Int64)
	}
	o := newOrigin(func(req *fasthttp.Request, resp *fasthttp.Response) error {
		path := string(req.URI().Path())
		version := versions[path]
		if string(req.Header.Method()) == "PATCH" {
			version.Add(1)
			if strings.HasPrefix(path, "/tagged/") {
				return static(200, "ok", "Cache-Invalidate", tag)(req, resp)
			}
			return static(200, "ok")(req, resp) // invalidates its own URI only
		}
		fields := []string{"Cache-Control", "max-age=600"}
		if strings.HasPrefix(path, "/tagged/") {
			fields = append(fields, "Cache-Tag", tag)
		}
		if strings.HasPrefix(path, "/vary/") {
			fields = append(fields, "Vary", "Accept-Language")
		}
		return static(200, fmt.Sprintf("v%d", version.Load()), fields...)(req, resp)
	})
	const pairs = 200
	for i := range pairs {
		path := paths[i%len(paths)]
		version := versions[path]
		old := fmt.Sprintf("v%d", version.Load())
		eventually(t, 2*time.Second, "edge b hit on "+path, func() bool {
			r := do(b, o, "GET", path, "Accept-Language", "de")
			return isHit(r) && string(r.Body()) == old
		})
		w := do(a, o, "PATCH", path)
		tok := tokenOf(t, w)
		if tok == "" {
			t.Fatalf("pair %d: write through A carried no token: %q", i, w.Header.String())
		}
		want := fmt.Sprintf("v%d", version.Load())
		fields := []string{"Accept-Language", "de", HeaderReadYourWrites, tok}
		if i%2 == 1 {
			fields = []string{"Accept-Language", "de", "Cookie", CookieReadYourWrites + "=" + tok}
		}
		r := do(b, o, "GET", path, fields...)
		if got := string(r.Body()); got != want {
			t.Fatalf("pair %d (%s): edge B answered %q right after the write through A, want %q (Cache-Status %q)",
				i, path, got, want, cacheStatus(r))
		}
	}
	// The control: the same pairs without the token.
	plainStale := 0
	for i := range pairs {
		path := paths[i%len(paths)]
		version := versions[path]
		old := fmt.Sprintf("v%d", version.Load())
		eventually(t, 2*time.Second, "edge b hit on "+path, func() bool {
			r := do(b, o, "GET", path, "Accept-Language", "de")
			return isHit(r) && string(r.Body()) == old
		})
		do(a, o, "PATCH", path)
		if string(do(b, o, "GET", path, "Accept-Language", "de").Body()) == old {
			plainStale++
		}
	}
	t.Logf("read-your-writes: %d write/read pairs through two edges, token reads never stale; the same pairs without the token read the old value %d times",
		pairs, plainStale)
}

// TestTokenUnreadableVersion: with a token, a tag version Redis cannot
// give as an integer means the entry is not served.
func TestTokenUnreadableVersion(t *testing.T) {
	url := testenv.Redis(t)
	clk := newClock()
	c := newTestCache(t, url, randName(t), clk)
	tag := "bad-" + randName(t)
	o := newOrigin(static(200, "v", "Cache-Control", "max-age=600", "Cache-Tag", tag))
	do(c, o, "GET", "/u")
	opt, _ := rueidis.ParseURL(url)
	opt.DisableCache = true
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := rc.Do(context.Background(), rc.B().Set().Key(cachekeys.TagVersionKey(tag)).Value("not-a-number").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	tok := strconv.FormatInt(clk.now().Add(time.Second).UnixMilli(), 10)
	if r := do(c, o, "GET", "/u", HeaderReadYourWrites, tok); isHit(r) {
		t.Fatalf("entry with an unreadable tag version served to a token holder: %q", cacheStatus(r))
	}
}

// TestReusedVaryIndexNotResurrected pins a bug found with the
// read-your-writes test: a fill that reused a vary index the lookup found
// locally put that index back in the local table even when a write had
// deleted it from Redis meanwhile, so this edge served the index's old
// variants until they expired (no push ever came for a key Redis no
// longer held).
func TestReusedVaryIndexNotResurrected(t *testing.T) {
	url := testenv.Redis(t)
	c := newTestCache(t, url, randName(t), nil)
	primary := c.cfg.Namespace + "GET shop.test/v"
	var version atomic.Int64
	var duringFetch atomic.Pointer[func()]
	o := newOrigin(func(req *fasthttp.Request, resp *fasthttp.Response) error {
		if f := duringFetch.Swap(nil); f != nil {
			(*f)()
		}
		return static(200, fmt.Sprintf("v%d", version.Load()), "Cache-Control", "max-age=600", "Vary", "Accept-Language")(req, resp)
	})
	do(c, o, "GET", "/v", "Accept-Language", "de")
	eventually(t, 2*time.Second, "hit", func() bool { return isHit(do(c, o, "GET", "/v", "Accept-Language", "de")) })
	stale := c.local.getString(primary, 0)
	if stale == nil || stale.vary == nil {
		t.Fatal("no vary index in the local table after a hit")
	}

	// A write through another edge deletes the index and changes the data.
	opt, _ := rueidis.ParseURL(url)
	opt.DisableCache = true
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	version.Store(1)
	if err := rc.Do(context.Background(), rc.B().Del().Key(primary).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "push for the deleted index", func() bool { return c.local.getString(primary, 0) == nil })

	// A lookup that ran just before the push saw the old index (put back
	// here), and the push lands while its fill is at the origin.
	if !c.local.insert(primary, stale, c.local.begin(primary), 0) {
		t.Fatal("could not stage the stale index")
	}
	push := func() { c.local.invalidate(primary) }
	duringFetch.Store(&push)
	do(c, o, "GET", "/v", "Accept-Language", "fr")

	if r := do(c, o, "GET", "/v", "Accept-Language", "de"); string(r.Body()) != "v1" {
		t.Fatalf("old variant served after its index was deleted: %q (%q)", r.Body(), cacheStatus(r))
	}
}

// BenchmarkServeHitWithToken is BenchmarkServeHit for a token holder: the
// same 2 KB hit plus the one Redis round trip that checks it, which is
// what a request costs during the read-your-writes window.
func BenchmarkServeHitWithToken(b *testing.B) {
	c, o := warmHit(b)
	tok := []byte(strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10))
	c.cfg.ReadYourWritesWindow = time.Hour
	ctx := hitCtx()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ctx.Response.Reset()
		ctx.Request.Header.SetBytesV(HeaderReadYourWrites, tok)
		c.Serve(ctx, o.fetch)
		if !strings.HasSuffix(cacheStatus(&ctx.Response), "rv-checked") {
			b.Fatalf("not a checked hit: %q", cacheStatus(&ctx.Response))
		}
	}
}
