package config

import (
	"reflect"
	"testing"
	"time"
)

// TestRestartOnly: a reload names the changed keys it cannot apply, and
// only those.
func TestRestartOnly(t *testing.T) {
	base := Default()
	base.Upstreams = []Upstream{{Name: "a", URL: "http://127.0.0.1:9001", Weight: 1}}
	cases := []struct {
		name string
		edit func(c *Config)
		want []string
	}{
		{"nothing changed", func(*Config) {}, nil},
		{"reloadable sections", func(c *Config) {
			c.Upstreams = append(c.Upstreams, Upstream{Name: "b", URL: "http://127.0.0.1:9002", Weight: 2})
			c.Balancer.Policy = "p2c-ewma"
			c.Health.Interval = 7 * time.Second
			c.Retries.Attempts++
			c.RateLimits = []RateLimit{{Name: "r"}}
			c.Timeouts.Request = 9 * time.Second
			c.AccessLog.Sample = 0.5
			c.JWT.Disabled = !c.JWT.Disabled
			c.Limits.MaxBodyBytes = 1024 // tightened
			c.TLS.Certificates = []Certificate{{CertFile: "a.pem", KeyFile: "a.key"}}
		}, nil},
		{"listeners and the I/O core", func(c *Config) {
			c.Listen = "127.0.0.1:1"
			c.AdminListen = "127.0.0.1:2"
			c.IO = IOGoroutine
			c.IOLoops = 3
		}, []string{"admin_listen", "io", "io_loops", "listen"}},
		{"nested keys by their dotted names", func(c *Config) {
			c.Timeouts.Read = time.Minute
			c.Limits.MaxHeaderBytes = 1 << 15
			c.Cache.Enabled = !c.Cache.Enabled
			c.ProxyProtocol.Enabled = !c.ProxyProtocol.Enabled
			c.TLS.Listen = "127.0.0.1:3"
		}, []string{"cache.enabled", "limits.max_header_bytes", "proxy_protocol.enabled", "timeouts.read", "tls.listen"}},
		{"raising the body limit", func(c *Config) { c.Limits.MaxBodyBytes *= 2 }, []string{"limits.max_body_bytes"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			next := base
			next.Upstreams = append([]Upstream(nil), base.Upstreams...)
			tc.edit(&next)
			if got := RestartOnly(base, next); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("RestartOnly = %q, want %q", got, tc.want)
			}
		})
	}
}
