package cache

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	neturl "net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/novashop/edge/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// clock is an injectable time source for Config.Now.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func randName(t testing.TB) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// testRedisTimeout is the Redis timeout of test caches that are not about
// the timeout: under -race on a loaded machine a command can outlast the
// default 50 ms, the cache then passes that request through, and a test
// expecting a hit sees a miss. A test of the timeout or the breaker sets
// its own (DefaultRedisTimeout).
const testRedisTimeout = 2 * time.Second

// newTestCache builds a Cache on url with its own namespace, so tests
// sharing one Redis never see each other's entries. Pass the same ns to
// build a second edge sharing entries.
func newTestCache(t testing.TB, url, ns string, clk *clock) *Cache {
	t.Helper()
	cfg := Config{RedisURL: url, Namespace: "t:" + ns + ":", TagIndexNamespace: "ti:" + ns + ":", MaxMemoryBytes: 8 << 20, RedisTimeout: testRedisTimeout}
	if clk != nil {
		cfg.Now = clk.now
	}
	var log *zap.Logger
	if tt, ok := t.(*testing.T); ok {
		log = zaptest.NewLogger(tt, zaptest.Level(zap.WarnLevel))
	} else {
		log = zap.NewNop()
	}
	c, err := New(cfg, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	waitConnected(t, c, url)
	return c
}

// waitConnected waits until c is connected when url's Redis is up: on a
// loaded machine (the race detector, a cold start) the first connect can miss
// the cache's 50 ms Redis timeout, and the cache then passes requests through
// until its probe reconnects, which a test of caching rules would misread. A
// Redis that is down on purpose (deadURL) is not waited for.
func waitConnected(t testing.TB, c *Cache, redisURL string) {
	t.Helper()
	u, err := neturl.Parse(redisURL)
	if err != nil {
		return
	}
	conn, err := net.DialTimeout("tcp", u.Host, time.Second)
	if err != nil {
		return
	}
	conn.Close()
	eventually(t, 15*time.Second, "the cache to connect to Redis", c.Available)
}

// origin is an in-process stand-in for the balancer's fetch: it answers
// from handler and counts the requests that reached it.
type origin struct {
	mu      sync.Mutex
	calls   atomic.Int64
	last    []*fasthttp.Request
	handler func(req *fasthttp.Request, resp *fasthttp.Response) error
}

func newOrigin(h func(req *fasthttp.Request, resp *fasthttp.Response) error) *origin {
	return &origin{handler: h}
}

func (o *origin) fetch(req *fasthttp.Request, resp *fasthttp.Response) error {
	o.calls.Add(1)
	cp := &fasthttp.Request{}
	req.CopyTo(cp)
	o.mu.Lock()
	o.last = append(o.last, cp)
	o.mu.Unlock()
	return o.handler(req, resp)
}

func (o *origin) lastReq() *fasthttp.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.last) == 0 {
		return nil
	}
	return o.last[len(o.last)-1]
}

// static answers every request with the same status, fields and body.
func static(status int, body string, fields ...string) func(*fasthttp.Request, *fasthttp.Response) error {
	return func(_ *fasthttp.Request, resp *fasthttp.Response) error {
		resp.SetStatusCode(status)
		for i := 0; i+1 < len(fields); i += 2 {
			if fields[i] == "Date" {
				// fasthttp drops a Date set through Add; a parsed origin
				// answer has it like any field.
				SetDate(&resp.Header, []byte(fields[i+1]))
				continue
			}
			resp.Header.Add(fields[i], fields[i+1])
		}
		resp.SetBodyString(body)
		return nil
	}
}

// do runs one request through Serve. fields are request header pairs.
func do(c *Cache, o *origin, method, uri string, fields ...string) *fasthttp.Response {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(uri)
	ctx.Request.Header.SetHost("shop.test")
	for i := 0; i+1 < len(fields); i += 2 {
		ctx.Request.Header.Add(fields[i], fields[i+1])
	}
	c.Serve(&ctx, o.fetch)
	out := &fasthttp.Response{}
	ctx.Response.CopyTo(out)
	out.SkipBody = ctx.Response.SkipBody
	return out
}

func cacheStatus(r *fasthttp.Response) string { return string(r.Header.Peek(HeaderCacheStatus)) }

func isHit(r *fasthttp.Response) bool { return strings.Contains(cacheStatus(r), "; hit") }

// eventually polls cond until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}
