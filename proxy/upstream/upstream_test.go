package upstream

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func mustPool(t testing.TB, weights ...int) *Pool {
	t.Helper()
	var hosts []*Upstream
	for i, w := range weights {
		u, err := New("", "http://127.0.0.1:"+string(rune('1'+i))+"000", w, Options{})
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, u)
	}
	p, err := NewPool(hosts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewURL(t *testing.T) {
	tests := []struct {
		url, addr string
		wantErr   bool
	}{
		{"http://127.0.0.1:8001", "127.0.0.1:8001", false},
		{"http://origin", "origin:80", false},
		{"https://origin", "origin:443", false},
		{"http://[::1]:81", "[::1]:81", false},
		{"http://[::1]", "[::1]:80", false},
		{"ftp://origin", "", true},
		{"http://", "", true},
		{"http://origin/path", "", true},
		{"http://origin?q=1", "", true},
		{"::bad", "", true},
	}
	for _, tt := range tests {
		u, err := New("", tt.url, 0, Options{})
		if tt.wantErr {
			if !errors.Is(err, ErrBadURL) {
				t.Errorf("New(%q) err = %v, want ErrBadURL", tt.url, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("New(%q): %v", tt.url, err)
		}
		if u.Addr != tt.addr || u.Name != tt.addr || u.Weight != 1 {
			t.Errorf("New(%q) = addr %q name %q weight %d", tt.url, u.Addr, u.Name, u.Weight)
		}
	}
}

func TestDuplicateName(t *testing.T) {
	a, _ := New("a", "http://127.0.0.1:1", 1, Options{})
	b, _ := New("a", "http://127.0.0.1:2", 1, Options{})
	if _, err := NewPool([]*Upstream{a, b}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("err = %v, want ErrDuplicate", err)
	}
}

func TestStateTransitions(t *testing.T) {
	p := mustPool(t, 1, 1, 1)
	now := time.Unix(1000, 0)
	p.SetClock(func() time.Time { return now })
	u := p.All()[1]
	if got := len(p.Available().Hosts); got != 3 {
		t.Fatalf("available = %d, want 3", got)
	}
	before := p.Available()
	if !p.SetHealthy(u, false, 0) {
		t.Fatal("SetHealthy(false) reported no change")
	}
	if p.SetHealthy(u, false, 0) {
		t.Fatal("second SetHealthy(false) reported a change")
	}
	if p.Available() == before || len(p.Available().Hosts) != 2 || u.State(now) != StateDown {
		t.Fatalf("after down: %d hosts, state %v", len(p.Available().Hosts), u.State(now))
	}
	p.SetHealthy(u, true, 10*time.Second)
	if u.State(now) != StateSlowStart || u.EffectiveWeight(now) != 1 {
		t.Fatalf("after up: state %v weight %d", u.State(now), u.EffectiveWeight(now))
	}
	if err := p.Drain(u.Name); err != nil {
		t.Fatal(err)
	}
	if u.State(now) != StateDraining || len(p.Available().Hosts) != 2 {
		t.Fatalf("after drain: state %v, %d hosts", u.State(now), len(p.Available().Hosts))
	}
	if err := p.Undrain(u.Name); err != nil {
		t.Fatal(err)
	}
	if err := p.Drain("nope"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("Drain(nope) = %v", err)
	}
	now = now.Add(11 * time.Second)
	if !p.Refresh() || u.State(now) != StateUp {
		t.Fatalf("after ramp: state %v", u.State(now))
	}
	if p.Refresh() {
		t.Fatal("Refresh rebuilt with nothing ramping")
	}
}

func TestSlowStartRamp(t *testing.T) {
	p := mustPool(t, 100)
	now := time.Unix(1000, 0)
	p.SetClock(func() time.Time { return now })
	u := p.All()[0]
	p.SetHealthy(u, false, 0)
	p.SetHealthy(u, true, 10*time.Second)
	tests := []struct {
		after time.Duration
		want  int
	}{{0, 1}, {time.Second, 10}, {5 * time.Second, 50}, {10 * time.Second, 100}, {time.Hour, 100}}
	for _, tt := range tests {
		if got := u.EffectiveWeight(now.Add(tt.after)); got != tt.want {
			t.Errorf("weight after %v = %d, want %d", tt.after, got, tt.want)
		}
	}
	now = now.Add(5 * time.Second)
	p.Refresh()
	if s := p.Available(); s.Total != 50 || s.Cum[0] != 50 {
		t.Fatalf("set total %d cum %v", s.Total, s.Cum)
	}
}

func TestPeakEWMA(t *testing.T) {
	u, _ := New("a", "http://127.0.0.1:1", 1, Options{})
	now := time.Unix(1000, 0)
	u.Begin()
	u.Done(10*time.Millisecond, true, now)
	if u.EWMA() != 10*time.Millisecond {
		t.Fatalf("first sample: %v", u.EWMA())
	}
	u.Begin()
	u.Done(100*time.Millisecond, true, now)
	if u.EWMA() != 100*time.Millisecond {
		t.Fatalf("peak sample not taken at once: %v", u.EWMA())
	}
	u.Begin()
	u.Done(10*time.Millisecond, true, now.Add(ewmaDecay))
	got := u.EWMA()
	// After one time constant the old peak keeps weight 1/e ≈ 0.368.
	want := time.Duration(0.368*100e6 + 0.632*10e6)
	if d := got - want; d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("decayed EWMA = %v, want ≈ %v", got, want)
	}
	if u.InFlight() != 0 {
		t.Fatalf("in flight = %d", u.InFlight())
	}
}

func TestFailuresCount(t *testing.T) {
	u, _ := New("a", "http://127.0.0.1:1", 1, Options{})
	now := time.Now()
	for i := 1; i <= 3; i++ {
		u.Begin()
		if n := u.Done(time.Millisecond, false, now); n != int64(i) {
			t.Fatalf("failure %d counted as %d", i, n)
		}
	}
	u.Begin()
	if n := u.Done(time.Millisecond, true, now); n != 0 || u.Failures() != 0 {
		t.Fatalf("success did not reset failures: %d", u.Failures())
	}
}

func TestAvailableAllocatesNothing(t *testing.T) {
	p := mustPool(t, 1, 2, 3)
	allocs := testing.AllocsPerRun(1000, func() {
		s := p.Available()
		if len(s.Hosts) != 3 {
			t.Fatal("wrong set")
		}
	})
	if allocs != 0 {
		t.Fatalf("Available allocates %v per call", allocs)
	}
}

func BenchmarkAvailable(b *testing.B) {
	p := mustPool(b, 1, 1, 1, 1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = p.Available()
		}
	})
}

func BenchmarkBeginDone(b *testing.B) {
	u, _ := New("a", "http://127.0.0.1:1", 1, Options{})
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		u.Begin()
		u.Done(time.Millisecond, true, now)
	}
}

// TestPanicThreshold: the Set holds only healthy hosts until fewer than the
// threshold's share of the not-drained hosts are healthy; then it holds every
// host that is not drained, and the callback hears each change once.
func TestPanicThreshold(t *testing.T) {
	tests := []struct {
		name      string
		hosts     int
		down      int
		drained   int // drained hosts, taken from the healthy ones
		threshold float64
		panic     bool
		set       int
	}{
		{name: "all healthy", hosts: 2, threshold: 0.5, set: 2},
		{name: "half healthy is not under half", hosts: 2, down: 1, threshold: 0.5, set: 1},
		{name: "one of three healthy", hosts: 3, down: 2, threshold: 0.5, panic: true, set: 3},
		{name: "none healthy", hosts: 1, down: 1, threshold: 0.5, panic: true, set: 1},
		{name: "panic off", hosts: 1, down: 1, threshold: 0, set: 0},
		{name: "drained hosts stay out", hosts: 3, down: 1, drained: 1, threshold: 0.6, panic: true, set: 2},
		{name: "drained hosts do not count", hosts: 4, down: 1, drained: 2, threshold: 0.5, set: 1},
		{name: "everything drained", hosts: 2, drained: 2, threshold: 0.5, set: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hosts []*Upstream
			for i := range tt.hosts {
				u, err := New(fmt.Sprintf("h%d", i), fmt.Sprintf("http://127.0.0.1:%d", i+1), 1, Options{})
				if err != nil {
					t.Fatal(err)
				}
				hosts = append(hosts, u)
			}
			p, err := NewPool(hosts)
			if err != nil {
				t.Fatal(err)
			}
			var calls []bool
			p.SetPanicThreshold(tt.threshold, func(panic bool, _, _ int) { calls = append(calls, panic) })
			for _, u := range hosts[:tt.down] {
				p.SetHealthy(u, false, 0)
			}
			for _, u := range hosts[tt.down : tt.down+tt.drained] {
				if err := p.Drain(u.Name); err != nil {
					t.Fatal(err)
				}
			}
			s := p.Available()
			if s.Panic != tt.panic || len(s.Hosts) != tt.set {
				t.Fatalf("panic %v with %d hosts, want %v with %d", s.Panic, len(s.Hosts), tt.panic, tt.set)
			}
			if want := tt.panic; (len(calls) == 1 && calls[0]) != want || len(calls) > 1 {
				t.Fatalf("callback calls %v, want one 'true' only when in panic", calls)
			}
			for _, u := range hosts[:tt.down] {
				p.SetHealthy(u, true, 0)
			}
			if s := p.Available(); s.Panic {
				t.Fatal("still in panic with every host healthy")
			}
			if tt.panic && (len(calls) != 2 || calls[1]) {
				t.Fatalf("callback calls %v, want [true false]", calls)
			}
		})
	}
}
