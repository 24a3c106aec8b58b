package proxy

import (
	"bytes"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// healthPathAnswers404 makes an origin handler that answers 404 on /hc (the
// health path of these tests) while bad holds, and 200 on everything else.
func healthPathAnswers404(bad *atomic.Bool) func(ctx *fasthttp.RequestCtx) {
	return func(ctx *fasthttp.RequestCtx) {
		if bad.Load() && string(ctx.Path()) == "/hc" {
			ctx.SetStatusCode(fasthttp.StatusNotFound)
			return
		}
		ctx.SetBodyString("ok")
	}
}

func poolPanicGauge(t *testing.T, e *edge) string {
	t.Helper()
	var b bytes.Buffer
	e.s.metrics.WritePrometheus(&b)
	for _, line := range bytes.Split(b.Bytes(), []byte("\n")) {
		if bytes.HasPrefix(line, []byte("edge_pool_panic ")) {
			return string(line)
		}
	}
	t.Fatal("no edge_pool_panic series")
	return ""
}

// TestPanicThreshold: when health checks fail on every host while the origins
// still serve (a health path that answers 404), the pool balances over all
// hosts instead of answering 503 to everything (issue 14 "All hosts down"),
// says so in a gauge and one log line, and leaves panic when the checks pass
// again. With the threshold at 0 the edge keeps the old behaviour (503), which
// shows the test can fail.
func TestPanicThreshold(t *testing.T) {
	tests := []struct {
		name      string
		origins   int
		threshold float64
		want      int
	}{
		{"one origin, 404 health path", 1, 0.5, 200},
		{"two origins, 404 health path on both", 2, 0.5, 200},
		{"panic off", 1, 0, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var origins []*origin
			var bad atomic.Bool
			bad.Store(true)
			for i := range tt.origins {
				origins = append(origins, newOrigin(t, string(rune('a'+i)), healthPathAnswers404(&bad)))
			}
			cfg := testConfig(origins...)
			cfg.Health.Path = "/hc"
			cfg.Health.PanicThreshold = tt.threshold
			core, logs := observer.New(zapcore.InfoLevel)
			e := startEdge(t, cfg, Options{Logger: zap.New(core)})
			pool := e.s.rt.Load().pool
			waitUntil(t, "every host marked down", 3*time.Second, func() bool {
				for _, u := range pool.All() {
					if u.Healthy() {
						return false
					}
				}
				return true
			})
			served := map[string]int{}
			for range 40 {
				r := e.do(t, "GET", "/products/", "")
				if r.StatusCode() != tt.want {
					t.Fatalf("GET with every health check failing: %d %s, want %d", r.StatusCode(), r.Body(), tt.want)
				}
				served[header(r, "X-Served-By")]++
			}
			if tt.want != 200 {
				if g := poolPanicGauge(t, e); g != "edge_pool_panic 0" {
					t.Fatalf("gauge %q with panic off", g)
				}
				return
			}
			if len(served) != tt.origins {
				t.Fatalf("served by %v, want all %d origins", served, tt.origins)
			}
			if g := poolPanicGauge(t, e); g != "edge_pool_panic 1" {
				t.Fatalf("gauge %q in panic", g)
			}
			if n := logs.FilterMessageSnippet("pool in panic").Len(); n != 1 {
				t.Fatalf("%d 'pool in panic' log lines, want 1", n)
			}
			bad.Store(false)
			waitUntil(t, "pool leaves panic", 3*time.Second, func() bool { return !pool.Available().Panic })
			if g := poolPanicGauge(t, e); g != "edge_pool_panic 0" {
				t.Fatalf("gauge %q after the checks passed again", g)
			}
			if n := logs.FilterMessageSnippet("pool left panic").Len(); n != 1 {
				t.Fatalf("%d 'pool left panic' log lines, want 1", n)
			}
		})
	}
}

// cutMidAnswer answers /cut with half a response and closes the connection, as
// the conformance run's origin does on purpose; everything else gets 200.
func cutMidAnswer(ctx *fasthttp.RequestCtx) {
	if string(ctx.Path()) != "/cut" {
		ctx.SetBodyString("ok")
		return
	}
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"))
	})
}

// TestEjectionKeepsLastHost: an origin that closes a few connections
// mid-answer fails those requests, but passive ejection must not take the
// last host that may take traffic, so the next, unrelated requests are
// answered (issue 14: they got 502 with "tries":0). Panic is off here, so
// only the ejection cap can save them.
func TestEjectionKeepsLastHost(t *testing.T) {
	tests := []struct {
		name    string
		percent int
		downToo bool // a second origin whose health path answers 404
	}{
		{"single origin, max_ejected_percent 100", 100, false},
		{"single origin, max_ejected_percent 50", 50, false},
		{"other host down by health checks, max_ejected_percent 50", 50, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, "cutter", cutMidAnswer)
			origins := []*origin{o}
			if tt.downToo {
				// Down by its checks, and cutting /cut too, so a retry of
				// /cut there fails as well.
				origins = append(origins, newOrigin(t, "down", func(ctx *fasthttp.RequestCtx) {
					if string(ctx.Path()) == "/hc" {
						ctx.SetStatusCode(fasthttp.StatusNotFound)
						return
					}
					cutMidAnswer(ctx)
				}))
			}
			cfg := testConfig(origins...)
			cfg.Health.Path = "/hc"
			cfg.Health.PassiveFailures = 3
			cfg.Health.MaxEjectedPercent = tt.percent
			cfg.Health.PanicThreshold = 0
			core, logs := observer.New(zapcore.InfoLevel)
			e := startEdge(t, cfg, Options{Logger: zap.New(core)})
			pool := e.s.rt.Load().pool
			if tt.downToo {
				waitUntil(t, "the second origin marked down", 3*time.Second, func() bool { return !pool.Get("down").Healthy() })
			}
			for range 5 {
				if r := e.do(t, "GET", "/cut", ""); r.StatusCode() != fasthttp.StatusBadGateway {
					t.Fatalf("GET /cut: %d, want 502", r.StatusCode())
				}
			}
			if !pool.Get("cutter").Healthy() {
				t.Fatal("the last available host was ejected")
			}
			// Fifteen failed tries in a row: one warning, not one per try.
			if n := logs.FilterMessageSnippet("last available host").Len(); n != 1 {
				t.Fatalf("%d 'last available host' warnings for one failure streak, want 1", n)
			}
			for i := range 20 {
				r := e.do(t, "GET", "/ok", "")
				if r.StatusCode() != 200 || header(r, "X-Served-By") != "cutter" {
					t.Fatalf("unrelated GET %d after the cut answers: %d %s", i, r.StatusCode(), r.Body())
				}
			}
		})
	}
}

// TestRetryReachesAnEjectedHost: one host is ejected (a blip a moment ago,
// it answers again) and the other, the only one left in the set, dies. Until
// health checks notice, every request's first try fails on the dead host; the
// retry must go to the ejected host rather than the dead one again (found by
// internal/e2e TestFailoverTail: about 3,000 GETs got 502 in the 400 ms before
// the active checks took the dead host down).
func TestRetryReachesAnEjectedHost(t *testing.T) {
	blip := newOrigin(t, "blip", nil)
	dying := newOrigin(t, "dying", nil)
	cfg := testConfig(blip, dying)
	cfg.Health.Active = false
	cfg.Health.PassiveFailures = 3
	cfg.Health.EjectBase, cfg.Health.EjectMax = time.Minute, time.Minute
	e := startEdge(t, cfg, Options{})
	rt := e.s.rt.Load()
	rt.health.Passive(rt.pool.Get("blip"), 3)
	if rt.pool.Get("blip").Healthy() {
		t.Fatal("blip was not ejected")
	}
	dying.kill()
	for i := range 10 {
		r := e.do(t, "GET", "/x", "")
		if r.StatusCode() != 200 || header(r, "X-Served-By") != "blip" {
			t.Fatalf("GET %d with the only available host dead: %d %s", i, r.StatusCode(), r.Body())
		}
	}
}
