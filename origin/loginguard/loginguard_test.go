package loginguard

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newGuard(t *testing.T, c Config) (*Guard, *clock) {
	t.Helper()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	c.Now = clk.now
	g, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return g, clk
}

// step is one action of a table test: after advancing the clock, "fail"
// records a failure, "ok" a success, and "check" asserts Allow's answer.
type step struct {
	user    string
	advance time.Duration
	op      string
	allowed bool
	wait    time.Duration
}

func TestGuard(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"nine failures still allowed", append(repeat("alice", 9), step{user: "alice", op: "check", allowed: true})},
		{"tenth failure blocks for the rest of the window", append(repeat("alice", 10),
			step{user: "alice", advance: 20 * time.Second, op: "check", allowed: false, wait: 40 * time.Second})},
		{"other usernames unaffected", append(repeat("alice", 10), step{user: "bob", op: "check", allowed: true})},
		{"window end unblocks", append(repeat("alice", 10),
			step{user: "alice", advance: time.Minute, op: "check", allowed: true})},
		{"success resets the count", append(append(repeat("alice", 9), step{user: "alice", op: "ok"}),
			step{user: "alice", op: "fail"}, step{user: "alice", op: "check", allowed: true})},
		{"failures of an old window do not carry over", append(append(repeat("alice", 9),
			step{user: "alice", advance: 61 * time.Second, op: "fail"}), step{user: "alice", op: "check", allowed: true})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, clk := newGuard(t, Config{})
			for i, s := range tt.steps {
				clk.advance(s.advance)
				switch s.op {
				case "fail":
					g.Fail(s.user)
				case "ok":
					g.Succeed(s.user)
				case "check":
					wait, ok := g.Allow(s.user)
					if ok != s.allowed || wait != s.wait {
						t.Fatalf("step %d: Allow(%q) = %v, %v; want %v, %v", i, s.user, wait, ok, s.wait, s.allowed)
					}
				}
			}
		})
	}
}

func repeat(user string, n int) []step {
	out := make([]step, n)
	for i := range out {
		out[i] = step{user: user, op: "fail"}
	}
	return out
}

// TestBoundedMemory sprays far more usernames than MaxKeys: the guard keeps
// at most MaxKeys entries, and expired windows stop blocking.
func TestBoundedMemory(t *testing.T) {
	g, clk := newGuard(t, Config{MaxKeys: 320})
	for i := range 10_000 {
		g.Fail("spray" + strconv.Itoa(i))
	}
	if n := g.Len(); n > 320 {
		t.Fatalf("tracking %d usernames, want at most 320", n)
	}
	clk.advance(2 * time.Minute)
	g.Fail("fresh")
	if _, ok := g.Allow("spray1"); !ok {
		t.Fatal("an expired window still blocks")
	}
}

func TestNilGuardAllows(t *testing.T) {
	var g *Guard
	g.Fail("x")
	g.Succeed("x")
	if _, ok := g.Allow("x"); !ok {
		t.Fatal("nil guard refused")
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Max: -1, Window: -1, MaxKeys: -1}.Validate()
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("got %v", err)
	}
	for _, f := range []string{"Max", "Window", "MaxKeys"} {
		if !strings.Contains(err.Error(), f+" must") {
			t.Errorf("error does not name %s: %v", f, err)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrent(t *testing.T) {
	g, _ := newGuard(t, Config{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				u := "u" + strconv.Itoa((w*500+i)%50)
				g.Fail(u)
				g.Allow(u)
			}
		}()
	}
	wg.Wait()
	if _, ok := g.Allow("u1"); ok {
		t.Fatal("80 failures of u1 in one window still allowed")
	}
}

func BenchmarkAllow(b *testing.B) {
	g, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	g.Fail("alice")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			g.Allow("alice")
		}
	})
}
