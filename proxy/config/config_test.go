package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/novashop/edge/proxy/cache"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestGoldenEdgeYAML pins how configs/edge.yaml parses: the normalised config,
// rendered back to YAML, must equal testdata/edge.golden.yaml (go test -update rewrites it).
func TestGoldenEdgeYAML(t *testing.T) {
	c, err := Load(filepath.Join("..", "..", "configs", "edge.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "edge.golden.yaml")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("configs/edge.yaml parses differently from %s:\n%s", golden, got)
	}
}

func TestDefaultsNeedOnlyUpstreams(t *testing.T) {
	c, err := Parse([]byte("upstreams: [{url: 'http://127.0.0.1:8001'}]"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Upstreams[0].Name != "127.0.0.1:8001" || c.Upstreams[0].Weight != 1 {
		t.Fatalf("upstream not normalised: %+v", c.Upstreams[0])
	}
	if c.Balancer.Policy != "round-robin" || c.Retries.Attempts != 3 || c.JWT.CookieName != "novashop_access" {
		t.Fatalf("defaults lost: %+v", c)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // substrings that must all appear
	}{
		{"empty", "", []string{"at least one upstream"}},
		{"unknown field", "upstreams: [{url: 'http://a:1'}]\nlisten_port: 1", []string{"field listen_port not found"}},
		{"bad yaml", "upstreams: [", []string{"config: invalid"}},
		{"bad duration", "upstreams: [{url: 'http://a:1'}]\nhealth: {interval: soon}", []string{"config: invalid"}},
		{"access log buffer too small", "upstreams: [{url: 'http://a:1'}]\naccess_log: {buffer_bytes: 100}", []string{"access_log.buffer_bytes 100"}},
		{"access log buffer too big", "upstreams: [{url: 'http://a:1'}]\naccess_log: {buffer_bytes: 1073741824}", []string{"access_log.buffer_bytes"}},
		{"access log never flushed", "upstreams: [{url: 'http://a:1'}]\naccess_log: {flush_interval: 0s}", []string{"access_log.flush_interval 0s"}},
		{"access log flushed too rarely", "upstreams: [{url: 'http://a:1'}]\naccess_log: {flush_interval: 1h}", []string{"access_log.flush_interval 1h0m0s"}},
		{"negative drain", "upstreams: [{url: 'http://a:1'}]\ntimeouts: {drain: -1s}", []string{"timeouts.drain -1s must be 0..10m"}},
		{"endless drain", "upstreams: [{url: 'http://a:1'}]\ntimeouts: {drain: 1h}", []string{"timeouts.drain 1h0m0s must be 0..10m"}},
		{"request-line limit below the URI limit", "upstreams: [{url: 'http://a:1'}]\nlimits: {max_uri_bytes: 8192, max_request_line_bytes: 4094}", []string{"limits.max_request_line_bytes 4094 must be max_uri_bytes (8192)..1048576"}},
		{"request-line limit too large", "upstreams: [{url: 'http://a:1'}]\nlimits: {max_request_line_bytes: 2000000}", []string{"limits.max_request_line_bytes 2000000"}},
		{"zero field line limit", "upstreams: [{url: 'http://a:1'}]\nlimits: {max_field_line_bytes: 0}", []string{"limits.max_field_line_bytes 0 must be 1..1048576"}},
		{"negative field line limit", "upstreams: [{url: 'http://a:1'}]\nlimits: {max_field_line_bytes: -1}", []string{"limits.max_field_line_bytes -1"}},
		{"zero header fields", "upstreams: [{url: 'http://a:1'}]\nlimits: {max_header_fields: 0}", []string{"limits.max_header_fields 0 must be 1..10000"}},
		{"unknown obs_fold", "upstreams: [{url: 'http://a:1'}]\nlimits: {obs_fold: keep}", []string{`limits.obs_fold "keep" must be reject or unfold`}},
		{"unknown dangerous_framing", "upstreams: [{url: 'http://a:1'}]\nlimits: {dangerous_framing: allow}", []string{`limits.dangerous_framing "allow" must be reject or tolerate`}},
		{"too many header fields", "upstreams: [{url: 'http://a:1'}]\nlimits: {max_header_fields: 10001}", []string{"limits.max_header_fields 10001"}},
		{"negative io_loops", "upstreams: [{url: 'http://a:1'}]\nio: eventloop\nio_loops: -1", []string{"io_loops -1 must be 0..256"}},
		{"too many io_loops", "upstreams: [{url: 'http://a:1'}]\nio: eventloop\nio_loops: 257", []string{"io_loops 257 must be 0..256"}},
		{"negative io_batch_wait", "upstreams: [{url: 'http://a:1'}]\nio_batch_wait: -1ms", []string{"io_batch_wait -1ms must be 0..2ms"}},
		{"too long io_batch_wait", "upstreams: [{url: 'http://a:1'}]\nio_batch_wait: 2001us", []string{"io_batch_wait 2.001ms must be 0..2ms"}},
		{"negative pipeline depth", "upstreams: [{url: 'http://a:1'}]\nlimits: {upstream_pipeline_depth: -1}", []string{"limits.upstream_pipeline_depth -1 must be 0..64"}},
		{"pipeline too deep", "upstreams: [{url: 'http://a:1'}]\nlimits: {upstream_pipeline_depth: 65}", []string{"limits.upstream_pipeline_depth 65 must be 0..64"}},
		{"negative upstream pipeline depth", "upstreams: [{url: 'http://a:1'}, {url: 'http://b:1', pipeline_depth: -1}]", []string{"upstreams[1].pipeline_depth -1 must be 0..64 (0 or 1: no pipelining to this host)"}},
		{"upstream pipeline too deep", "upstreams: [{url: 'http://a:1', pipeline_depth: 65}]", []string{"upstreams[0].pipeline_depth 65 must be 0..64"}},
		{"upstream pipeline not a number", "upstreams: [{url: 'http://a:1', pipeline_depth: off}]", []string{"config: invalid", "cannot unmarshal !!str `off` into int"}},
		{"unknown http/2 server", "upstreams: [{url: 'http://a:1'}]\nh2c_server: quic", []string{"h2c_server \"quic\" must be"}},
		{"acme renewal knobs", `
upstreams: [{url: 'http://a:1'}]
tls: {listen: ':8443', acme: {directory_url: 'https://acme/dir', domains: [shop.test], renew_check_interval: 10ms, renewal_window_ratio: 1}}
`, []string{"tls.acme.renew_check_interval", "tls.acme.renewal_window_ratio"}},
		{"everything at once", `
listen: nowhere
upstreams:
  - {name: a, url: 'ftp://x'}
  - {name: a, url: 'http://b:1', weight: 5000}
balancer: {policy: fastest, hash_key: 'query:x'}
health: {timeout: 5s, interval: 1s, rise: 0}
retries: {attempts: 0, budget_ratio: 2, window: 10ms}
limits: {max_header_bytes: 10, max_uri_bytes: 5}
jwt: {public_key_file: k.pem, jwks_url: 'http://k', cookie_name: ''}
rate_limits: [{name: '', match: {path_prefix: api}, per_ip: {rate: -1}}]
cache: {enabled: true, max_memory_bytes: 10, max_ttl: 10ms, redis_timeout: -1s, namespace: 'x:', tag_index_namespace: 'x:ti:', name: 'a b'}
access_log: {sample: 2}
`, []string{
			`listen "nowhere"`, "upstreams[0].url", "upstreams[1].weight 5000", `upstreams[1].name "a" is used twice`,
			"balancer.policy", "balancer.hash_key", "health.timeout", "health.rise", "retries.attempts",
			"retries.budget_ratio", "retries.window", "limits.max_header_bytes", "limits.max_uri_bytes",
			"set at most one", "jwt.cookie_name", "rate_limits[0].name", "rate_limits[0].match.path_prefix",
			"rate_limits[0].per_ip", "cache.enabled needs", "cache.max_memory_bytes", "cache.max_ttl",
			"cache.redis_timeout", "cache.tag_index_namespace", "cache.name", "access_log.sample",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestIOLoops pins the accepted io_loops range: 0 (one loop per GOMAXPROCS)
// up to MaxIOLoops, on either core (the goroutine core ignores it).
func TestIOLoops(t *testing.T) {
	tests := []struct {
		yaml string
		want int
	}{
		{"io: eventloop", 0},
		{"io: eventloop\nio_loops: 1", 1},
		{"io: eventloop\nio_loops: 256", MaxIOLoops},
		{"io: goroutine\nio_loops: 2", 2},
	}
	for _, tt := range tests {
		c, err := Parse([]byte("upstreams: [{url: 'http://a:1'}]\n" + tt.yaml))
		if err != nil {
			t.Fatalf("%q: %v", tt.yaml, err)
		}
		if c.IOLoops != tt.want {
			t.Errorf("%q: IOLoops = %d, want %d", tt.yaml, c.IOLoops, tt.want)
		}
	}
}

// TestIOBatchWait pins the accepted io_batch_wait range: 0 (off) up to
// MaxIOBatchWait, as a duration.
func TestIOBatchWait(t *testing.T) {
	tests := []struct {
		yaml string
		want time.Duration
	}{
		{"io: eventloop", 0},
		{"io_batch_wait: 0s", 0},
		{"io_batch_wait: 500us", 500 * time.Microsecond},
		{"io_batch_wait: 2ms", MaxIOBatchWait},
	}
	for _, tt := range tests {
		c, err := Parse([]byte("upstreams: [{url: 'http://a:1'}]\n" + tt.yaml))
		if err != nil {
			t.Fatalf("%q: %v", tt.yaml, err)
		}
		if c.IOBatchWait != tt.want {
			t.Errorf("%q: IOBatchWait = %s, want %s", tt.yaml, c.IOBatchWait, tt.want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.yaml")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	seed, _ := os.ReadFile(filepath.Join("..", "..", "configs", "edge.yaml"))
	f.Add(seed)
	f.Add([]byte("upstreams: [{url: 'http://a:1'}]"))
	f.Add([]byte("balancer: {policy: hash, hash_key: 'cookie:x'}"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config Validate rejects: %v", err)
		}
	})
}

// TestCacheSection checks the cache section end to end: every field reaches
// cache.Config, omitted fields keep the cache library's defaults, and a bad
// section is rejected even while the cache is off.
func TestCacheSection(t *testing.T) {
	c, err := Parse([]byte(`
upstreams: [{url: 'http://a:1'}]
cache:
  enabled: true
  redis_url: redis://127.0.0.1:6379/2
  max_memory_bytes: 2097152
  max_entry_bytes: 1000
  redis_timeout: 20ms
  probe_interval: 1s
  max_ttl: 1h
  retention: 0s
  heuristic_max: -1s
  coalesce_wait: 2s
  namespace: 'shop:c:'
  tag_index_namespace: 'shop:ti:'
  name: shop-edge
  read_your_writes_window: 2s
  stale_on_error: 30s
`))
	if err != nil {
		t.Fatal(err)
	}
	want := cache.Config{RedisURL: "redis://127.0.0.1:6379/2", MaxMemoryBytes: 2 << 20, MaxEntryBytes: 1000,
		RedisTimeout: 20 * time.Millisecond, ProbeInterval: time.Second, MaxTTL: time.Hour, HeuristicMax: -time.Second,
		CoalesceWait: 2 * time.Second, Namespace: "shop:c:", TagIndexNamespace: "shop:ti:", Name: "shop-edge",
		ReadYourWritesWindow: 2 * time.Second, StaleOnError: 30 * time.Second}
	if got := c.Cache.CacheConfig(); !reflect.DeepEqual(got, want) {
		t.Fatalf("CacheConfig() =\n%+v\nwant\n%+v", got, want)
	}

	d, err := Parse([]byte("upstreams: [{url: 'http://a:1'}]\ncache: {redis_url: 'redis://r:6379'}"))
	if err != nil {
		t.Fatal(err)
	}
	if dc := d.Cache; dc.RedisTimeout != cache.DefaultRedisTimeout || dc.MaxEntryBytes != cache.DefaultMaxEntryBytes ||
		dc.Namespace != cache.DefaultNamespace || dc.Name != cache.DefaultName || dc.MaxMemoryBytes != 64<<20 ||
		dc.StaleOnError != cache.DefaultStaleOnError {
		t.Fatalf("defaults lost: %+v", dc)
	}

	for _, tt := range []struct{ yaml, want string }{
		{"cache: {max_memory_bytes: 1000}", "cache.max_memory_bytes"},
		{"cache: {coalesce_wait: -1s}", "cache.coalesce_wait"},
		{"cache: {namespace: 'novashop:tagv:x'}", "cache.namespace"},
		{"cache: {redis_url: 'http://r:6379'}", "cache.redis_url"},
		{"cache: {stale_on_error: 48h}", "cache.stale_on_error"},
	} {
		_, err := Parse([]byte("upstreams: [{url: 'http://a:1'}]\n" + tt.yaml))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one naming %s", tt.yaml, err, tt.want)
		}
	}
}

// TestPanicThreshold: health.panic_threshold defaults to 0.5, 0 turns it off,
// and anything outside 0..1 is refused with the field's name.
func TestPanicThreshold(t *testing.T) {
	for _, tt := range []struct {
		yaml string
		want float64
		err  bool
	}{
		{"", 0.5, false},
		{"health: {panic_threshold: 0}", 0, false},
		{"health: {panic_threshold: 1}", 1, false},
		{"health: {panic_threshold: 0.3}", 0.3, false},
		{"health: {panic_threshold: -0.1}", 0, true},
		{"health: {panic_threshold: 1.5}", 0, true},
		{"health: {panic_threshold: .nan}", 0, true},
		{"health: {panic_threshold: 50}", 0, true}, // a percentage by mistake
	} {
		c, err := Parse([]byte("upstreams: [{url: 'http://a:1'}]\n" + tt.yaml))
		if tt.err {
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "health.panic_threshold") {
				t.Errorf("%q: err = %v, want one naming health.panic_threshold", tt.yaml, err)
			}
			continue
		}
		if err != nil || c.Health.PanicThreshold != tt.want {
			t.Errorf("%q: threshold %v, err %v; want %v", tt.yaml, c.Health.PanicThreshold, err, tt.want)
		}
	}
}

// upstreams[].pipeline_depth is optional (nil: the limit applies), and a set
// value, 0 included, survives parsing and rendering.
func TestUpstreamPipelineDepth(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []int // -1: unset
	}{
		{"unset", "upstreams: [{url: 'http://a:1'}]", []int{-1}},
		{"off", "upstreams: [{url: 'http://a:1', pipeline_depth: 0}, {url: 'http://b:1'}]", []int{0, -1}},
		{"one is off too", "upstreams: [{url: 'http://a:1', pipeline_depth: 1}]", []int{1}},
		{"own depth", "upstreams: [{url: 'http://a:1', pipeline_depth: 64}, {url: 'http://b:1', pipeline_depth: 2}]", []int{64, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			out, err := c.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			again, err := Parse(out)
			if err != nil {
				t.Fatalf("rendered config does not parse: %v\n%s", err, out)
			}
			for _, cfg := range []Config{c, again} {
				for i, want := range tt.want {
					got := -1
					if d := cfg.Upstreams[i].PipelineDepth; d != nil {
						got = *d
					}
					if got != want {
						t.Errorf("upstreams[%d].pipeline_depth = %d, want %d", i, got, want)
					}
				}
			}
		})
	}
}
