//go:build linux

package evloop

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// testBatchWait is EVLOOP_TEST_BATCH_WAIT (a duration, e.g. 1ms): the
// loops the suite starts (startLoops) coalesce their wake-ups with it, so the
// whole suite can run with coalescing on. Unset: off, the default.
func testBatchWait(t testing.TB) time.Duration {
	v := os.Getenv("EVLOOP_TEST_BATCH_WAIT")
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > MaxBatchWait {
		t.Fatalf("EVLOOP_TEST_BATCH_WAIT=%q: want a duration 0..%s", v, MaxBatchWait)
	}
	return d
}

// TestBatcherDecision: a loop coalesces only with coalescing on, after a
// round that had events and left nothing to go on with, while the last whole
// window's event rate was at least one per wait; the verdict is renewed at
// each window's end, from that window alone.
func TestBatcherDecision(t *testing.T) {
	const ms = int64(time.Millisecond)
	type round struct {
		at    int64 // ns since the start
		n     int
		again bool
		want  bool
	}
	tests := []struct {
		name   string
		wait   time.Duration
		rounds []round
	}{
		{"off", 0, []round{{0, 100, false, false}, {20 * ms, 100, false, false}, {40 * ms, 100, false, false}}},
		// wait 1 ms: the window is 16 ms, the threshold 16 events in it.
		{"first round: no verdict yet", time.Millisecond, []round{{1, 1, false, false}}},
		{"busy window: coalesce", time.Millisecond, []round{{1, 1, false, false}, {17 * ms, 16, false, true}, {18 * ms, 1, false, true}}},
		{"just below the rate", time.Millisecond, []round{{1, 1, false, false}, {17 * ms, 15, false, false}}},
		{"exactly one per wait", time.Millisecond, []round{{1, 0, false, false}, {16 * ms, 16, false, true}}},
		{"a round with no events parks", time.Millisecond, []round{{1, 1, false, false}, {17 * ms, 40, false, true}, {18 * ms, 0, false, false}}},
		{"work left over (again): no sleep", time.Millisecond, []round{{1, 1, false, false}, {17 * ms, 40, true, false}, {18 * ms, 1, false, true}}},
		{"rate falls: the next window stops it", time.Millisecond, []round{{1, 1, false, false}, {17 * ms, 40, false, true}, {25 * ms, 1, false, true}, {40 * ms, 1, false, false}}},
		{"a long park ends the busy verdict", time.Millisecond, []round{{1, 1, false, false}, {17 * ms, 40, false, true}, {3000 * ms, 1, false, false}}},
		// wait 500 µs: 8 ms window, 16 events.
		{"half a millisecond, 3000/s", 500 * time.Microsecond, []round{{1, 0, false, false}, {8 * ms, 24, false, true}}},
		{"half a millisecond, 1000/s", 500 * time.Microsecond, []round{{1, 0, false, false}, {8 * ms, 8, false, false}}},
		{"above the bound is the bound", time.Second, []round{{1, 0, false, false}, {32 * ms, 16, false, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBatcher(tt.wait)
			for i, r := range tt.rounds {
				if got := b.after(r.at, r.n, r.again); got != r.want {
					t.Fatalf("round %d (at %v, %d events, again %v): coalesce = %v, want %v", i, time.Duration(r.at), r.n, r.again, got, r.want)
				}
			}
		})
	}
}

// TestPollWaitMute: a nested pollWait's mute hides the loop's events from
// the poller (its descriptor does not read ready), the next wait unmutes and
// returns an event that came while muted without waiting, and a later event
// still ends a wait. An unnested one cannot mute.
func TestPollWaitMute(t *testing.T) {
	one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	ready := func(w *pollWait) bool {
		fds := []unix.PollFd{{Fd: int32(w.pfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	_, _, plain := pollSetNest(t, false)
	if plain.mute() {
		t.Fatal("an unnested pollWait muted")
	}
	_, efd, w := pollSetNest(t, true)
	if !w.mute() {
		t.Fatal("a nested pollWait did not mute")
	}
	if !w.mute() {
		t.Fatal("muting a muted pollWait again failed") // idempotent
	}
	unix.Write(efd, one)
	if ready(w) {
		t.Fatal("muted, the poller's descriptor reads ready")
	}
	events := make([]unix.EpollEvent, 8)
	start := time.Now()
	if n, err := w.wait(events, 30*time.Second); n != 1 || err != nil || int(events[0].Fd) != efd {
		t.Fatalf("wait after mute = %d, %v; want the eventfd's event", n, err)
	}
	if w.muted {
		t.Fatal("wait left the set muted")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the pending event took %s", d)
	}
	var buf [8]byte
	unix.Read(efd, buf[:])
	if ready(w) {
		t.Fatal("drained, the poller's descriptor reads ready")
	}
	unix.Write(efd, one)
	if !ready(w) {
		t.Fatal("unmuted, an event does not make the poller's descriptor ready")
	}
	unix.Read(efd, buf[:])
	time.AfterFunc(20*time.Millisecond, func() { unix.Write(efd, one) })
	if n, err := w.wait(events, 30*time.Second); n != 1 || err != nil {
		t.Fatalf("wait = %d, %v; want the event written during it", n, err)
	}
}

// TestBatchLoopAnswers: with coalescing on, clients sending faster than one
// request per wait all get their answers, the loop does coalesce (its
// counter moves), and no answer waits anywhere near a generous bound; a
// client sending one request every 20 ms (below one per wait) is answered
// without the loop coalescing at all.
func TestBatchLoopAnswers(t *testing.T) {
	const wait = time.Millisecond
	s, addr := startLoops(t, Config{Loops: 1, BatchWait: wait, Handler: echo,
		Inline: func(ctx *fasthttp.RequestCtx) (bool, fasthttp.RequestHandler) {
			ctx.SetBodyString("hit " + string(ctx.Path()))
			return true, nil
		}})
	ask := func(c net.Conn, br *bufio.Reader, path string) time.Duration {
		t.Helper()
		start := time.Now()
		if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
			t.Error(err)
			return 0
		}
		var r fasthttp.Response
		if err := r.Read(br); err != nil {
			t.Error(err)
			return 0
		}
		if string(r.Body()) != "hit "+path {
			t.Errorf("%s: body %q", path, r.Body())
		}
		return time.Since(start)
	}
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(60 * time.Second))
		return c, bufio.NewReader(c)
	}

	// Sparse: 15 requests 20 ms apart (50/s against the threshold's 1000/s).
	c, br := dial()
	for i := 0; i < 15; i++ {
		ask(c, br, fmt.Sprintf("/sparse/%d", i))
		time.Sleep(20 * time.Millisecond)
	}
	if n := s.Stats().Coalesced; n != 0 {
		t.Fatalf("sparse traffic: the loop coalesced %d times", n)
	}

	// Busy: 8 connections asking back to back.
	const conns, per = 8, 300
	var wg sync.WaitGroup
	var mu sync.Mutex
	var worst time.Duration
	for k := 0; k < conns; k++ {
		c, br := dial()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				d := ask(c, br, fmt.Sprintf("/busy/%d/%d", k, i))
				mu.Lock()
				worst = max(worst, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if n := s.Stats().Coalesced; n == 0 {
		t.Fatal("busy traffic: the loop never coalesced")
	}
	// The wait adds at most 1 ms to an answer; the bound is generous for
	// a shared box and the race detector, and catches a lost wake-up (an
	// answer held to the loop's 100 ms tick or longer would show).
	if worst > 2*time.Second {
		t.Fatalf("slowest answer %s", worst)
	}
	t.Logf("coalesced %d times; slowest answer %s", s.Stats().Coalesced, worst)
}
