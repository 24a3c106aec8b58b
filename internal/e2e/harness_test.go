package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/novashop/edge/internal/stack"
	"github.com/novashop/edge/internal/testenv"
)

// binDir holds the origin and edge binaries built once by TestMain.
var binDir string

// TestMain builds the binaries once per test binary (without -race: they
// are the product under test, not the test itself, and a race build of two
// servers triples the start-up time on two cores), then runs the tests with
// testenv so the shared PostgreSQL server is stopped at the end.
func TestMain(m *testing.M) {
	os.Exit(mainWithBinaries(m))
}

func mainWithBinaries(m *testing.M) int {
	dir, err := os.MkdirTemp("", "novashop-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := buildBinaries(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	binDir = dir
	return testenv.Main(m)
}

func buildBinaries(dir string) error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return fmt.Errorf("not inside the module (go env GOMOD = %q)", gomod)
	}
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/origin", "./cmd/edge")
	build.Dir = filepath.Dir(gomod)
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

// shop is one test's PostgreSQL database (migrated and seeded), its JWT
// secret and the servers the test starts on them. Everything stops when the
// test ends, and a failed test logs the tail of every server's output.
type shop struct {
	t      *testing.T
	dbURL  string
	secret string
}

// Seed sizes: small enough to seed in a second, large enough that tests
// use distinct products without touching each other's rows.
const (
	seedCategories = 3
	seedProducts   = 60
	seedUsers      = 4
)

func newShop(t *testing.T) *shop {
	t.Helper()
	dbURL := testenv.Postgres(t)
	origin := filepath.Join(binDir, "origin")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, args := range [][]string{
		{"migrate", "--database-url", dbURL},
		{"seed", "--database-url", dbURL, "--categories", strconv.Itoa(seedCategories),
			"--products", strconv.Itoa(seedProducts), "--users", strconv.Itoa(seedUsers)},
	} {
		if out, err := exec.CommandContext(ctx, origin, args...).CombinedOutput(); err != nil {
			t.Fatalf("origin %s: %v\n%s", args[0], err, out)
		}
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return &shop{t: t, dbURL: dbURL, secret: hex.EncodeToString(b)}
}

// proc is one of our binaries run by a test, restartable with the same
// command line (the same port).
type proc struct {
	name, bin, addr string
	args, env       []string
	mu              sync.Mutex
	srv             *stack.Server
}

func (s *shop) start(name, bin, addr string, args []string) *proc {
	s.t.Helper()
	// The edge lets EDGE_* variables override its file; blank them so a
	// developer's environment cannot redirect the test's edges.
	// EDGE_TEST_IO=eventloop runs the edges on the event-loop core (make test does both).
	env := []string{"JWT_SECRET=" + s.secret, "EDGE_LISTEN=", "EDGE_ADMIN_LISTEN=", "EDGE_UPSTREAMS=", "EDGE_BALANCER=",
		"EDGE_IO=" + os.Getenv("EDGE_TEST_IO")}
	p := &proc{name: name, bin: filepath.Join(binDir, bin), addr: addr, args: args, env: env}
	p.restart(s.t)
	s.t.Cleanup(func() {
		p.mu.Lock()
		srv := p.srv
		p.mu.Unlock()
		if s.t.Failed() && srv != nil {
			s.t.Logf("--- %s output (tail) ---\n%s", p.name, tailString(srv.Output(), 3000))
		}
		srv.Stop()
	})
	return p
}

// restart starts the process again with the same command line, e.g. after
// kill; it waits until the listener accepts connections.
func (p *proc) restart(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := stack.StartServer(ctx, p.name, p.bin, p.args, p.env, p.addr)
	if err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
}

// stop ends the process with SIGTERM (graceful shutdown) and waits.
func (p *proc) stop() {
	p.mu.Lock()
	srv := p.srv
	p.mu.Unlock()
	srv.Stop()
}

// output is what the process printed so far (bounded).
func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.srv.Output()
}

// signal sends sig to the process.
func (p *proc) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return syscall.Kill(p.srv.Pid(), sig)
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.srv.Exited()
}

// kill ends the process with SIGKILL, as a crash would.
func (p *proc) kill() {
	p.mu.Lock()
	srv := p.srv
	p.mu.Unlock()
	srv.Kill()
}

// givenPorts are the ports freeAddr handed out in this test binary.
var givenPorts struct {
	sync.Mutex
	m map[int]bool
}

// freeAddr returns a 127.0.0.1 address with a port free now and not handed
// out before in this binary: the kernel may give a just-closed ephemeral
// port again at once, and an edge whose listen and admin_listen came out
// equal that way refused to start (seen under load).
func freeAddr(t *testing.T) string {
	t.Helper()
	givenPorts.Lock()
	defer givenPorts.Unlock()
	if givenPorts.m == nil {
		givenPorts.m = map[int]bool{}
	}
	for range 100 {
		port, err := stack.FreePort()
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		if !givenPorts.m[port] {
			givenPorts.m[port] = true
			return "127.0.0.1:" + strconv.Itoa(port)
		}
	}
	t.Fatal("free port: 100 tries gave only ports handed out before")
	return ""
}

// startOrigin runs `origin serve` on a free port against the shop's
// database and redisURL (empty: no tag bumps), with extra flags.
func (s *shop) startOrigin(name, redisURL string, extra ...string) *proc {
	s.t.Helper()
	addr := freeAddr(s.t)
	return s.start(name, "origin", addr, append([]string{"serve", "--listen", addr, "--name", name,
		"--database-url", s.dbURL, "--redis-url", redisURL, "--access-log=false"}, extra...))
}

// startWorker runs `origin worker` (the order pipeline).
func (s *shop) startWorker(redisURL string) *proc {
	s.t.Helper()
	return s.start("worker", "origin", "", []string{"worker", "--database-url", s.dbURL, "--redis-url", redisURL})
}

// edge is a running edge with its public and admin base URLs and the
// configuration file it reads (again on SIGHUP).
type edge struct {
	*proc
	url, admin, conf string
	// writeConf rewrites conf with another balancing policy.
	writeConf func(policy string)
}

// edgeConfig is the edge's YAML for these tests. It differs from
// configs/edge.yaml only where a test needs it: health checks every 200 ms
// and a 1 s slow start, so a restarted origin rejoins within a bounded test;
// no rate limits, because one staff user writes 50 times in a second in the
// coherence test (the shipped file allows 20 writes/s per user); no access
// log, to keep two shared cores for the traffic.
const edgeConfig = `listen: %q
admin_listen: %q
balancer: {policy: %s, hash_key: path}
health:
  active: true
  path: %s
  interval: 200ms
  timeout: 150ms
  rise: 2
  fall: 2
  passive_failures: 3
  eject_base: 1s
  eject_max: 5s
  max_ejected_percent: 50
  slow_start: 1s
access_log: {enabled: false}
cache: {redis_timeout: %s}
upstreams:
%s%s`

// startEdge runs the edge in front of origins with round-robin balancing;
// redisURL empty runs it without a cache.
func (s *shop) startEdge(name, redisURL string, origins ...*proc) *edge {
	s.t.Helper()
	return s.startEdgePolicy(name, redisURL, "round-robin", origins...)
}

// startEdgePolicy is startEdge with another balancing policy (hash hashes
// the path).
func (s *shop) startEdgePolicy(name, redisURL, policy string, origins ...*proc) *edge {
	s.t.Helper()
	return s.startEdgeWith(name, redisURL, edgeOpts{policy: policy}, origins...)
}

// edgeOpts are the parts of edgeConfig a test may change.
type edgeOpts struct {
	// policy is the balancing policy; empty means round-robin.
	policy string
	// healthPath is the active check's path; empty means /healthz.
	healthPath string
	// redisTimeout is cache.redis_timeout; empty means 1 s, not the 50 ms
	// default: under -race on a loaded machine a Redis command can outlast
	// 50 ms, the edge then passes that request to an origin, and a test
	// expecting a hit sees a miss. Tests of the timeout itself set 50ms.
	redisTimeout string
	// extra is top-level YAML appended to the file (e.g. a retries block);
	// a key given twice is an error, so it may only set what edgeConfig
	// leaves out.
	extra string
}

// startEdgeWith is startEdgePolicy with more of the configuration chosen.
func (s *shop) startEdgeWith(name, redisURL string, o edgeOpts, origins ...*proc) *edge {
	s.t.Helper()
	if o.policy == "" {
		o.policy = "round-robin"
	}
	if o.healthPath == "" {
		o.healthPath = "/healthz"
	}
	if o.redisTimeout == "" {
		o.redisTimeout = "1s"
	}
	addr, admin := freeAddr(s.t), freeAddr(s.t)
	var ups strings.Builder
	for _, o := range origins {
		fmt.Fprintf(&ups, "  - {name: %s, url: \"http://%s\"}\n", o.name, o.addr)
	}
	conf := filepath.Join(s.t.TempDir(), name+".yaml")
	t := s.t
	writeConf := func(policy string) {
		if err := os.WriteFile(conf, []byte(fmt.Sprintf(edgeConfig, addr, admin, policy, o.healthPath, o.redisTimeout, ups.String(), o.extra)), 0o600); err != nil {
			t.Error(err)
		}
	}
	writeConf(o.policy)
	p := s.start(name, "edge", addr, []string{"--config", conf, "--redis-url", redisURL})
	return &edge{proc: p, url: "http://" + addr, admin: "http://" + admin, conf: conf, writeConf: writeConf}
}

// client is a keep-alive HTTP client for one test, with helpers that fail
// the test on transport errors.
type client struct {
	t  testing.TB
	hc *http.Client
}

func newClient(t testing.TB) *client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	// Redirects are the edge's answer (303 to /login/), not something to follow.
	return &client{t: t, hc: &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// response is what a test looks at: status, headers and body.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string {
	return fmt.Sprintf("%d %s", r.status, tailString(string(r.body), 300))
}

// do sends one request; body, when not nil, is sent as JSON.
func (c *client) do(method, url, token string, body any) (response, error) {
	return c.doHeader(method, url, token, nil, body)
}

// doHeader is do with extra request header fields (e.g. a Cookie).
func (c *client) doHeader(method, url, token string, header map[string]string, body any) (response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return response{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: res.StatusCode, header: res.Header, body: b}, nil
}

// must is do that fails the test on a transport error or another status.
func (c *client) must(want int, method, url, token string, body any) response {
	c.t.Helper()
	r, err := c.do(method, url, token, body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, url, err)
	}
	if r.status != want {
		c.t.Fatalf("%s %s = %s, want %d", method, url, r, want)
	}
	return r
}

func decode[T any](t testing.TB, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %s: %v", r, err)
	}
	return v
}

// login returns an access token for username through base (an edge).
func (c *client) login(base, username, password string) string {
	c.t.Helper()
	r := c.must(200, "POST", base+"/api/login/", "", map[string]string{"username": username, "password": password})
	tok := decode[struct {
		Access string `json:"access"`
	}](c.t, r)
	if tok.Access == "" {
		c.t.Fatalf("login %s: no access token in %s", username, r)
	}
	return tok.Access
}

// product is the part of a product answer the tests read.
type product struct {
	ID    int64  `json:"id"`
	Price string `json:"price"`
	Stock int    `json:"stock"`
}

func cacheHit(r response) bool {
	return strings.Contains(r.header.Get("Cache-Status"), "; hit")
}

// upstreamState reads one upstream's state from the edge's admin API.
func (c *client) upstreamState(e *edge, name string) string {
	c.t.Helper()
	r := c.must(200, "GET", e.admin+"/admin/upstreams", "", nil)
	v := decode[struct {
		Upstreams []struct {
			Name  string `json:"name"`
			State string `json:"state"`
		} `json:"upstreams"`
	}](c.t, r)
	for _, u := range v.Upstreams {
		if u.Name == name {
			return u.State
		}
	}
	c.t.Fatalf("upstream %s not in %s", name, r)
	return ""
}

// eventually polls cond every interval until it holds or timeout passes.
func eventually(t testing.TB, timeout, interval time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(interval)
	}
}

// percentiles returns p50, p99 and max of ds (sorted in place).
func percentiles(ds []time.Duration) (p50, p99, maxd time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration {
		i := int(q*float64(len(ds))+0.5) - 1
		return ds[min(max(i, 0), len(ds)-1)]
	}
	return at(0.50), at(0.99), ds[len(ds)-1]
}

func tailString(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// cutProxy is a TCP proxy in front of one address that a test can cut
// (every open connection closed, new ones closed at once) and restore, or
// freeze (bytes swallowed, connections left open), to take a process off
// a server without killing either.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	frozen atomic.Bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.setCut(true)
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(in) {
			_ = in.Close()
			continue
		}
		out, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil || !p.track(out) {
			_ = in.Close()
			if out != nil {
				_ = out.Close()
			}
			continue
		}
		p.wg.Add(2)
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

// track registers c unless the proxy is cut.
func (p *cutProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *cutProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		// A frozen proxy swallows bytes and keeps connections open: a
		// silent partition, as a dropped route or a dead switch would be.
		if n > 0 && !p.frozen.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	_ = dst.Close()
	_ = src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// setCut cuts (closing every open connection) or restores the proxy.
func (p *cutProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			_ = c.Close()
		}
	}
}

// inStock returns n product ids with at least minStock units, read through
// base; the seed gives some products no stock, and tests that buy must not
// depend on which.
func (c *client) inStock(base string, n, minStock int) []int64 {
	c.t.Helper()
	r := c.must(200, "GET", base+"/api/products/?in_stock=1&limit=100", "", nil)
	var ids []int64
	for _, p := range decode[struct {
		Results []product `json:"results"`
	}](c.t, r).Results {
		if p.Stock >= minStock {
			ids = append(ids, p.ID)
		}
	}
	if len(ids) < n {
		c.t.Fatalf("only %d products with %d+ units in stock, want %d", len(ids), minStock, n)
	}
	return ids[:n]
}
