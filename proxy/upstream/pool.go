package upstream

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrUnknown reports a host name the pool does not hold; list names with GET /admin/upstreams.
var ErrUnknown = errors.New("upstream: unknown upstream")

// ErrDuplicate reports two upstreams with the same name; give each a distinct name.
var ErrDuplicate = errors.New("upstream: duplicate upstream name")

// Set is an immutable snapshot of the hosts that may take new requests, with their
// effective weights at the time it was built. Policies may cache per-Set structures
// keyed by the *Set pointer: a new pointer means something changed.
type Set struct {
	// Hosts are the available hosts in configuration order.
	Hosts []*Upstream
	// Weights[i] is the effective weight of Hosts[i] (slow start applied), at least 1.
	Weights []int
	// Cum[i] is Weights[0]+…+Weights[i], for weighted random choice by binary search.
	Cum []int
	// Total is the sum of Weights.
	Total int
	// Panic reports that fewer than the pool's panic threshold of its hosts are
	// healthy, so Hosts holds every host that is not drained, healthy or not.
	Panic bool
}

// Pool is the configured hosts plus the published Set of available ones.
// Readers call Available (one atomic load, no allocation); writers (health, admin)
// change host state through the Pool so the Set is rebuilt exactly when needed.
type Pool struct {
	all    []*Upstream
	byName map[string]*Upstream
	mu     sync.Mutex // serialises rebuilds
	set    atomic.Pointer[Set]
	now    func() time.Time

	// panicThreshold and onPanic are written under mu (SetPanicThreshold).
	panicThreshold float64
	onPanic        func(panic bool, healthy, hosts int)
}

// NewPool groups hosts; names must be unique.
func NewPool(hosts []*Upstream) (*Pool, error) {
	p := &Pool{all: hosts, byName: make(map[string]*Upstream, len(hosts)), now: time.Now}
	for _, u := range hosts {
		if _, dup := p.byName[u.Name]; dup {
			return nil, fmt.Errorf("%w %q", ErrDuplicate, u.Name)
		}
		p.byName[u.Name] = u
	}
	p.Rebuild()
	return p, nil
}

// All returns every configured host, available or not. The slice must not be modified.
func (p *Pool) All() []*Upstream { return p.all }

// Get returns the host called name, or nil.
func (p *Pool) Get(name string) *Upstream { return p.byName[name] }

// Available returns the current snapshot of hosts that may take new requests.
// It never returns nil; its Hosts may be empty.
func (p *Pool) Available() *Set { return p.set.Load() }

// Rebuild publishes a fresh Set from the hosts' current state. Health calls it through
// SetHealthy; call it directly only after changing slow-start weights (Refresh does).
func (p *Pool) Rebuild() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rebuildLocked()
}

// SetPanicThreshold sets the share of hosts (0 to 1) that must be healthy for the
// pool to balance over healthy hosts only; below it the Set holds every host that
// is not drained (Envoy's panic threshold), so a health check that fails
// everywhere (a wrong path, a health endpoint down while the origins serve) does
// not turn every request into a 503: passive failures and retries decide instead.
// Zero turns panic off. onPanic, when not nil, is called (under the pool's lock,
// so it must be quick) each time the pool enters or leaves panic, with the
// healthy and the not-drained host counts.
func (p *Pool) SetPanicThreshold(threshold float64, onPanic func(panic bool, healthy, hosts int)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.panicThreshold, p.onPanic = threshold, onPanic
	p.rebuildLocked()
}

func (p *Pool) rebuildLocked() {
	now := p.now()
	hosts, healthy := 0, 0
	for _, u := range p.all {
		if u.Drained() {
			continue
		}
		hosts++
		if u.Healthy() {
			healthy++
		}
	}
	s := &Set{Panic: hosts > 0 && float64(healthy) < p.panicThreshold*float64(hosts)}
	for _, u := range p.all {
		if u.Drained() || !s.Panic && !u.Healthy() {
			continue
		}
		w := u.EffectiveWeight(now)
		s.Hosts = append(s.Hosts, u)
		s.Weights = append(s.Weights, w)
		s.Total += w
		s.Cum = append(s.Cum, s.Total)
	}
	was := p.set.Swap(s)
	if p.onPanic != nil && was != nil && was.Panic != s.Panic {
		p.onPanic(s.Panic, healthy, hosts)
	}
}

// SetHealthy records health's verdict on u. When a host comes back and slowStart is
// positive its weight ramps from 1 to Weight over slowStart. It reports whether the
// verdict changed (and so the Set was rebuilt).
func (p *Pool) SetHealthy(u *Upstream, healthy bool, slowStart time.Duration) bool {
	if !u.healthy.CompareAndSwap(!healthy, healthy) {
		return false
	}
	if healthy {
		// The peak EWMA only decays when the host answers, so the slow
		// samples its dying requests left would otherwise make p2c-ewma
		// starve a host that came back (found by internal/e2e): a returning
		// host starts with no latency history, like a new one.
		u.ewmaNs.Store(0)
	}
	if healthy && slowStart > 0 {
		u.slowStartDur.Store(int64(slowStart))
		u.slowStartSince.Store(p.now().UnixNano())
	} else {
		u.slowStartSince.Store(0)
	}
	p.Rebuild()
	return true
}

// Refresh rebuilds the Set if a host is still ramping up or just finished ramping, so
// effective weights follow slow start; it returns whether it rebuilt. Health calls it
// on every tick.
func (p *Pool) Refresh() bool {
	now := p.now()
	ramping := false
	for _, u := range p.all {
		if since := u.slowStartSince.Load(); since != 0 {
			ramping = true
			if !u.InSlowStart(now) {
				u.slowStartSince.CompareAndSwap(since, 0)
			}
		}
	}
	if ramping {
		p.Rebuild()
	}
	return ramping
}

// Drain stops new requests to the named host; in-flight requests finish.
func (p *Pool) Drain(name string) error { return p.setDrained(name, true) }

// Undrain lets the named host take requests again.
func (p *Pool) Undrain(name string) error { return p.setDrained(name, false) }

func (p *Pool) setDrained(name string, drained bool) error {
	u := p.byName[name]
	if u == nil {
		return fmt.Errorf("%w %q", ErrUnknown, name)
	}
	if u.drained.CompareAndSwap(!drained, drained) {
		p.Rebuild()
	}
	return nil
}

// SetClock replaces the clock used for slow start; tests use it for determinism.
func (p *Pool) SetClock(now func() time.Time) {
	p.mu.Lock()
	p.now = now
	p.rebuildLocked()
	p.mu.Unlock()
}

// CloseIdle closes every host's idle keep-alive connections.
func (p *Pool) CloseIdle() {
	for _, u := range p.all {
		u.Client.CloseIdleConnections()
	}
}
