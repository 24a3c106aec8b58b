package proxy

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestP2CAvoidsSlowOrigin: with one origin 20 ms slower than the other, p2c-ewma
// sends it well under a third of the traffic of a closed-loop load, where
// round-robin would send it half.
func TestP2CAvoidsSlowOrigin(t *testing.T) {
	slow := newOrigin(t, "slow", func(ctx *fasthttp.RequestCtx) { time.Sleep(20 * time.Millisecond) })
	fast := newOrigin(t, "fast", func(ctx *fasthttp.RequestCtx) { time.Sleep(time.Millisecond) })
	cfg := testConfig(slow, fast)
	cfg.Balancer.Policy = "p2c-ewma"
	cfg.Health.Active = false
	e := startEdge(t, cfg, Options{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			req.SetRequestURI("http://" + e.addr + "/")
			for range 60 {
				if err := e.client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
					t.Errorf("request failed: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	s, f := slow.hits.Load(), fast.hits.Load()
	if s*3 > s+f {
		t.Fatalf("slow origin got %d of %d requests", s, s+f)
	}
}

// TestWeightedThroughEdge: weights 3:1 give a 3:1 split exactly over whole cycles.
func TestWeightedThroughEdge(t *testing.T) {
	a, b := newOrigin(t, "a", nil), newOrigin(t, "b", nil)
	cfg := testConfig(a, b)
	cfg.Upstreams[0].Weight = 3
	cfg.Balancer.Policy = "weighted"
	cfg.Health.Active = false
	e := startEdge(t, cfg, Options{})
	counts := map[string]int{}
	for range 40 {
		counts[header(e.do(t, "GET", "/", ""), "X-Served-By")]++
	}
	if counts["a"] != 30 || counts["b"] != 10 {
		t.Fatalf("split = %v, want a:30 b:10", counts)
	}
}

// TestShutdownDrainsInFlight: a request in flight when Shutdown starts still gets
// its answer.
func TestShutdownDrainsInFlight(t *testing.T) {
	started := make(chan struct{})
	o := newOrigin(t, "o1", func(ctx *fasthttp.RequestCtx) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		ctx.SetBodyString("finished")
	})
	cfg := testConfig(o)
	cfg.Health.Active = false
	e := startEdge(t, cfg, Options{})
	got := make(chan string, 1)
	go func() {
		code, body, err := fasthttp.GetTimeout(nil, "http://"+e.addr+"/slow", 5*time.Second)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(rune('0'+code/100)) + string(body)
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r != "2finished" {
		t.Fatalf("in-flight request got %q", r)
	}
}
