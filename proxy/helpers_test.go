package proxy

import (
	"bufio"
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/novashop/edge/proxy/config"
	"github.com/valyala/fasthttp"
)

// origin is a test origin on 127.0.0.1 that stamps X-Served-By and echoes what the
// edge sent it in X-Echo-* headers. kill drops the listener and every connection at
// once, as a SIGKILL would; revive listens again on the same address.
type origin struct {
	t       testing.TB
	name    string
	addr    string
	url     string
	handler func(ctx *fasthttp.RequestCtx)
	hits    atomic.Int64 // requests other than /healthz

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	srv   *fasthttp.Server
}

type trackingListener struct {
	net.Listener
	o *origin
}

func (l trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.o.mu.Lock()
		l.o.conns[c] = struct{}{}
		l.o.mu.Unlock()
	}
	return c, err
}

func newOrigin(t testing.TB, name string, handler func(ctx *fasthttp.RequestCtx)) *origin {
	t.Helper()
	o := &origin{t: t, name: name, handler: handler}
	o.listen("127.0.0.1:0")
	o.addr = o.ln.Addr().String()
	o.url = "http://" + o.addr
	t.Cleanup(o.kill)
	return o
}

func (o *origin) listen(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		o.t.Fatalf("origin %s: %v", o.name, err)
	}
	o.mu.Lock()
	o.ln = ln
	o.conns = map[net.Conn]struct{}{}
	o.srv = &fasthttp.Server{Handler: o.serve, NoDefaultServerHeader: true, Logger: quiet{}}
	srv := o.srv
	o.mu.Unlock()
	go srv.Serve(trackingListener{ln, o}) //nolint:errcheck
}

func (o *origin) serve(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set("X-Served-By", o.name)
	if string(ctx.Path()) == "/healthz" {
		ctx.SetBodyString("ok")
		return
	}
	o.hits.Add(1) // client traffic only, not health checks
	h := &ctx.Request.Header
	for _, name := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Request-Id", "X-User-Id", "X-User-Role", "Connection", "X-Hop", "Keep-Alive", "Te", "Upgrade", "Proxy-Connection"} {
		if v := h.Peek(name); v != nil {
			ctx.Response.Header.SetBytesV("X-Echo-"+name, v)
		}
	}
	if o.handler != nil {
		o.handler(ctx)
		return
	}
	ctx.SetBodyString("hello from " + o.name)
}

func (o *origin) kill() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ln == nil {
		return
	}
	_ = o.ln.Close()
	for c := range o.conns {
		_ = c.Close()
	}
	o.ln = nil
}

func (o *origin) revive() { o.listen(o.addr) }

// edge is a running Server with a client.
type edge struct {
	s      *Server
	addr   string
	admin  string
	client *fasthttp.HostClient
	adminC *fasthttp.HostClient
}

// testConfig is a fast-moving config for tests over the given origins.
func testConfig(origins ...*origin) config.Config {
	c := config.Default()
	c.Listen, c.AdminListen = "127.0.0.1:0", "127.0.0.1:1"
	for _, o := range origins {
		c.Upstreams = append(c.Upstreams, config.Upstream{Name: o.name, URL: o.url, Weight: 1})
	}
	c.Health.Interval = 100 * time.Millisecond
	c.Health.Timeout = 80 * time.Millisecond
	c.Health.Rise, c.Health.Fall = 1, 2
	c.Health.SlowStart = 0
	c.Health.EjectBase = 200 * time.Millisecond
	c.Health.EjectMax = time.Second
	c.Timeouts.Request = 2 * time.Second
	c.Retries.PerTryTimeout = time.Second
	c.AccessLog.Enabled = false
	// EDGE_TEST_IO=eventloop runs the suite on the event-loop core (make test does both).
	c.IO = os.Getenv("EDGE_TEST_IO")
	// EDGE_TEST_IO_BATCH_WAIT=1ms runs it with the loops' wake-up coalescing on.
	if v := os.Getenv("EDGE_TEST_IO_BATCH_WAIT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			panic("EDGE_TEST_IO_BATCH_WAIT: " + err.Error())
		}
		c.IOBatchWait = d
	}
	return c
}

// startEdge builds and starts a Server; setup, when given, adjusts it
// before it serves.
func startEdge(t testing.TB, cfg config.Config, opt Options, setup ...func(*Server)) *edge {
	t.Helper()
	s, err := New(cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range setup {
		f(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)       //nolint:errcheck
	go s.ServeAdmin(aln) //nolint:errcheck
	e := &edge{s: s, addr: ln.Addr().String(), admin: aln.Addr().String()}
	e.client = &fasthttp.HostClient{Addr: e.addr, MaxConns: 512, ReadTimeout: 10 * time.Second}
	e.adminC = &fasthttp.HostClient{Addr: e.admin}
	t.Cleanup(func() {
		_ = ln.Close()
		_ = aln.Close()
		s.Close()
	})
	return e
}

// do sends method target with headers ("Name: value") and body through the edge.
func (e *edge) do(t testing.TB, method, target, body string, headers ...string) *fasthttp.Response {
	t.Helper()
	return doOn(t, e.client, method, target, body, headers...)
}

func (e *edge) adminDo(t testing.TB, method, target, body string) *fasthttp.Response {
	t.Helper()
	return doOn(t, e.adminC, method, target, body)
}

func doOn(t testing.TB, c *fasthttp.HostClient, method, target, body string, headers ...string) *fasthttp.Response {
	t.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.Header.SetMethod(method)
	req.SetRequestURI("http://" + c.Addr + target)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	if body != "" {
		req.SetBodyString(body)
	}
	resp := &fasthttp.Response{}
	if err := c.DoTimeout(req, resp, 10*time.Second); err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return resp
}

func header(r *fasthttp.Response, name string) string { return string(r.Header.Peek(name)) }

// wantJSONError checks a JSON error answer.
func wantJSONError(t testing.TB, r *fasthttp.Response, status int) {
	t.Helper()
	if r.StatusCode() != status {
		t.Fatalf("status = %d, want %d (body %s)", r.StatusCode(), status, r.Body())
	}
	if ct := header(r, "Content-Type"); ct != "application/json" {
		t.Fatalf("content type = %q", ct)
	}
	if b := string(r.Body()); !strings.HasPrefix(b, `{"error":"`) || !strings.HasSuffix(b, `"}`) {
		t.Fatalf("body = %s, want {\"error\": ...}", b)
	}
}

// testRedisTimeout is the Redis timeout of the real caches tests build
// when the test is not about the timeout: under -race on a loaded machine a
// command can outlast the default 50 ms, the cache then passes that request
// through, and a test expecting a hit sees a miss.
const testRedisTimeout = 2 * time.Second

func waitUntil(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func rateRule(name, prefix string, methods []string, ipRate float64, ipBurst int, userRate float64, userBurst int) config.RateLimit {
	r := config.RateLimit{Name: name}
	r.Match.PathPrefix, r.Match.Methods = prefix, methods
	r.PerIP.Rate, r.PerIP.Burst = ipRate, ipBurst
	r.PerUser.Rate, r.PerUser.Burst = userRate, userBurst
	return r
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

// quiet drops fasthttp's log lines (a killed origin's broken connections are expected).
type quiet struct{}

func (quiet) Printf(string, ...any) {}

// memCache answers every request from memory, as a cache hit does, so the test
// below sees only the edge's own cost around Cache.Serve.
type memCache struct{ body []byte }

func (c *memCache) Serve(ctx *fasthttp.RequestCtx, _ func(req *fasthttp.Request, resp *fasthttp.Response) error) {
	ctx.Response.Header.SetContentType("application/json")
	ctx.Response.SetBody(c.body)
}

func (c *memCache) Purge(context.Context, []string, []string, string, bool) (int, error) {
	return 0, nil
}
func (c *memCache) Close() {}
