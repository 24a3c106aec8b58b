package cache

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/novashop/edge/internal/testenv"
)

// deadURL is a Redis URL nothing listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "redis://" + addr + "/0"
}

func TestNewWithRedisDownPassesThrough(t *testing.T) {
	start := time.Now()
	c := newTestCache(t, deadURL(t), randName(t), nil)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("New took %v with Redis down", d)
	}
	if c.Available() {
		t.Fatal("Available with Redis down")
	}
	o := newOrigin(static(200, "through", "Cache-Control", "max-age=60", "Cache-Tag", "x"))
	for i := 0; i < 3; i++ {
		t0 := time.Now()
		r := do(c, o, "GET", "/p")
		if r.StatusCode() != 200 || string(r.Body()) != "through" || !strings.Contains(cacheStatus(r), "fwd=bypass") {
			t.Fatalf("pass-through answer: %d %q %q", r.StatusCode(), r.Body(), cacheStatus(r))
		}
		if len(r.Header.Peek("Cache-Tag")) != 0 {
			t.Fatal("Cache-Tag forwarded in pass-through")
		}
		if d := time.Since(t0); d > 20*time.Millisecond {
			t.Fatalf("pass-through request took %v", d)
		}
	}
	if _, err := c.Purge(context.Background(), nil, []string{"x"}, "", false); err == nil {
		t.Fatal("Purge with Redis down returned no error")
	}
}

// TestRedisOutageAndRecovery kills Redis under a serving cache: requests
// keep succeeding straight through, and caching resumes by itself when
// Redis is back.
func TestRedisOutageAndRecovery(t *testing.T) {
	rs := testenv.FreshRedis(t)
	c := newTestCache(t, rs.URL, randName(t), nil)
	o := newOrigin(static(200, "body", "Cache-Control", "max-age=600"))
	do(c, o, "GET", "/o")
	eventually(t, 2*time.Second, "hit", func() bool { return isHit(do(c, o, "GET", "/o")) })

	rs.Kill()
	var worst time.Duration
	bypassed := false
	for i := 0; i < 20; i++ {
		t0 := time.Now()
		r := do(c, o, "GET", "/o")
		if d := time.Since(t0); d > worst {
			worst = d
		}
		if r.StatusCode() != 200 || string(r.Body()) != "body" {
			t.Fatalf("request %d during the outage: %d %q %q", i, r.StatusCode(), r.Body(), cacheStatus(r))
		}
		// Until the edge notices the dead connection it may still answer
		// from memory; once it has passed a request through, never again.
		if isHit(r) && bypassed {
			t.Fatalf("request %d served from cache state that can no longer be trusted", i)
		}
		bypassed = bypassed || strings.Contains(cacheStatus(r), "fwd=bypass")
		time.Sleep(5 * time.Millisecond)
	}
	if !bypassed {
		t.Fatal("no request was passed through during the outage")
	}
	t.Logf("slowest request during the outage: %v", worst)
	if worst > 500*time.Millisecond {
		t.Fatalf("a request took %v during the outage", worst)
	}
	if c.Available() {
		t.Fatal("still Available after Redis died")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rs.Start(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "caching to resume", c.Available)
	do(c, o, "GET", "/o")
	eventually(t, 2*time.Second, "hit after recovery", func() bool { return isHit(do(c, o, "GET", "/o")) })
}

// TestBreakerToleratesLoneTimeouts: a command that only timed out (the
// edge's run queue at peak, with Redis fine) does not trip the breaker;
// timeouts that go on with nothing succeeding for breakerWindow do, and a
// connection error trips it at once.
func TestBreakerToleratesLoneTimeouts(t *testing.T) {
	// The default timeout: the test is about its window (500 ms).
	c := newTestCacheWith(t, testenv.Redis(t), randName(t), func(c *Config) { c.RedisTimeout = DefaultRedisTimeout })
	timeout := fmt.Errorf("rueidis: %w", context.DeadlineExceeded)

	c.t.fail(timeout)
	c.t.fail(timeout)
	if !c.Available() {
		t.Fatal("two timeouts in a row tripped the breaker")
	}
	c.t.succeeded()
	time.Sleep(breakerWindow(c.cfg) + 50*time.Millisecond)
	c.t.fail(timeout)
	if !c.Available() {
		t.Fatal("a timeout after a success tripped the breaker: the window did not restart")
	}
	time.Sleep(breakerWindow(c.cfg) + 50*time.Millisecond)
	c.t.fail(timeout)
	if c.Available() {
		t.Fatalf("timeouts for %v with no success did not trip the breaker", breakerWindow(c.cfg))
	}
	eventually(t, 10*time.Second, "the probe to restore caching", c.Available)

	c.t.fail(io.ErrUnexpectedEOF)
	if c.Available() {
		t.Fatal("a connection error did not trip the breaker at once")
	}
}
