package config

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/novashop/edge/proxy/balancer"
	"github.com/novashop/edge/proxy/cache"
	"github.com/novashop/edge/proxy/upstream"
)

// Problems is a failed validation: every problem found, in file order.
type Problems []string

// Error joins the problems on one line, so a bad file gives one clear line on stderr.
func (p Problems) Error() string {
	return ErrInvalid.Error() + ": " + strings.Join(p, "; ")
}

// Unwrap lets errors.Is(err, ErrInvalid) match.
func (p Problems) Unwrap() error { return ErrInvalid }

// Normalize fills derived fields: upstream names (host:port when empty), weights
// (0 means 1) and upper-case methods. Parse calls it; call it again after overriding
// fields from flags.
func (c *Config) Normalize() {
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		if u.Weight == 0 {
			u.Weight = 1
		}
		if u.Name == "" {
			if addr, _, err := upstream.ParseURL(u.URL); err == nil {
				u.Name = addr
			}
		}
	}
	for i := range c.RateLimits {
		for j, m := range c.RateLimits[i].Match.Methods {
			c.RateLimits[i].Match.Methods[j] = strings.ToUpper(m)
		}
	}
}

// envName is what admin.token_env may name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate reports every problem at once (as Problems), or nil.
func (c Config) Validate() error {
	var p Problems
	bad := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }

	checkAddr := func(field, addr string) {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad("%s %q is not host:port", field, addr)
		}
	}
	checkAddr("listen", c.Listen)
	checkAddr("admin_listen", c.AdminListen)
	switch c.IO {
	case "", IOGoroutine, IOEventLoop:
	default:
		bad("io %q must be %s or %s", c.IO, IOGoroutine, IOEventLoop)
	}
	if c.IOLoops < 0 || c.IOLoops > MaxIOLoops {
		bad("io_loops %d must be 0..%d (0: one per GOMAXPROCS)", c.IOLoops, MaxIOLoops)
	}
	if c.IOBatchWait < 0 || c.IOBatchWait > MaxIOBatchWait {
		bad("io_batch_wait %s must be 0..%s (0: off)", c.IOBatchWait, MaxIOBatchWait)
	}
	switch c.H2CServer {
	case "", H2ServerXNet, H2ServerNative:
	default:
		bad("h2c_server %q must be %s or %s", c.H2CServer, H2ServerXNet, H2ServerNative)
	}
	if _, port, _ := net.SplitHostPort(c.Listen); c.Listen == c.AdminListen && port != "0" {
		bad("listen and admin_listen must differ")
	}

	if !envName.MatchString(c.Admin.TokenEnv) {
		bad("admin.token_env %q is not an environment variable name", c.Admin.TokenEnv)
	}

	if len(c.Upstreams) == 0 {
		bad("upstreams: at least one upstream is required")
	}
	names := map[string]bool{}
	for i, u := range c.Upstreams {
		if _, _, err := upstream.ParseURL(u.URL); err != nil {
			bad("upstreams[%d].url: %v", i, strings.TrimPrefix(err.Error(), "upstream: "))
		}
		if u.Weight < 1 || u.Weight > 1000 {
			bad("upstreams[%d].weight %d must be 1..1000", i, u.Weight)
		}
		if d := u.PipelineDepth; d != nil && (*d < 0 || *d > maxPipelineDepth) {
			bad("upstreams[%d].pipeline_depth %d must be 0..%d (0 or 1: no pipelining to this host)", i, *d, maxPipelineDepth)
		}
		if u.Name != "" && names[u.Name] {
			bad("upstreams[%d].name %q is used twice", i, u.Name)
		}
		names[u.Name] = true
	}

	if _, err := balancer.New(c.Balancer.Policy, balancer.Options{}); err != nil {
		bad("balancer.policy %q must be one of %s", c.Balancer.Policy, strings.Join(balancer.Names, ", "))
	}
	if _, err := balancer.ParseHashKey(c.Balancer.HashKey); err != nil {
		bad("balancer.hash_key %q must be ip, path, header:NAME or cookie:NAME", c.Balancer.HashKey)
	}

	h := c.Health
	if h.Active {
		if !strings.HasPrefix(h.Path, "/") {
			bad("health.path %q must start with /", h.Path)
		}
		if h.Interval <= 0 {
			bad("health.interval must be positive")
		}
		if h.Timeout <= 0 || h.Timeout >= h.Interval {
			bad("health.timeout %v must be positive and below health.interval", h.Timeout)
		}
		if h.Rise < 1 || h.Fall < 1 {
			bad("health.rise and health.fall must be at least 1")
		}
	}
	if h.PassiveFailures < 0 {
		bad("health.passive_failures must be >= 0")
	}
	if h.PassiveFailures > 0 && (h.EjectBase <= 0 || h.EjectMax < h.EjectBase) {
		bad("health.eject_base must be positive and health.eject_max at least eject_base")
	}
	if h.MaxEjectedPercent < 0 || h.MaxEjectedPercent > 100 {
		bad("health.max_ejected_percent %d must be 0..100", h.MaxEjectedPercent)
	}
	if h.SlowStart < 0 {
		bad("health.slow_start must be >= 0")
	}
	if math.IsNaN(h.PanicThreshold) || h.PanicThreshold < 0 || h.PanicThreshold > 1 {
		bad("health.panic_threshold %v must be 0..1 (0 turns panic off)", h.PanicThreshold)
	}

	r := c.Retries
	if r.Attempts < 1 || r.Attempts > 10 {
		bad("retries.attempts %d must be 1..10", r.Attempts)
	}
	if r.PerTryTimeout < 0 {
		bad("retries.per_try_timeout must be >= 0")
	}
	if math.IsNaN(r.BudgetRatio) || r.BudgetRatio < 0 || r.BudgetRatio > 1 {
		bad("retries.budget_ratio %v must be 0..1", r.BudgetRatio)
	}
	if r.MinPerSecond < 0 {
		bad("retries.min_per_second must be >= 0")
	}
	if r.Window < 1e9 {
		bad("retries.window must be at least 1s")
	}

	t := c.Timeouts
	for _, d := range []struct {
		name string
		v    int64
	}{{"request", int64(t.Request)}, {"read", int64(t.Read)}, {"write", int64(t.Write)}, {"idle", int64(t.Idle)}, {"dial", int64(t.Dial)}, {"upstream_idle", int64(t.UpstreamIdle)}, {"shutdown", int64(t.Shutdown)}} {
		if d.v <= 0 {
			bad("timeouts.%s must be positive", d.name)
		}
	}
	if t.Drain < 0 || t.Drain > 10*time.Minute {
		bad("timeouts.drain %s must be 0..10m", t.Drain)
	}

	l := c.Limits
	if l.MaxHeaderBytes < 1024 || l.MaxHeaderBytes > 1<<20 {
		bad("limits.max_header_bytes %d must be 1024..1048576", l.MaxHeaderBytes)
	}
	if l.MaxBodyBytes < 1 {
		bad("limits.max_body_bytes must be positive")
	}
	if l.MaxURIBytes < 16 || l.MaxURIBytes > l.MaxHeaderBytes {
		bad("limits.max_uri_bytes %d must be 16..max_header_bytes", l.MaxURIBytes)
	}
	// The line limits may exceed max_header_bytes (which then decides); a
	// request-line limit below max_uri_bytes would leave that one unreachable.
	if l.MaxRequestLineBytes < max(16, l.MaxURIBytes) || l.MaxRequestLineBytes > 1<<20 {
		bad("limits.max_request_line_bytes %d must be max_uri_bytes (%d)..1048576", l.MaxRequestLineBytes, l.MaxURIBytes)
	}
	if l.MaxFieldLineBytes < 1 || l.MaxFieldLineBytes > 1<<20 {
		bad("limits.max_field_line_bytes %d must be 1..1048576", l.MaxFieldLineBytes)
	}
	if l.MaxHeaderFields < 1 || l.MaxHeaderFields > 10000 {
		bad("limits.max_header_fields %d must be 1..10000", l.MaxHeaderFields)
	}
	if l.ObsFold != "reject" && l.ObsFold != "unfold" {
		bad("limits.obs_fold %q must be reject or unfold", l.ObsFold)
	}
	if l.DangerousFraming != "reject" && l.DangerousFraming != "tolerate" {
		bad("limits.dangerous_framing %q must be reject or tolerate", l.DangerousFraming)
	}
	if l.MaxResponseBytes < 1 {
		bad("limits.max_response_bytes must be positive")
	}
	if l.MaxConnsPerUpstream < 1 {
		bad("limits.max_conns_per_upstream must be positive")
	}
	if l.UpstreamPipelineDepth < 0 || l.UpstreamPipelineDepth > maxPipelineDepth {
		bad("limits.upstream_pipeline_depth %d must be 0..%d", l.UpstreamPipelineDepth, maxPipelineDepth)
	}
	if l.StreamRequestBytes < 0 {
		bad("limits.stream_request_bytes must be >= 0")
	}
	if l.StreamResponseBytes < 0 {
		bad("limits.stream_response_bytes must be >= 0")
	}

	j := c.JWT
	if j.PublicKeyFile != "" && j.JWKSURL != "" {
		bad("jwt: set at most one of public_key_file and jwks_url")
	}
	if j.JWKSURL != "" {
		if u, err := url.Parse(j.JWKSURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("jwt.jwks_url %q must be an http(s) URL", j.JWKSURL)
		}
	}
	if j.Leeway < 0 || j.Leeway > 300e9 {
		bad("jwt.leeway %v must be 0..5m", j.Leeway)
	}
	if j.CookieName == "" {
		bad("jwt.cookie_name must not be empty")
	}

	for i, rl := range c.RateLimits {
		if rl.Name == "" {
			bad("rate_limits[%d].name must not be empty", i)
		}
		if rl.Match.PathPrefix != "" && !strings.HasPrefix(rl.Match.PathPrefix, "/") {
			bad("rate_limits[%d].match.path_prefix %q must start with /", i, rl.Match.PathPrefix)
		}
		for _, b := range []struct {
			name string
			b    Bucket
		}{{"per_ip", rl.PerIP}, {"per_user", rl.PerUser}} {
			if math.IsNaN(b.b.Rate) || math.IsInf(b.b.Rate, 0) || b.b.Rate < 0 || b.b.Burst < 0 {
				bad("rate_limits[%d].%s: rate and burst must be finite and >= 0", i, b.name)
			}
		}
		if rl.PerIP.Rate == 0 && rl.PerUser.Rate == 0 {
			bad("rate_limits[%d]: set per_ip.rate or per_user.rate", i)
		}
		if rl.MaxKeys < 0 {
			bad("rate_limits[%d].max_keys must be >= 0", i)
		}
	}

	if c.Cache.Enabled && c.Cache.RedisURL == "" {
		bad("cache.enabled needs cache.redis_url")
	}
	if c.Cache.RedisURL != "" {
		if u, err := url.Parse(c.Cache.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			bad("cache.redis_url %q must be redis:// or rediss://", c.Cache.RedisURL)
		}
	}
	// The cache library owns the rules for its own fields; its problems are reported
	// here under their cache.* names, whether or not the cache is enabled, so a bad
	// section is caught before someone turns it on. The URL was checked above.
	cc := c.Cache.CacheConfig()
	cc.RedisURL = "redis://127.0.0.1:6379/0"
	for _, msg := range cacheProblems(cc.Validate()) {
		bad("cache.%s", msg)
	}
	if math.IsNaN(c.AccessLog.Sample) || c.AccessLog.Sample < 0 || c.AccessLog.Sample > 1 {
		bad("access_log.sample %v must be 0..1", c.AccessLog.Sample)
	}
	// A buffer must hold at least a few lines; 64 MiB per shard is already
	// more memory than a log deserves.
	if c.AccessLog.BufferBytes < 4<<10 || c.AccessLog.BufferBytes > 64<<20 {
		bad("access_log.buffer_bytes %d must be 4096..67108864", c.AccessLog.BufferBytes)
	}
	if c.AccessLog.FlushInterval < time.Millisecond || c.AccessLog.FlushInterval > time.Minute {
		bad("access_log.flush_interval %v must be 1ms..1m", c.AccessLog.FlushInterval)
	}
	p = append(p, c.tlsProblems()...)
	p = append(p, c.compressionProblems()...)
	p = append(p, c.proxyProtocolProblems()...)
	p = append(p, c.forwardedProblems()...)
	if len(p) == 0 {
		return nil
	}
	return p
}

// cacheProblems splits cache.Config.Validate's joined error into one message per
// problem, without the library's "cache: invalid config: " prefix.
func cacheProblems(err error) []string {
	if err == nil {
		return nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, strings.TrimPrefix(e.Error(), cache.ErrInvalidConfig.Error()+": "))
	}
	return out
}

// MaxIOLoops bounds io_loops: each loop is an epoll set, a goroutine and
// its own upstream pools, so a typo (4000 for 4) is refused rather than run.
const MaxIOLoops = 256

// MaxIOBatchWait bounds io_batch_wait: the latency a coalescing loop may add
// to a request (proxy/evloop.MaxBatchWait, which the evloop package applies
// too).
const MaxIOBatchWait = 2 * time.Millisecond

// The I/O cores Config.IO names.
const (
	IOGoroutine = "goroutine"
	IOEventLoop = "eventloop"
)

// maxPipelineDepth bounds limits.upstream_pipeline_depth and
// upstreams[].pipeline_depth.
const maxPipelineDepth = 64
