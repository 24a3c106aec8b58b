package proxy

import (
	"fmt"
	"github.com/novashop/edge/proxy/config"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestOriginKilledMidLoad is the failover claim of issue #3: an origin that dies in
// the middle of a load run (listener and every connection dropped at once, as with
// SIGKILL) costs no failed GET, and it rejoins by itself once it is back (active
// health checks).
func TestOriginKilledMidLoad(t *testing.T) {
	o1 := newOrigin(t, "o1", func(ctx *fasthttp.RequestCtx) {
		time.Sleep(2 * time.Millisecond) // keep requests in flight when it dies
		ctx.SetBodyString("o1")
	})
	o2 := newOrigin(t, "o2", func(ctx *fasthttp.RequestCtx) {
		time.Sleep(2 * time.Millisecond)
		ctx.SetBodyString("o2")
	})
	cfg := testConfig(o1, o2)
	e := startEdge(t, cfg, Options{})

	const workers = 8
	var sent, failed atomic.Int64
	var byOrigin sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for {
				select {
				case <-stop:
					return
				default:
				}
				req.SetRequestURI("http://" + e.addr + "/products/")
				err := e.client.DoTimeout(req, resp, 5*time.Second)
				sent.Add(1)
				if err != nil || resp.StatusCode() != 200 {
					failed.Add(1)
					if err == nil {
						t.Logf("failed GET: %d %s", resp.StatusCode(), resp.Body())
					} else {
						t.Logf("failed GET: %v", err)
					}
					continue
				}
				n, _ := byOrigin.LoadOrStore(string(resp.Header.Peek("X-Served-By")), new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
			}
		}()
	}
	// Count requests, not time: on a loaded machine 300 ms may carry only a few
	// dozen requests, and the test must show the kill under real load.
	waitUntil(t, "50 requests before the kill", 30*time.Second, func() bool { return sent.Load() >= 50 })
	o1.kill()
	killedAt := sent.Load()
	waitUntil(t, "150 requests after the kill", 30*time.Second, func() bool { return sent.Load() >= killedAt+150 })
	o1.revive()
	// The active check (interval 100ms, rise 1) brings it back.
	u := e.s.rt.Load().pool.Get("o1")
	waitUntil(t, "o1 to rejoin", 3*time.Second, u.Healthy)
	before := o1.hits.Load()
	waitUntil(t, "o1 to take traffic after it rejoined", 30*time.Second, func() bool { return o1.hits.Load() > before })
	close(stop)
	wg.Wait()

	if failed.Load() != 0 {
		t.Fatalf("%d of %d GETs failed around the kill", failed.Load(), sent.Load())
	}
	if killedAt < 50 || sent.Load() < 200 {
		t.Fatalf("too little load to show anything: %d requests (%d before the kill)", sent.Load(), killedAt)
	}
	if o1.hits.Load() == before {
		t.Fatal("o1 took no traffic after it rejoined")
	}
	if e.s.metrics.Retries.Get() == 0 {
		t.Fatal("no retries counted although an origin died under load")
	}
}

// silentAddr returns a 127.0.0.1 address whose listener never accepts and
// whose accept queue is full, so the kernel drops every further SYN: a dial
// to it hangs until its timeout, as a dial to a crashed machine does.
func silentAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return addr // the queue is full: this SYN was dropped
		}
		t.Cleanup(func() { _ = c.Close() })
		if i > 16 {
			t.Fatal("the accept queue never filled")
		}
	}
}

// TestDialBoundedByPerTryTimeout: a host that drops SYNs costs a request at
// most its per-try timeout, then the retry goes to a live host (issue 14,
// failover tail). Connection set-up used its own 3 s dial timeout, outside
// the per-try timeout, so such a request waited 3 s for its first try.
func TestDialBoundedByPerTryTimeout(t *testing.T) {
	good := newOrigin(t, "good", nil)
	cfg := testConfig(good)
	cfg.Upstreams = append([]config.Upstream{{Name: "silent", URL: "http://" + silentAddr(t), Weight: 1000}}, cfg.Upstreams...)
	cfg.Balancer.Policy = "weighted" // the silent host is picked first
	cfg.Health.Active = false
	cfg.Health.PassiveFailures = 0
	cfg.Timeouts.Dial = 3 * time.Second
	cfg.Timeouts.Request = 10 * time.Second
	cfg.Retries.PerTryTimeout = 200 * time.Millisecond
	e := startEdge(t, cfg, Options{})
	for i := range 3 {
		start := time.Now()
		r := e.do(t, "GET", "/x", "")
		took := time.Since(start)
		if r.StatusCode() != 200 || header(r, "X-Served-By") != "good" {
			t.Fatalf("GET %d: %d from %q", i, r.StatusCode(), header(r, "X-Served-By"))
		}
		// One per-try timeout on the silent host, then the good one; 3 s if
		// the dial ignores the per-try timeout.
		if took > time.Second {
			t.Fatalf("GET %d took %s with a per-try timeout of %s", i, took, cfg.Retries.PerTryTimeout)
		}
	}
}

// TestPerTryTimeoutKeptToTheTick: an origin that accepts and never answers
// costs a request one per-try timeout, not a timer tick more. The event
// loop's timer wheel has 100 ms slots, so a 200 ms try used to end after
// 300 ms; per-try deadlines are now kept exactly (evloop's tryTimers). The
// fastest of five requests is judged, which a loaded box delays least.
func TestPerTryTimeoutKeptToTheTick(t *testing.T) {
	good := newOrigin(t, "good", nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() }) // never accepts: connections wait in the backlog
	const perTry = 200 * time.Millisecond
	cfg := testConfig(good)
	cfg.Upstreams = append([]config.Upstream{{Name: "mute", URL: "http://" + ln.Addr().String(), Weight: 1000}}, cfg.Upstreams...)
	cfg.Balancer.Policy = "weighted" // the mute host is picked first
	cfg.Health.Active = false
	cfg.Health.PassiveFailures = 0
	cfg.Retries.PerTryTimeout = perTry
	e := startEdge(t, cfg, Options{})
	fastest := time.Hour
	for i := range 5 {
		start := time.Now()
		r := e.do(t, "GET", "/x", "")
		took := time.Since(start)
		if r.StatusCode() != 200 || header(r, "X-Served-By") != "good" {
			t.Fatalf("GET %d: %d from %q", i, r.StatusCode(), header(r, "X-Served-By"))
		}
		fastest = min(fastest, took)
	}
	if fastest < perTry || fastest > perTry+60*time.Millisecond {
		t.Fatalf("the fastest request took %s with a per-try timeout of %s, want one per-try timeout and the good host's answer", fastest, perTry)
	}
}
