package cache

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/novashop/edge/cachekeys"
)

// Defaults for zero Config fields, kept in one place.
const (
	DefaultMaxMemoryBytes    = 256 << 20
	DefaultMaxEntryBytes     = 4 << 20
	DefaultRedisTimeout      = 50 * time.Millisecond
	DefaultProbeInterval     = 250 * time.Millisecond
	DefaultMaxTTL            = 24 * time.Hour
	DefaultRetention         = 10 * time.Minute
	DefaultHeuristicMax      = time.Hour
	DefaultCoalesceWait      = 10 * time.Second
	DefaultNamespace         = "novashop:c:"
	DefaultTagIndexNamespace = "novashop:ti:"
	DefaultName              = "novashop-edge"
	// DefaultStaleOnError is how long past expiry a stored answer may be
	// served when no origin can be reached (see Config.StaleOnError).
	DefaultStaleOnError = time.Minute
	// DefaultReadYourWritesWindow is how long a client that wrote carries
	// its read-your-writes token (see Config.ReadYourWritesWindow).
	DefaultReadYourWritesWindow = 5 * time.Second
	// maxReadYourWritesWindow bounds the window: every request carrying a
	// live token costs one Redis round trip, so the token must stay short.
	maxReadYourWritesWindow = 5 * time.Minute
)

// ErrInvalidConfig is wrapped by every error Config.Validate returns; fix the
// named field in the edge configuration's cache section.
var ErrInvalidConfig = errors.New("cache: invalid config")

// Config configures a Cache. Zero values mean the documented defaults.
type Config struct {
	// RedisURL is the Redis (or Redis Cluster seed) URL, e.g.
	// redis://127.0.0.1:6379/0. It must be set; an edge without Redis has no
	// cache at all and should not construct one.
	RedisURL string `yaml:"redis_url"`
	// MaxMemoryBytes bounds this process's copy of entries (the decoded
	// local table; 1 MiB of it is set aside for rueidis' client-side cache,
	// which tracking needs enabled but nothing reads through). Least
	// recently used entries are evicted first (sampled LRU). Default 256 MiB.
	MaxMemoryBytes int64 `yaml:"max_memory_bytes"`
	// MaxEntryBytes is the largest body stored; larger responses pass
	// through uncached. Default 4 MiB.
	MaxEntryBytes int `yaml:"max_entry_bytes"`
	// RedisTimeout bounds every Redis dial and command. After a
	// connection failure, or after commands kept timing out with none
	// succeeding for max(4×RedisTimeout, 500 ms), the cache stops calling
	// Redis and passes traffic straight through until a background probe
	// succeeds; a lone timeout only passes its own request through.
	// Default 50 ms.
	RedisTimeout time.Duration `yaml:"redis_timeout"`
	// ProbeInterval is how often an unreachable Redis is probed. Default
	// 250 ms.
	ProbeInterval time.Duration `yaml:"probe_interval"`
	// MaxTTL caps how long an entry stays in Redis, whatever the origin says.
	// Default 24 h.
	MaxTTL time.Duration `yaml:"max_ttl"`
	// Retention keeps an entry with a validator (ETag or Last-Modified) in
	// Redis this long after it may no longer be served stale, so it can be
	// revalidated with a cheap conditional request. Default 10 min.
	Retention time.Duration `yaml:"retention"`
	// HeuristicMax caps heuristic freshness (RFC 9111 section 4.2.2: 10% of
	// the time since Last-Modified). Negative disables heuristic freshness.
	// Default 1 h.
	HeuristicMax time.Duration `yaml:"heuristic_max"`
	// CoalesceWait is how long a request waits for another request's fetch
	// of the same key before fetching itself. Default 10 s.
	CoalesceWait time.Duration `yaml:"coalesce_wait"`
	// Namespace prefixes every entry key in Redis. Edges that share entries
	// must use the same namespace. Default "novashop:c:".
	Namespace string `yaml:"namespace"`
	// TagIndexNamespace prefixes the per-tag sets of entry keys used by soft
	// purges by tag. It must not start with Namespace. Default "novashop:ti:".
	TagIndexNamespace string `yaml:"tag_index_namespace"`
	// Name is the cache's name in Cache-Status (RFC 9211 section 2).
	// Default "novashop-edge".
	Name string `yaml:"name"`
	// ReadYourWritesWindow is how long after a successful write relayed by
	// this edge the client carries a read-your-writes token (the
	// novashop_rv cookie and the Novashop-RV response header, both holding
	// the deadline in unix milliseconds). Any edge that receives a request
	// with a live token checks the stored entry and its tag versions
	// against Redis itself (one round trip) instead of trusting what it
	// holds locally, since another edge's bump reaches it only with Redis'
	// asynchronous invalidation push. The window must cover that push
	// delay with a wide margin (measured p99 well under 100 ms); at least
	// 1 s, at most 5 min. Negative turns the token off: no edge issues it
	// and this edge ignores it. Default 5 s.
	ReadYourWritesWindow time.Duration `yaml:"read_your_writes_window"`
	// StaleOnError is how long past expiry a stored answer may still be
	// served when no origin can be reached (connection refused or reset, a
	// timeout, or the edge's own "no upstream available"), as RFC 9111
	// section 4.2.4 allows: Varnish's grace, nginx's proxy_cache_use_stale
	// error timeout. The answer's own stale-if-error (RFC 5861), when
	// present, replaces this bound; must-revalidate, proxy-revalidate,
	// no-cache and s-maxage forbid it. An origin that answers, even with a
	// 5xx, is not "unreachable": only its stale-if-error applies then. At
	// most MaxTTL; negative turns it off. Default 60 s.
	StaleOnError time.Duration `yaml:"stale_on_error"`
	// Now is the clock; tests inject one. Default time.Now.
	Now func() time.Time `yaml:"-"`
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.MaxMemoryBytes == 0 {
		c.MaxMemoryBytes = DefaultMaxMemoryBytes
	}
	if c.MaxEntryBytes == 0 {
		c.MaxEntryBytes = DefaultMaxEntryBytes
	}
	if c.RedisTimeout == 0 {
		c.RedisTimeout = DefaultRedisTimeout
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = DefaultMaxTTL
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.HeuristicMax == 0 {
		c.HeuristicMax = DefaultHeuristicMax
	}
	if c.CoalesceWait == 0 {
		c.CoalesceWait = DefaultCoalesceWait
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.TagIndexNamespace == "" {
		c.TagIndexNamespace = DefaultTagIndexNamespace
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.ReadYourWritesWindow == 0 {
		c.ReadYourWritesWindow = DefaultReadYourWritesWindow
	}
	if c.StaleOnError == 0 {
		c.StaleOnError = DefaultStaleOnError
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports every problem in c at once, each wrapping
// ErrInvalidConfig. Zero fields are valid (they mean the defaults).
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, a...)...))
	}
	if c.RedisURL == "" {
		bad("redis_url is required (an edge without Redis runs without a cache)")
	}
	if c.MaxMemoryBytes < 0 || (c.MaxMemoryBytes > 0 && c.MaxMemoryBytes < 1<<20) {
		bad("max_memory_bytes must be at least 1 MiB, got %d", c.MaxMemoryBytes)
	}
	if c.MaxEntryBytes < 0 {
		bad("max_entry_bytes must be >= 0, got %d", c.MaxEntryBytes)
	}
	if c.RedisTimeout < 0 {
		bad("redis_timeout must be > 0, got %v", c.RedisTimeout)
	}
	if c.ProbeInterval < 0 {
		bad("probe_interval must be > 0, got %v", c.ProbeInterval)
	}
	if c.MaxTTL < 0 || (c.MaxTTL > 0 && c.MaxTTL < time.Second) {
		bad("max_ttl must be at least 1s, got %v", c.MaxTTL)
	}
	if c.Retention < 0 {
		bad("retention must be >= 0, got %v", c.Retention)
	}
	if c.CoalesceWait < 0 {
		bad("coalesce_wait must be > 0, got %v", c.CoalesceWait)
	}
	if w := c.ReadYourWritesWindow; w > 0 && (w < time.Second || w > maxReadYourWritesWindow) {
		bad("read_your_writes_window must be between 1s and %v (negative turns it off), got %v", maxReadYourWritesWindow, w)
	}
	d := c.withDefaults()
	if d.StaleOnError > d.MaxTTL {
		bad("stale_on_error must be at most max_ttl (%v), got %v (negative turns it off)", d.MaxTTL, d.StaleOnError)
	}
	if len(d.TagIndexNamespace) >= len(d.Namespace) && d.TagIndexNamespace[:len(d.Namespace)] == d.Namespace {
		bad("tag_index_namespace %q must not start with namespace %q", d.TagIndexNamespace, d.Namespace)
	}
	if len(d.Namespace) >= len(d.TagIndexNamespace) && d.Namespace[:len(d.TagIndexNamespace)] == d.TagIndexNamespace {
		bad("namespace %q must not start with tag_index_namespace %q", d.Namespace, d.TagIndexNamespace)
	}
	if strings.HasPrefix(d.Namespace, cachekeys.TagVersionPrefix) || strings.HasPrefix(cachekeys.TagVersionPrefix, d.Namespace) {
		// Redis refuses overlapping broadcast-tracking prefixes.
		bad("namespace %q must not overlap the tag version prefix %q", d.Namespace, cachekeys.TagVersionPrefix)
	}
	if _, err := rueidis.ParseURL(c.RedisURL); c.RedisURL != "" && err != nil {
		bad("redis_url: %v", err)
	}
	for i := 0; i < len(c.Name); i++ {
		if ch := c.Name[i]; ch <= ' ' || ch >= 0x7f || ch == ';' || ch == ',' || ch == '"' {
			bad("name %q must be an RFC 9211 token", c.Name)
			break
		}
	}
	return errors.Join(errs...)
}
