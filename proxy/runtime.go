package proxy

import (
	"context"
	"fmt"
	"time"

	"github.com/novashop/edge/proxy/config"
	"github.com/novashop/edge/proxy/health"
	"github.com/novashop/edge/proxy/ratelimit"
	"github.com/novashop/edge/proxy/upstream"
	"go.uber.org/zap"
)

// runtime is everything a reload replaces, published as one atomic pointer so a
// request sees one consistent configuration from start to end.
type runtime struct {
	cfg        config.Config
	pool       *upstream.Pool
	health     *health.Checker
	cancel     context.CancelFunc
	healthDone chan struct{}
	budget     *RetryBudget
	upMetrics  map[*upstream.Upstream]*upstreamMetrics
	rules      []rule
	logEvery   uint64 // log one request in logEvery; 0 = access log off
	// loopFwd: the event loops can reach every host themselves (loopForwardable).
	loopFwd bool
	// fwd: the peers whose forwarding headers are read; nil trusts none.
	fwd *forwardTrust
	// pipeDepth is each host's pipeline depth on the event loops
	// (upstreams[].pipeline_depth, else limits.upstream_pipeline_depth).
	pipeDepth map[*upstream.Upstream]int
}

// rule is one rate_limits entry, compiled.
type rule struct {
	name    string
	prefix  string
	methods []string
	perIP   *ratelimit.Limiter
	perUser *ratelimit.Limiter
}

// matches reports whether the rule applies to method and path.
func (r *rule) matches(method, path []byte) bool {
	if !hasPrefix(path, r.prefix) {
		return false
	}
	if len(r.methods) == 0 {
		return true
	}
	for _, m := range r.methods {
		if string(method) == m {
			return true
		}
	}
	return false
}

// matchRule returns the first rule matching the request, or nil.
func (rt *runtime) matchRule(method, path []byte) *rule {
	for i := range rt.rules {
		if rt.rules[i].matches(method, path) {
			return &rt.rules[i]
		}
	}
	return nil
}

// stop ends the runtime's health checks and waits for them.
func (rt *runtime) stop() {
	rt.cancel()
	<-rt.healthDone
}

// Reload applies a new configuration without dropping requests: hosts whose name,
// URL and weight are unchanged keep their connections, counters and state; new
// requests use the new pool, balancer, health, retry and limit settings while
// requests in flight finish on the old ones. Listen addresses, the JWT settings and
// the listener's header/body limits need a restart (Reload may tighten the latter).
func (s *Server) Reload(cfg config.Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	return s.apply(cfg)
}

func (s *Server) apply(cfg config.Config) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	old := s.rt.Load()

	policy, err := newPolicy(cfg.Balancer.Policy, cfg.Balancer.HashKey, s.opt.Rand)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidOptions, err)
	}
	reuse := map[string]*upstream.Upstream{}
	if old != nil {
		for _, u := range old.pool.All() {
			reuse[u.Name] = u
		}
	}
	hosts := make([]*upstream.Upstream, 0, len(cfg.Upstreams))
	kept := map[*upstream.Upstream]bool{}
	for _, uc := range cfg.Upstreams {
		if u := reuse[uc.Name]; u != nil && u.URL == uc.URL && u.Weight == uc.Weight {
			hosts = append(hosts, u)
			kept[u] = true
			continue
		}
		u, err := upstream.New(uc.Name, uc.URL, uc.Weight, upstream.Options{
			MaxConns:            cfg.Limits.MaxConnsPerUpstream,
			MaxIdleConnDuration: cfg.Timeouts.UpstreamIdle,
			ReadBufferSize:      max(cfg.Limits.MaxHeaderBytes, 4096),
			MaxResponseBodySize: cfg.Limits.MaxResponseBytes,
			DialTimeout:         cfg.Timeouts.Dial,
		})
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidOptions, err)
		}
		hosts = append(hosts, u)
	}
	pool, err := upstream.NewPool(hosts)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidOptions, err)
	}
	pool.SetPanicThreshold(cfg.Health.PanicThreshold, func(panic bool, healthy, hosts int) {
		if panic {
			s.log.Warn("proxy: pool in panic, balancing over every host", zap.Int("healthy", healthy), zap.Int("hosts", hosts),
				zap.Float64("panic_threshold", cfg.Health.PanicThreshold))
		} else {
			s.log.Info("proxy: pool left panic", zap.Int("healthy", healthy), zap.Int("hosts", hosts))
		}
	})

	rt := &runtime{
		cfg:        cfg,
		pool:       pool,
		budget:     NewRetryBudget(cfg.Retries.BudgetRatio, cfg.Retries.MinPerSecond, cfg.Retries.Window),
		upMetrics:  map[*upstream.Upstream]*upstreamMetrics{},
		healthDone: make(chan struct{}),
		loopFwd:    loopForwardable(hosts),
		fwd:        newForwardTrust(cfg.Forwarded),
	}
	rt.pipeDepth = make(map[*upstream.Upstream]int, len(hosts))
	for i, u := range hosts {
		rt.upMetrics[u] = s.metrics.upstream(u.Name)
		rt.pipeDepth[u] = cfg.Limits.UpstreamPipelineDepth
		if d := cfg.Upstreams[i].PipelineDepth; d != nil {
			rt.pipeDepth[u] = *d
		}
	}
	for _, rc := range cfg.RateLimits {
		r := rule{name: rc.Name, prefix: rc.Match.PathPrefix, methods: rc.Match.Methods}
		if rc.PerIP.Rate > 0 {
			r.perIP = ratelimit.New(ratelimit.Config{Rate: rc.PerIP.Rate, Burst: rc.PerIP.Burst, MaxKeys: rc.MaxKeys})
		}
		if rc.PerUser.Rate > 0 {
			r.perUser = ratelimit.New(ratelimit.Config{Rate: rc.PerUser.Rate, Burst: rc.PerUser.Burst, MaxKeys: rc.MaxKeys})
		}
		rt.rules = append(rt.rules, r)
	}
	if cfg.AccessLog.Enabled && cfg.AccessLog.Sample > 0 {
		rt.logEvery = uint64(1/cfg.AccessLog.Sample + 0.5)
	}

	// The old checker must stop before the new one starts writing the same hosts.
	if old != nil {
		old.stop()
	}
	h := cfg.Health
	rt.health = health.New(pool, health.Config{
		Active: h.Active, Path: h.Path, Interval: h.Interval, Timeout: h.Timeout,
		Rise: h.Rise, Fall: h.Fall, PassiveFailures: h.PassiveFailures,
		EjectBase: h.EjectBase, EjectMax: h.EjectMax, MaxEjectedPercent: h.MaxEjectedPercent,
		SlowStart: h.SlowStart,
	}, s.log)
	rt.health.OnEject = func(u *upstream.Upstream) { s.metrics.upstream(u.Name).ejected.Inc() }
	ctx, cancel := context.WithCancel(context.Background())
	rt.cancel = cancel
	go func() {
		defer close(rt.healthDone)
		rt.health.Run(ctx)
	}()

	s.policy.Store(&policyBox{policy})
	s.rt.Store(rt)

	if old != nil {
		// Hosts that left the pool: let their in-flight requests finish, then close
		// their idle connections.
		var gone []*upstream.Upstream
		for _, u := range old.pool.All() {
			if !kept[u] {
				gone = append(gone, u)
			}
		}
		if len(gone) > 0 {
			time.AfterFunc(cfg.Timeouts.Request, func() {
				for _, u := range gone {
					u.Client.CloseIdleConnections()
				}
			})
		}
		s.log.Info("proxy: configuration reloaded", zap.Int("upstreams", len(hosts)), zap.String("policy", policy.Name()))
	}
	return nil
}
