package health

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/novashop/edge/proxy/upstream"
	"github.com/valyala/fasthttp"
)

func poolOf(t *testing.T, urls ...string) *upstream.Pool {
	t.Helper()
	var hosts []*upstream.Upstream
	for i, raw := range urls {
		u, err := upstream.New(fmt.Sprintf("h%d", i), raw, 1, upstream.Options{DialTimeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, u)
	}
	p, err := upstream.NewPool(hosts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func cfg() Config {
	return Config{Active: true, Path: "/healthz", Interval: 50 * time.Millisecond, Timeout: 40 * time.Millisecond,
		Rise: 2, Fall: 3, PassiveFailures: 3, EjectBase: time.Second, EjectMax: 4 * time.Second, MaxEjectedPercent: 50}
}

func TestActiveRiseFall(t *testing.T) {
	tests := []struct {
		name    string
		results string // p = pass, f = fail
		healthy bool
	}{
		{"starts healthy", "", true},
		{"two failures keep it", "ff", true},
		{"three failures take it down", "fff", false},
		{"interrupted failures keep it", "ffpff", true},
		{"one pass is not enough", "fffp", false},
		{"two passes bring it back", "fffpp", true},
		{"interrupted passes", "fffpfp", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := poolOf(t, "http://127.0.0.1:1")
			c := New(p, cfg(), nil)
			u := p.All()[0]
			for _, r := range tt.results {
				c.ActiveResult(u, r == 'p')
			}
			if u.Healthy() != tt.healthy || (len(p.Available().Hosts) == 1) != tt.healthy {
				t.Fatalf("healthy = %v, want %v", u.Healthy(), tt.healthy)
			}
		})
	}
}

func TestPassiveEjectionBackoff(t *testing.T) {
	p := poolOf(t, "http://127.0.0.1:1", "http://127.0.0.1:2")
	c := New(p, cfg(), nil)
	now := time.Unix(1000, 0)
	c.SetClock(func() time.Time { return now })
	u := p.All()[0]
	var ejections atomic.Int32
	c.OnEject = func(*upstream.Upstream) { ejections.Add(1) }

	c.Passive(u, 2)
	if !u.Healthy() {
		t.Fatal("ejected below the threshold")
	}
	// Back-off doubles: 1s, 2s, 4s, then capped at 4s.
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		c.Passive(u, 3)
		if u.Healthy() || c.Ejected() != 1 {
			t.Fatalf("ejection %d: healthy=%v ejected=%d", i, u.Healthy(), c.Ejected())
		}
		now = now.Add(want - time.Millisecond)
		c.Tick()
		if u.Healthy() {
			t.Fatalf("ejection %d ended before %v", i, want)
		}
		now = now.Add(time.Millisecond)
		c.Tick()
		if !u.Healthy() || c.Ejected() != 0 {
			t.Fatalf("ejection %d did not end after %v", i, want)
		}
	}
	if ejections.Load() != 4 {
		t.Fatalf("OnEject called %d times", ejections.Load())
	}
	// Stable for longer than EjectMax: the back-off starts over at EjectBase.
	now = now.Add(5 * time.Second)
	c.Passive(u, 3)
	now = now.Add(time.Second)
	c.Tick()
	if !u.Healthy() {
		t.Fatal("back-off did not reset after a stable period")
	}
}

// TestMaxEjectedPercent: passive ejection never removes more than the
// configured share of hosts (rounded down, in the pool's favour), and never
// the last host that may take requests, whether the others are ejected or
// down by active checks (issue 14: "the ejection cap must never take a
// pool's last healthy host").
func TestMaxEjectedPercent(t *testing.T) {
	tests := []struct {
		hosts, percent int
		down           int // hosts active checks took down first
		want           int // hosts ejected
	}{
		{hosts: 2, percent: 50, want: 1},
		{hosts: 4, percent: 50, want: 2},
		{hosts: 3, percent: 50, want: 1},
		{hosts: 4, percent: 0, want: 0},
		{hosts: 5, percent: 20, want: 1},
		// The last available host stays, whatever the percentage says.
		{hosts: 4, percent: 100, want: 3},
		{hosts: 1, percent: 100, want: 0},
		{hosts: 1, percent: 50, want: 0},
		{hosts: 2, percent: 50, down: 1, want: 0},
		{hosts: 3, percent: 100, down: 2, want: 0},
		{hosts: 3, percent: 100, down: 1, want: 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d hosts %d%% %d down", tt.hosts, tt.percent, tt.down), func(t *testing.T) {
			var urls []string
			for i := range tt.hosts {
				urls = append(urls, fmt.Sprintf("http://127.0.0.1:%d", i+1))
			}
			p := poolOf(t, urls...)
			conf := cfg()
			conf.MaxEjectedPercent = tt.percent
			c := New(p, conf, nil)
			for _, u := range p.All()[:tt.down] {
				for range conf.Fall {
					c.ActiveResult(u, false)
				}
			}
			for _, u := range p.All()[tt.down:] {
				c.Passive(u, 10)
			}
			if c.Ejected() != tt.want || len(p.Available().Hosts) != tt.hosts-tt.down-tt.want {
				t.Fatalf("ejected %d (available %d), want %d", c.Ejected(), len(p.Available().Hosts), tt.want)
			}
		})
	}
}

func TestSlowStartOnReturn(t *testing.T) {
	p := poolOf(t, "http://127.0.0.1:1")
	conf := cfg()
	conf.SlowStart = 10 * time.Second
	c := New(p, conf, nil)
	u := p.All()[0]
	for range 3 {
		c.ActiveResult(u, false)
	}
	c.ActiveResult(u, true)
	c.ActiveResult(u, true)
	if st := u.State(time.Now()); st != upstream.StateSlowStart {
		t.Fatalf("state after return = %v, want slow-start", st)
	}
}

// testOrigin serves /healthz with the status held in code; close stops it.
func testOrigin(t *testing.T, code *atomic.Int32) (url string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(int(code.Load())) }}
	go s.Serve(ln) //nolint:errcheck
	return "http://" + ln.Addr().String(), func() { _ = s.Shutdown() }
}

func TestCheckOnceAgainstServer(t *testing.T) {
	var code atomic.Int32
	code.Store(200)
	url, stop := testOrigin(t, &code)
	defer stop()
	p := poolOf(t, url)
	c := New(p, cfg(), nil)
	if !c.CheckOnce(p.All()[0]) {
		t.Fatal("200 counted as failure")
	}
	code.Store(503)
	if c.CheckOnce(p.All()[0]) {
		t.Fatal("503 counted as pass")
	}
	dead := poolOf(t, "http://127.0.0.1:1")
	if New(dead, cfg(), nil).CheckOnce(dead.All()[0]) {
		t.Fatal("refused connection counted as pass")
	}
}

// TestRunFlipsHealth runs the real loop: the host goes down when /healthz fails and
// rejoins by itself when it passes again.
func TestRunFlipsHealth(t *testing.T) {
	var code atomic.Int32
	code.Store(200)
	url, stop := testOrigin(t, &code)
	defer stop()
	p := poolOf(t, url)
	u := p.All()[0]
	c := New(p, cfg(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	waitFor := func(healthy bool) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for u.Healthy() != healthy {
			if time.Now().After(deadline) {
				t.Fatalf("host healthy=%v after 3s, want %v", u.Healthy(), healthy)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	code.Store(500)
	waitFor(false)
	code.Store(200)
	waitFor(true)
}

// TestNewKeepsCarriedOverVerdict pins the reload case: a down host handed to a new
// Checker stays down until it passes Rise checks (or returns at once without active
// checks, since nothing else could bring it back).
func TestNewKeepsCarriedOverVerdict(t *testing.T) {
	p := poolOf(t, "http://127.0.0.1:1")
	u := p.All()[0]
	p.SetHealthy(u, false, 0)
	c := New(p, cfg(), nil)
	if u.Healthy() {
		t.Fatal("down host came back without checks")
	}
	c.ActiveResult(u, true)
	c.ActiveResult(u, true)
	if !u.Healthy() {
		t.Fatal("down host did not return after Rise passes")
	}
	p.SetHealthy(u, false, 0)
	passive := cfg()
	passive.Active = false
	New(p, passive, nil)
	if !u.Healthy() {
		t.Fatal("without active checks a carried-over down host must return")
	}
}

// TestLastHostSwapsWithAnEjectedOne: when the last available host reaches the
// passive threshold and another host is held out by passive ejection alone,
// that one comes back and the failing one is ejected instead; a host that
// active checks took down never comes back this way.
func TestLastHostSwapsWithAnEjectedOne(t *testing.T) {
	t.Run("ejected host returns", func(t *testing.T) {
		p := poolOf(t, "http://127.0.0.1:1", "http://127.0.0.1:2")
		c := New(p, cfg(), nil)
		a, b := p.All()[0], p.All()[1]
		c.Passive(a, 3)
		if a.Healthy() {
			t.Fatal("a not ejected")
		}
		c.Passive(b, 3)
		if !a.Healthy() || b.Healthy() || c.Ejected() != 1 {
			t.Fatalf("after b failed: a healthy %v, b healthy %v, ejected %d; want a back and b out", a.Healthy(), b.Healthy(), c.Ejected())
		}
		if a.Failures() != 0 {
			t.Fatalf("returned host kept %d failures", a.Failures())
		}
	})
	t.Run("actively down host stays down", func(t *testing.T) {
		p := poolOf(t, "http://127.0.0.1:1", "http://127.0.0.1:2")
		conf := cfg()
		c := New(p, conf, nil)
		a, b := p.All()[0], p.All()[1]
		for range conf.Fall {
			c.ActiveResult(a, false)
		}
		c.Passive(a, 3)
		c.Passive(b, 3)
		if a.Healthy() || !b.Healthy() {
			t.Fatalf("a healthy %v, b healthy %v; want a down and b kept as the last host", a.Healthy(), b.Healthy())
		}
	})
}
