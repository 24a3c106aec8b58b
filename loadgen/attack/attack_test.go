package attack

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/novashop/edge/loadgen/campaign"
	vegeta "github.com/tsenart/vegeta/v12/lib"
	"github.com/valyala/fasthttp"
)

// serve starts a fasthttp server on 127.0.0.1 and returns its base URL.
func serve(t *testing.T, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{Handler: h}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown() })
	return "http://" + ln.Addr().String()
}

func parse(t *testing.T, y string) *campaign.Campaign {
	t.Helper()
	c, err := campaign.Parse([]byte(y), "t")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const listYAML = `
duration: 1s
rate: [{profile: constant, rps: 100}]
feeders:
  cursor: {pool: 10}
requests:
  - {name: list, path: /api/products/, extract: {cursor: next}}
  - {name: next, path: "/api/products/?cursor=${cursor}"}
`

func TestRunCountsAndFollowsCursors(t *testing.T) {
	var cursors atomic.Int64
	base := serve(t, func(ctx *fasthttp.RequestCtx) {
		if len(ctx.QueryArgs().Peek("cursor")) > 0 {
			cursors.Add(1)
			ctx.Response.Header.Set("Cache-Status", "novashop-edge; hit")
		} else {
			ctx.Response.Header.Set("Cache-Status", "novashop-edge; fwd=miss; stored")
		}
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"results": [], "next": "c1"}`)
	})
	var seen atomic.Int64
	var progress bytes.Buffer
	out, err := Run(context.Background(), parse(t, listYAML), Options{
		Name: "srv", URL: base, Progress: &progress,
		OnResult: func(r *vegeta.Result) error {
			if r.Body != nil {
				return errors.New("bodies must be dropped before OnResult")
			}
			seen.Add(1)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := out.Metrics.Summary()
	if s.Requests < 70 || s.Requests > 101 {
		t.Errorf("requests = %d, want about 100 in 1 s at 100/s", s.Requests)
	}
	if s.SuccessRatio != 1 {
		t.Errorf("success ratio = %g, errors %v", s.SuccessRatio, s.Errors)
	}
	if uint64(seen.Load()) != s.Requests {
		t.Errorf("OnResult saw %d results, metrics %d", seen.Load(), s.Requests)
	}
	if cursors.Load() == 0 || s.CacheStatus["hit"] != uint64(cursors.Load()) || s.CacheStatus["miss"]+s.CacheStatus["hit"] != s.Requests {
		t.Errorf("cursor requests %d, cache status %v", cursors.Load(), s.CacheStatus)
	}
	if !strings.Contains(progress.String(), "req/s") || !strings.HasSuffix(progress.String(), "\n") {
		t.Errorf("progress line = %q", progress.String())
	}
	if out.Interrupted {
		t.Error("a run that ended on time reports interrupted")
	}
}

// TestLatencyFromIntendedSendTime pins the coordinated-omission fix: with
// one worker and a 100 ms server, a 20/s schedule falls behind, and the
// latency of late requests includes the time they waited to be sent.
func TestLatencyFromIntendedSendTime(t *testing.T) {
	base := serve(t, func(ctx *fasthttp.RequestCtx) {
		time.Sleep(100 * time.Millisecond)
		ctx.SetBodyString("ok")
	})
	out, err := Run(context.Background(), parse(t, `
duration: 1s
rate: [{profile: constant, rps: 20}]
requests: [{name: slow, path: /}]
`), Options{Name: "slow", URL: base, MaxWorkers: 1})
	if err != nil {
		t.Fatal(err)
	}
	m := out.Metrics
	if m.Requests < 5 {
		t.Fatalf("only %d requests", m.Requests)
	}
	// Request k (from 0) is due at 50(k+1) ms but leaves at about 100k ms:
	// by the fifth the wait alone is 150 ms, on top of 100 ms of service.
	if m.MaxLatency < 200*time.Millisecond {
		t.Errorf("max latency %s: the wait behind a stalled server is not counted", m.MaxLatency)
	}
	if out.MaxSendLag < 100*time.Millisecond {
		t.Errorf("send lag %s, want the generator to report it fell behind", out.MaxSendLag)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	base := serve(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	out, err := Run(ctx, parse(t, `
duration: 1m
rate: [{profile: constant, rps: 50}]
requests: [{name: r, path: /}]
`), Options{Name: "x", URL: base})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("cancel did not stop the attack")
	}
	if !out.Interrupted || out.Metrics.Requests == 0 {
		t.Errorf("interrupted = %v with %d requests; want what ran reported", out.Interrupted, out.Metrics.Requests)
	}
}

func TestUnreachableTargetCountsErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	out, err := Run(context.Background(), parse(t, `
duration: 200ms
rate: [{profile: constant, rps: 50}]
requests: [{name: r, path: /}]
`), Options{Name: "down", URL: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	s := out.Metrics.Summary()
	if s.Requests == 0 || s.SuccessRatio != 0 || s.StatusCodes["0"] != s.Requests {
		t.Errorf("summary = %+v", s)
	}
	for e := range s.Errors {
		if strings.Contains(e, "http://") {
			t.Errorf("error key keeps the URL: %q", e)
		}
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	c := parse(t, listYAML)
	for _, o := range []Options{
		{URL: "http://127.0.0.1:1"},
		{Name: "x", URL: "127.0.0.1:1"},
		{Name: "x", URL: "http://127.0.0.1:1", Rate: -1},
		{Name: "x", URL: "http://127.0.0.1:1", Duration: -time.Second},
	} {
		if _, err := Run(context.Background(), c, o); err == nil {
			t.Errorf("Run(%+v) accepted bad options", o)
		}
	}
}

// TestUnreadBodiesAreDrained checks that answers nobody extracts from are
// drained unread, still counted by their Content-Length, while answers that
// feed a pool are read.
func TestUnreadBodiesAreDrained(t *testing.T) {
	page := strings.Repeat("x", 10000)
	base := serve(t, func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/list" {
			ctx.SetBodyString(`{"next": "c"}`)
			return
		}
		ctx.SetBodyString(page)
	})
	var read, drained atomic.Int64
	out, err := Run(context.Background(), parse(t, `
duration: 500ms
rate: [{profile: constant, rps: 100}]
feeders: {cursor: {pool: 4}}
requests:
  - {name: list, path: /list, extract: {cursor: next}}
  - {name: page, path: "/page?c=${cursor}"}
`), Options{Name: "x", URL: base, OnResult: func(r *vegeta.Result) error {
		switch {
		case strings.Contains(r.URL, "#page") && r.BytesIn == 0:
			drained.Add(1)
		case strings.Contains(r.URL, "#list") && r.BytesIn > 0:
			read.Add(1)
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	s := out.Metrics.Summary()
	if drained.Load() == 0 || read.Load() == 0 || s.SuccessRatio != 1 {
		t.Fatalf("drained %d pages, read %d lists, success %g", drained.Load(), read.Load(), s.SuccessRatio)
	}
	if want := uint64(drained.Load())*10000 + uint64(read.Load())*13; s.BytesIn != want {
		t.Errorf("bytes in = %d, want %d from Content-Length and read bodies", s.BytesIn, want)
	}
}

// TestClosesIdleConnections checks that a finished run leaves no idle
// keep-alive connection open on its target.
func TestClosesIdleConnections(t *testing.T) {
	var open atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") },
		ConnState: func(_ net.Conn, st fasthttp.ConnState) {
			switch st {
			case fasthttp.StateNew:
				open.Add(1)
			case fasthttp.StateClosed:
				open.Add(-1)
			}
		},
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown() })
	if _, err := Run(context.Background(), parse(t, `
duration: 300ms
rate: [{profile: constant, rps: 50}]
requests: [{name: r, path: /}]
`), Options{Name: "x", URL: "http://" + ln.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for open.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := open.Load(); n != 0 {
		t.Errorf("%d connections still open after the run", n)
	}
}

// Not on a terminal, progress is whole lines at intervals (target, time
// left, rate, errors so far), never carriage-return redraws; on a
// terminal it is one line redrawn in place.
func TestProgressPlainAndTerminal(t *testing.T) {
	old := plainEvery
	plainEvery = 500 * time.Millisecond
	t.Cleanup(func() { plainEvery = old })
	url := serve(t, func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(503) })
	c := parse(t, `
duration: 2100ms
rate: [{profile: constant, rps: 40}]
requests: [{name: r, path: /}]
`)
	var plain, term strings.Builder
	if _, err := Run(context.Background(), c, Options{Name: "t", URL: url, Progress: PlainWriter{&plain}}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(plain.String()), "\n")
	if len(lines) < 2 || strings.Contains(plain.String(), "\r") {
		t.Fatalf("plain progress = %q, want whole lines at each interval", plain.String())
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "loadgen: t: ") || !strings.Contains(l, "left") || strings.Contains(l, " 0 errors") || !strings.Contains(l, "errors") {
			t.Errorf("plain line %q lacks target, time left or the errors so far", l)
		}
	}
	c2 := parse(t, `
duration: 1100ms
rate: [{profile: constant, rps: 40}]
requests: [{name: r, path: /}]
`)
	if _, err := Run(context.Background(), c2, Options{Name: "t", URL: url, Progress: &term}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(term.String(), "\rt ") || !strings.Contains(term.String(), "left") || !strings.HasSuffix(term.String(), "\n") {
		t.Errorf("terminal progress = %q", term.String())
	}
}
