package health

import (
	"context"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/novashop/edge/proxy/upstream"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// Config tunes the checker; see proxy/config.Health for each field's meaning.
type Config struct {
	Active            bool
	Path              string
	Interval          time.Duration
	Timeout           time.Duration
	Rise              int
	Fall              int
	PassiveFailures   int
	EjectBase         time.Duration
	EjectMax          time.Duration
	MaxEjectedPercent int
	SlowStart         time.Duration
	// Tick is how often ejections are expired and slow-start weights refreshed; zero
	// means 250ms.
	Tick time.Duration
}

// Checker runs active checks and passive ejection for one Pool.
type Checker struct {
	pool  *upstream.Pool
	cfg   Config
	log   *zap.Logger
	now   func() time.Time
	hosts map[*upstream.Upstream]*hostState

	ejected atomic.Int32
	// OnEject, when set before Run, is called each time passive ejection removes a
	// host (for metrics).
	OnEject func(u *upstream.Upstream)
	// OnChange, when set before Run, is called when a host goes down or comes back.
	OnChange func(u *upstream.Upstream, healthy bool)
}

type hostState struct {
	mu           sync.Mutex
	passStreak   int
	failStreak   int
	activeDown   bool
	ejectedUntil time.Time // zero when not ejected
	ejections    int       // consecutive ejections, for the back-off
	lastEjectEnd time.Time
}

// New builds a Checker for pool; log may be nil.
func New(pool *upstream.Pool, cfg Config, log *zap.Logger) *Checker {
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 250 * time.Millisecond
	}
	c := &Checker{pool: pool, cfg: cfg, log: log, now: time.Now, hosts: map[*upstream.Upstream]*hostState{}}
	for _, u := range pool.All() {
		h := &hostState{}
		if !u.Healthy() {
			// A host carried over from an earlier checker (config reload) keeps its
			// verdict: with active checks it must pass Rise checks to return;
			// without them nothing would ever bring it back, so it returns now.
			if cfg.Active {
				h.activeDown = true
			} else {
				pool.SetHealthy(u, true, cfg.SlowStart)
			}
		}
		c.hosts[u] = h
	}
	return c
}

// SetClock replaces the clock; call before Run. Tests use it.
func (c *Checker) SetClock(now func() time.Time) { c.now = now }

// Ejected returns how many hosts passive ejection currently holds out.
func (c *Checker) Ejected() int { return int(c.ejected.Load()) }

// Run checks hosts until ctx is done, then waits for its goroutines.
func (c *Checker) Run(ctx context.Context) {
	var wg sync.WaitGroup
	if c.cfg.Active && c.cfg.Interval > 0 {
		for _, u := range c.pool.All() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.guard("active check", func() { c.activeLoop(ctx, u) })
			}()
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.guard("health tick", func() {
			t := time.NewTicker(c.cfg.Tick)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					c.Tick()
				}
			}
		})
	}()
	wg.Wait()
}

// guard runs f, logging (not crashing on) a panic, so one bad check cannot kill the edge.
func (c *Checker) guard(what string, f func()) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("health: panic", zap.String("in", what), zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
		}
	}()
	f()
}

func (c *Checker) activeLoop(ctx context.Context, u *upstream.Upstream) {
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		c.CheckOnce(u)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// CheckOnce runs one active check of u now and applies its result.
func (c *Checker) CheckOnce(u *upstream.Upstream) bool {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(fasthttp.MethodGet)
	req.SetRequestURI(c.cfg.Path)
	req.Header.SetHost(u.Addr)
	req.Header.Set("User-Agent", "novashop-edge-health")
	err := u.Client.DoTimeout(req, resp, c.cfg.Timeout)
	ok := err == nil && resp.StatusCode() >= 200 && resp.StatusCode() < 300
	c.ActiveResult(u, ok)
	if !ok {
		if ce := c.log.Check(zap.DebugLevel, "health: check failed"); ce != nil {
			ce.Write(zap.String("upstream", u.Name), zap.Int("status", resp.StatusCode()), zap.Error(err))
		}
	}
	return ok
}

// ActiveResult applies one active check result to u: Fall failures in a row take it
// down, Rise passes in a row bring it back.
func (c *Checker) ActiveResult(u *upstream.Upstream, ok bool) {
	h := c.hosts[u]
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if ok {
		h.failStreak = 0
		h.passStreak++
		if h.activeDown && h.passStreak >= max(c.cfg.Rise, 1) {
			h.activeDown = false
			c.applyLocked(u, h, "active check passed")
		}
		return
	}
	h.passStreak = 0
	h.failStreak++
	if !h.activeDown && h.failStreak >= max(c.cfg.Fall, 1) {
		h.activeDown = true
		c.applyLocked(u, h, "active check failed")
	}
}

// Passive records the consecutive failure count of u after a request (as returned by
// upstream.Upstream.Done) and ejects u when it reaches PassiveFailures, unless that
// would eject more than MaxEjectedPercent of the hosts (rounded down, in the pool's
// favour) or take the last host that may take requests; in that last case a host
// held out by passive ejection alone comes back early and u takes its place. It is
// cheap when failures is below the threshold.
func (c *Checker) Passive(u *upstream.Upstream, failures int64) {
	if c.cfg.PassiveFailures <= 0 || failures < int64(c.cfg.PassiveFailures) {
		return
	}
	h := c.hosts[u]
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.ejectedUntil.IsZero() {
		return
	}
	if !c.othersAvailable(u) && !c.returnEjected(u) {
		// The last host taking traffic stays in: ejecting it would leave
		// nothing to try, and every request would fail without a try (issue
		// 14: one origin that closed a few connections mid-answer cost the
		// next, unrelated requests their answers). The panic threshold
		// covers hosts that health checks took down.
		// Logged once per failure streak, not on every failed request.
		if failures == int64(c.cfg.PassiveFailures) {
			c.log.Warn("health: ejection skipped, last available host", zap.String("upstream", u.Name), zap.Int64("failures", failures))
		}
		return
	}
	total := len(c.pool.All())
	for {
		n := c.ejected.Load()
		if int(n+1)*100 > c.cfg.MaxEjectedPercent*total {
			if ce := c.log.Check(zap.WarnLevel, "health: ejection skipped, too many hosts ejected"); ce != nil {
				ce.Write(zap.String("upstream", u.Name), zap.Int32("ejected", n))
			}
			return
		}
		if c.ejected.CompareAndSwap(n, n+1) {
			break
		}
	}
	now := c.now()
	if !h.lastEjectEnd.IsZero() && now.Sub(h.lastEjectEnd) > c.cfg.EjectMax {
		h.ejections = 0 // stable for a while: start the back-off over
	}
	d := c.cfg.EjectBase << min(h.ejections, 16)
	if d > c.cfg.EjectMax || d <= 0 {
		d = c.cfg.EjectMax
	}
	h.ejections++
	h.ejectedUntil = now.Add(d)
	c.applyLocked(u, h, "passive ejection")
	if c.OnEject != nil {
		c.OnEject(u)
	}
	c.log.Warn("health: upstream ejected", zap.String("upstream", u.Name), zap.Int64("failures", failures), zap.Duration("for", d))
}

// othersAvailable reports whether a host other than u may take requests (healthy
// and not drained).
func (c *Checker) othersAvailable(u *upstream.Upstream) bool {
	for _, o := range c.pool.All() {
		if o != u && o.Available() {
			return true
		}
	}
	return false
}

// returnEjected ends the ejection of one host other than u that only passive
// ejection holds out (its active checks pass), so that u, the last available host,
// can be ejected in its place: u's failures are the newer evidence. Found under
// load (internal/e2e TestFailoverTail): a live origin ejected after a few slow
// answers, then the other one SIGKILLed; the dead host could not be ejected, every
// request's first try failed on it, and once the retry budget ran out about 2,000
// GETs got 502 until its active checks failed. A host whose lock is busy is
// skipped, so two hosts swapping at once cannot deadlock.
func (c *Checker) returnEjected(u *upstream.Upstream) bool {
	for o, hs := range c.hosts {
		if o == u || o.Drained() || !hs.mu.TryLock() {
			continue
		}
		if !hs.ejectedUntil.IsZero() && !hs.activeDown {
			hs.ejectedUntil = time.Time{}
			hs.lastEjectEnd = c.now()
			c.ejected.Add(-1)
			o.ResetFailures()
			c.applyLocked(o, hs, "ejection ended early: the last available host failed")
			hs.mu.Unlock()
			return true
		}
		hs.mu.Unlock()
	}
	return false
}

// Tick expires ejections whose back-off has passed and refreshes slow-start weights.
// Run calls it every Config.Tick; tests call it directly.
func (c *Checker) Tick() {
	now := c.now()
	for u, h := range c.hosts {
		h.mu.Lock()
		if !h.ejectedUntil.IsZero() && !now.Before(h.ejectedUntil) {
			h.ejectedUntil = time.Time{}
			h.lastEjectEnd = now
			c.ejected.Add(-1)
			u.ResetFailures()
			c.applyLocked(u, h, "ejection ended")
		}
		h.mu.Unlock()
	}
	c.pool.Refresh()
}

// applyLocked writes the combined verdict (not actively down, not ejected) to the pool.
func (c *Checker) applyLocked(u *upstream.Upstream, h *hostState, why string) {
	healthy := !h.activeDown && h.ejectedUntil.IsZero()
	if c.pool.SetHealthy(u, healthy, c.cfg.SlowStart) {
		c.log.Info("health: upstream state changed", zap.String("upstream", u.Name), zap.Bool("healthy", healthy), zap.String("why", why))
		if c.OnChange != nil {
			c.OnChange(u, healthy)
		}
	}
}
