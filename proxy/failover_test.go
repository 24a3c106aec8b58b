package proxy

import (
	"sync"
	"sync/atomic"
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
