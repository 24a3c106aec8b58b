package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/novashop/edge/proxy/cache"
	"go.yaml.in/yaml/v3"
)

// ErrInvalid is wrapped by every error Parse, Load and Validate return; the message
// names each offending field.
var ErrInvalid = errors.New("config: invalid")

// Config is the whole edge configuration.
type Config struct {
	// Listen is the address shoppers' traffic arrives on, host:port.
	Listen string `yaml:"listen"`
	// AdminListen is the address of the admin API, /metrics and pprof; keep it private.
	AdminListen string `yaml:"admin_listen"`
	// IO selects the public listener's I/O core: "eventloop" (proxy/evloop:
	// epoll loops, the default, see docs/io-core.md) or "goroutine" (fasthttp's
	// goroutine per connection). Empty means the default. Fixed at start.
	IO string `yaml:"io"`
	// IOLoops is the number of event loops the eventloop core runs (ignored by
	// the goroutine core). 0 means one per GOMAXPROCS. Fewer loops than cores
	// suit an edge that shares its cores with other busy processes (a
	// co-located load generator): a loop that loses its core to another
	// process holds its connections' answers until it runs again
	// (docs/io-core.md, "Sizing io_loops"). Fixed at start.
	IOLoops int `yaml:"io_loops"`
	// IOBatchWait, above zero, turns on the eventloop core's wake-up
	// coalescing: a loop whose recent event rate is at least one per
	// IOBatchWait sleeps for it after a round of events, then takes what is
	// ready, instead of sleeping and waking once per request; below that
	// rate it waits for events as without it. A request may wait up to
	// IOBatchWait longer. 0..2ms; 0 (the default) is off (docs/io-core.md,
	// "Wake-up coalescing"). Fixed at start.
	IOBatchWait time.Duration `yaml:"io_batch_wait"`
	// H2C serves HTTP/2 without TLS (prior knowledge: the client starts with
	// the HTTP/2 preface) on Listen beside HTTP/1.1, through the same handler.
	// Goroutine core only: the event-loop core speaks HTTP/1.1.
	H2C bool `yaml:"h2c"`
	// H2CServer picks h2c's HTTP/2 server: "native" (proxy/h2srv, which
	// feeds the handler directly, the default) or "xnet" (golang.org/x/net/http2
	// bridged into the handler, kept as a fallback). Empty means native.
	H2CServer string `yaml:"h2c_server"`
	// Admin guards the admin API's levers (purge, drain, balancer).
	Admin Admin `yaml:"admin"`
	// Upstreams are the origin hosts; at least one is required.
	Upstreams []Upstream `yaml:"upstreams"`
	// Balancer chooses the host for each request.
	Balancer Balancer `yaml:"balancer"`
	// Health decides which hosts take traffic.
	Health Health `yaml:"health"`
	// Retries says when a failed request is tried again on another host.
	Retries Retries `yaml:"retries"`
	// Timeouts bound every phase of a request.
	Timeouts Timeouts `yaml:"timeouts"`
	// Limits bound what a client may send.
	Limits Limits `yaml:"limits"`
	// JWT says how the edge verifies access tokens on routes that need a user.
	JWT JWT `yaml:"jwt"`
	// RateLimits are token-bucket limits per route group; the first matching rule applies.
	RateLimits []RateLimit `yaml:"rate_limits"`
	// Cache configures the shared HTTP cache in front of the origins.
	Cache Cache `yaml:"cache"`
	// AccessLog configures the per-request log.
	AccessLog AccessLog `yaml:"access_log"`
	// TLS configures the HTTPS listener (see tls.go).
	TLS TLS `yaml:"tls"`
	// Compression configures response compression (see compression.go).
	Compression Compression `yaml:"compression"`
	// ProxyProtocol makes listen and tls.listen take the PROXY protocol (see proxyprotocol.go).
	ProxyProtocol ProxyProtocol `yaml:"proxy_protocol"`
	// Forwarded says which peers' forwarding headers the edge believes (see forwarded.go).
	Forwarded Forwarded `yaml:"forwarded"`
}

// Admin guards the admin API: whoever reaches its port may purge the cache,
// drain every origin or switch the balancer of the whole fleet.
type Admin struct {
	// TokenEnv names the environment variable holding the bearer token that
	// mutating admin calls (and pprof) must present; unset or empty means
	// no token. The token itself never sits in the file.
	TokenEnv string `yaml:"token_env"`
	// Insecure lets the edge start with an admin listener off loopback and
	// no token (a private network the operator vouches for).
	Insecure bool `yaml:"insecure"`
}

// Upstream is one origin host.
type Upstream struct {
	// Name identifies the host in the admin API, metrics and logs; empty means host:port.
	Name string `yaml:"name"`
	// URL is http://host:port or https://host:port, without a path.
	URL string `yaml:"url"`
	// Weight is the host's share for weighted policies, 1 to 1000; zero means 1.
	Weight int `yaml:"weight"`
	// PipelineDepth, when set, replaces limits.upstream_pipeline_depth for
	// this host (event-loop core): 0 or 1 turns pipelining off for an origin
	// that handles it badly, 2..64 is its own depth. Unset: the limit.
	PipelineDepth *int `yaml:"pipeline_depth,omitempty"`
}

// Balancer selects and tunes the balancing policy.
type Balancer struct {
	// Policy is round-robin, weighted, least-conn, p2c-ewma, random or hash.
	Policy string `yaml:"policy"`
	// HashKey is what the hash policy hashes: ip, path, header:NAME or cookie:NAME.
	HashKey string `yaml:"hash_key"`
}

// Health configures active checks, passive ejection and slow start.
type Health struct {
	// Active turns periodic health checks on.
	Active bool `yaml:"active"`
	// Path is requested with GET on every host; any 2xx answer counts as healthy.
	Path string `yaml:"path"`
	// Interval is the time between two checks of one host.
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds one check; it must be shorter than Interval.
	Timeout time.Duration `yaml:"timeout"`
	// Rise is how many consecutive passing checks bring a down host back.
	Rise int `yaml:"rise"`
	// Fall is how many consecutive failing checks take a host down.
	Fall int `yaml:"fall"`
	// PassiveFailures is how many consecutive failed requests eject a host; zero turns
	// passive ejection off.
	PassiveFailures int `yaml:"passive_failures"`
	// EjectBase is the first ejection's length; each further one doubles it.
	EjectBase time.Duration `yaml:"eject_base"`
	// EjectMax caps the ejection length.
	EjectMax time.Duration `yaml:"eject_max"`
	// MaxEjectedPercent caps the share of hosts passive ejection may remove, 0 to 100,
	// so a fault that fails every host cannot empty the pool.
	MaxEjectedPercent int `yaml:"max_ejected_percent"`
	// SlowStart is how long a returning host's weight ramps from 1 to its full weight;
	// zero turns slow start off.
	SlowStart time.Duration `yaml:"slow_start"`
	// PanicThreshold is the share of hosts, 0 to 1, under which the pool is in panic:
	// when fewer of its hosts are healthy, it balances over every host that is not
	// drained and lets passive failures and retries decide (Envoy's panic
	// threshold), so health checks failing everywhere cannot turn every request
	// into a 503. Zero turns panic off.
	PanicThreshold float64 `yaml:"panic_threshold"`
}

// Retries configures safe retries.
type Retries struct {
	// Attempts is the most tries per request, the first one included; 1 turns retries off.
	Attempts int `yaml:"attempts"`
	// PerTryTimeout bounds one try; zero means the request timeout only.
	PerTryTimeout time.Duration `yaml:"per_try_timeout"`
	// BudgetRatio caps retries at this share of requests over Window (0.2 = 20%), so
	// retries cannot snowball into an overload.
	BudgetRatio float64 `yaml:"budget_ratio"`
	// MinPerSecond retries per second are always allowed, so a quiet edge still retries.
	MinPerSecond int `yaml:"min_per_second"`
	// Window is the sliding window of the retry budget.
	Window time.Duration `yaml:"window"`
}

// Timeouts bound the phases of a request.
type Timeouts struct {
	// Request bounds one request end to end through the edge (all tries); 504 after it.
	Request time.Duration `yaml:"request"`
	// Read bounds reading a client's request, headers and body.
	Read time.Duration `yaml:"read"`
	// Write bounds writing the response to the client.
	Write time.Duration `yaml:"write"`
	// Idle closes a client keep-alive connection idle this long.
	Idle time.Duration `yaml:"idle"`
	// Dial bounds opening a connection to an origin.
	Dial time.Duration `yaml:"dial"`
	// UpstreamIdle closes an origin keep-alive connection idle this long.
	UpstreamIdle time.Duration `yaml:"upstream_idle"`
	// Shutdown bounds the graceful drain on SIGTERM.
	Shutdown time.Duration `yaml:"shutdown"`
	// Drain is how long the edge keeps serving after SIGTERM (or since a
	// POST /admin/drain, whichever came first) with /readyz answering 503
	// and keep-alive connections closed after their next answer, before it
	// stops accepting: the time a load balancer (Kubernetes endpoints,
	// kube-proxy, an external balancer) needs to stop sending it new
	// connections. 0 stops at once.
	Drain time.Duration `yaml:"drain"`
}

// Limits bound what clients and origins may send.
type Limits struct {
	// MaxHeaderBytes bounds the request line plus headers; larger requests get 431.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxBodyBytes bounds a request body; larger requests get 413.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// MaxURIBytes bounds the request target; longer ones get 414.
	MaxURIBytes int `yaml:"max_uri_bytes"`
	// MaxRequestLineBytes bounds the request-line (CRLF not counted, as
	// Apache's LimitRequestLine); longer ones get 414 from the framer before
	// anything else reads them. At least MaxURIBytes, so the URI limit is the
	// one that decides for any usual method. Fixed at start.
	MaxRequestLineBytes int `yaml:"max_request_line_bytes"`
	// MaxFieldLineBytes bounds one header or trailer field line (CRLF not
	// counted, as Apache's LimitRequestFieldSize); longer ones get 431. Fixed
	// at start.
	MaxFieldLineBytes int `yaml:"max_field_line_bytes"`
	// MaxHeaderFields bounds the field lines of a header section, and
	// separately of a trailer section; more get 431. Fixed at start.
	MaxHeaderFields int `yaml:"max_header_fields"`
	// ObsFold is what the edge does with obsolete line folding in a field
	// value (RFC 9112 §5.2): "reject" (400, the default) or "unfold" (each
	// fold becomes SP in the bytes passed on, so the origin never sees one).
	// Fixed at start.
	ObsFold string `yaml:"obs_fold"`
	// DangerousFraming is what the edge does with two framings a strict
	// recipient refuses (gunicorn's tolerate_dangerous_framing): "reject"
	// (400, the default) or "tolerate": Content-Length with
	// Transfer-Encoding is framed by Transfer-Encoding alone, the length
	// never forwarded (RFC 9112 §6.3 rule 3), and a bare LF inside a header
	// field value becomes SP (RFC 9110 §5.5); either way the connection
	// closes after the answer. Fixed at start.
	DangerousFraming string `yaml:"dangerous_framing"`
	// MaxResponseBytes bounds an origin's response body; larger ones become 502.
	MaxResponseBytes int `yaml:"max_response_bytes"`
	// MaxConnsPerUpstream bounds the connection pool to each origin.
	MaxConnsPerUpstream int `yaml:"max_conns_per_upstream"`
	// UpstreamPipelineDepth, above 1, lets the event-loop core send up to that
	// many GET/HEAD requests (no body) on one upstream connection in one
	// write, HTTP/1.1 pipelining (docs/io-core.md): fewer system calls per
	// request on the upstream side. 0 or 1 is off. Fixed at start.
	UpstreamPipelineDepth int `yaml:"upstream_pipeline_depth"`
	// StreamRequestBytes is the request body size above which the edge streams the
	// body to one origin instead of reading it whole (a chunked body always streams
	// then). A streamed request is never retried, so small bodies stay whole and
	// retryable. Zero reads every body whole. Fixed at start, like MaxBodyBytes; a
	// value at or above MaxBodyBytes streams only chunked bodies.
	StreamRequestBytes int `yaml:"stream_request_bytes"`
	// StreamResponseBytes is the response body size above which the edge streams the
	// origin's body to the client (chunked answers too) instead of holding it. With a
	// cache the threshold is the larger of this and Cache.MaxEntryBytes, and a
	// streamed answer is passed through, never stored. Zero holds every body (and
	// keeps a forwarded request free of allocations: fasthttp's streamed responses
	// cost four small ones), and is the default.
	StreamResponseBytes int `yaml:"stream_response_bytes"`
}

// JWT configures token verification at the edge. At most one key source may be set;
// with none, the edge forwards protected routes unchecked (the origin still checks)
// but still strips client-sent X-User-ID / X-User-Role.
type JWT struct {
	// SecretEnv names the environment variable holding the HS256 secret.
	SecretEnv string `yaml:"secret_env"`
	// PublicKeyFile is a PEM Ed25519 or RSA public key file (EdDSA or RS256 tokens).
	PublicKeyFile string `yaml:"public_key_file"`
	// JWKSURL is a JWKS endpoint refreshed in the background.
	JWKSURL string `yaml:"jwks_url"`
	// Issuer is the required iss claim.
	Issuer string `yaml:"issuer"`
	// Audience is the required aud claim.
	Audience string `yaml:"audience"`
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway time.Duration `yaml:"leeway"`
	// CookieName is the storefront cookie holding the access token.
	CookieName string `yaml:"cookie_name"`
	// Disabled forwards routes that need a user without checking their token,
	// leaving the check to the origin. Without it, an edge that has no key
	// (JWT_SECRET, public_key_file or jwks_url) fails closed: those routes
	// answer 401 (storefront pages: 303 to the login page), never unchecked.
	Disabled bool `yaml:"disabled"`
}

// RateLimit is one route group's token buckets.
type RateLimit struct {
	// Name labels the rule in metrics and logs.
	Name string `yaml:"name"`
	// Match selects the requests the rule applies to.
	Match Match `yaml:"match"`
	// PerIP limits each client IP; a zero rate means no per-IP limit.
	PerIP Bucket `yaml:"per_ip"`
	// PerUser limits each verified user; a zero rate means no per-user limit.
	PerUser Bucket `yaml:"per_user"`
	// MaxKeys bounds the buckets kept per family so a flood of distinct keys cannot
	// exhaust memory; zero means the limiter's default.
	MaxKeys int `yaml:"max_keys"`
}

// Match selects requests by path prefix and method.
type Match struct {
	// PathPrefix matches request paths starting with it; "/" or empty matches all.
	PathPrefix string `yaml:"path_prefix"`
	// Methods lists upper-case methods; empty matches every method.
	Methods []string `yaml:"methods"`
}

// Bucket is a token bucket's size.
type Bucket struct {
	// Rate is the sustained requests per second.
	Rate float64 `yaml:"rate"`
	// Burst is how many requests may arrive at once; zero means ceil(Rate).
	Burst int `yaml:"burst"`
}

// Cache configures the HTTP cache (proxy/cache). Every field but Enabled maps one to
// one onto cache.Config, whose doc comments hold the full semantics; Default fills
// each from cache's Default* constants, so the file and the library cannot disagree.
type Cache struct {
	// Enabled turns the cache on; it also needs RedisURL.
	Enabled bool `yaml:"enabled"`
	// RedisURL is the shared cache tier, redis://host:port/db (or a Redis Cluster seed).
	RedisURL string `yaml:"redis_url"`
	// MaxMemoryBytes bounds the in-process tier: decoded entries plus rueidis' own
	// client-side cache (one eighth of it). At least 1 MiB.
	MaxMemoryBytes int64 `yaml:"max_memory_bytes"`
	// MaxEntryBytes is the largest body stored; larger responses pass through uncached.
	MaxEntryBytes int `yaml:"max_entry_bytes"`
	// RedisTimeout bounds every Redis dial and command. A connection failure, or
	// timeouts with no success for max(4×RedisTimeout, 500 ms), trips the breaker
	// and the edge serves straight from the origins until a probe succeeds; a lone
	// timeout only sends its own request to the origin.
	RedisTimeout time.Duration `yaml:"redis_timeout"`
	// ProbeInterval is how often an unreachable Redis is probed.
	ProbeInterval time.Duration `yaml:"probe_interval"`
	// MaxTTL caps how long an entry stays in Redis, whatever the origin says.
	MaxTTL time.Duration `yaml:"max_ttl"`
	// Retention keeps entries with validators this long past their usable life, so
	// they can be revalidated with a cheap conditional request.
	Retention time.Duration `yaml:"retention"`
	// HeuristicMax caps heuristic freshness (RFC 9111 §4.2.2); negative turns it off.
	HeuristicMax time.Duration `yaml:"heuristic_max"`
	// CoalesceWait is how long a request waits for another request's fetch of the
	// same key before it fetches itself.
	CoalesceWait time.Duration `yaml:"coalesce_wait"`
	// Namespace prefixes entry keys in Redis; edges that share entries must agree.
	Namespace string `yaml:"namespace"`
	// TagIndexNamespace prefixes the per-tag key sets soft purges use; it must not
	// start with Namespace.
	TagIndexNamespace string `yaml:"tag_index_namespace"`
	// Name is the cache's name in Cache-Status (RFC 9211 §2), a token.
	Name string `yaml:"name"`
	// ReadYourWritesWindow is how long after a write the client's novashop_rv
	// token makes every edge check its entries' tag versions with Redis, so the
	// writer reads its write through any edge; negative turns the token off.
	ReadYourWritesWindow time.Duration `yaml:"read_your_writes_window"`
	// StaleOnError is how long past expiry a stored answer may still be served
	// when no origin can be reached (refused, reset, timed out, no upstream
	// available), marked "detail=stale-on-error" in Cache-Status (RFC 9111
	// §4.2.4). The answer's own stale-if-error replaces it; must-revalidate,
	// proxy-revalidate, no-cache and s-maxage forbid it. At most max_ttl;
	// negative turns it off.
	StaleOnError time.Duration `yaml:"stale_on_error"`
}

// CacheConfig returns the cache.Config this section describes (the clock is
// left to the cache's default).
func (c Cache) CacheConfig() cache.Config {
	return cache.Config{
		RedisURL:          c.RedisURL,
		MaxMemoryBytes:    c.MaxMemoryBytes,
		MaxEntryBytes:     c.MaxEntryBytes,
		RedisTimeout:      c.RedisTimeout,
		ProbeInterval:     c.ProbeInterval,
		MaxTTL:            c.MaxTTL,
		Retention:         c.Retention,
		HeuristicMax:      c.HeuristicMax,
		CoalesceWait:      c.CoalesceWait,
		Namespace:         c.Namespace,
		TagIndexNamespace: c.TagIndexNamespace,
		Name:              c.Name,

		ReadYourWritesWindow: c.ReadYourWritesWindow,
		StaleOnError:         c.StaleOnError,
	}
}

// AccessLog configures the access log (package proxy/accesslog: zap's JSON line,
// written from sharded buffers).
type AccessLog struct {
	// Enabled turns the access log on.
	Enabled bool `yaml:"enabled"`
	// Sample is the share of requests logged, 0 to 1; errors (status ≥ 500) are always logged.
	Sample float64 `yaml:"sample"`
	// BufferBytes is the size of one buffer shard: lines are written when a buffer
	// holds this much (as nginx's access_log buffer=). Fixed at start.
	BufferBytes int `yaml:"buffer_bytes"`
	// FlushInterval bounds how long a line waits in a buffer (as nginx's flush=).
	// Fixed at start.
	FlushInterval time.Duration `yaml:"flush_interval"`
}

// Load reads and validates the YAML file at path.
func Load(path string) (Config, error) {
	c, err := Read(path)
	if err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Read reads the YAML file at path like Decode, without validating, so that
// command-line overrides can complete it first.
func Read(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return Decode(b)
}

// Parse decodes YAML like Decode and validates the result.
func Parse(b []byte) (Config, error) {
	c, err := Decode(b)
	if err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Decode reads YAML over Default (fields left out keep their defaults), rejects
// unknown fields and normalises the result, without validating it.
func Decode(b []byte) (Config, error) {
	c := Default()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("%w: %s", ErrInvalid, oneLine(err.Error()))
	}
	c.Normalize()
	return c, nil
}

// Marshal renders c as YAML (durations as strings), the golden-test form.
func (c Config) Marshal() ([]byte, error) { return yaml.Marshal(c) }

// oneLine folds yaml's multi-line error lists into one line for stderr.
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "unmarshal errors:\n  ", "")
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}
