package cache

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/novashop/edge/internal/testenv"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{RedisURL: "redis://127.0.0.1:6379/0"}
	cases := []struct {
		name string
		cfg  func(c *Config)
		want []string // substrings of the error; nil means valid
	}{
		{"defaults", func(*Config) {}, nil},
		{"missing URL", func(c *Config) { c.RedisURL = "" }, []string{"redis_url"}},
		{"tiny memory", func(c *Config) { c.MaxMemoryBytes = 1000 }, []string{"max_memory_bytes"}},
		{"negative timeout and ttl", func(c *Config) { c.RedisTimeout = -1; c.MaxTTL = -time.Second }, []string{"redis_timeout", "max_ttl"}},
		{"overlapping namespaces", func(c *Config) { c.Namespace = "a:"; c.TagIndexNamespace = "a:ti:" }, []string{"tag_index_namespace"}},
		{"namespace overlapping tag versions", func(c *Config) { c.Namespace = "novashop:" }, []string{"namespace"}},
		{"bad name", func(c *Config) { c.Name = "my cache" }, []string{"name"}},
		{"read-your-writes window off", func(c *Config) { c.ReadYourWritesWindow = -1 }, nil},
		{"read-your-writes window 1 s", func(c *Config) { c.ReadYourWritesWindow = time.Second }, nil},
		{"read-your-writes window too short", func(c *Config) { c.ReadYourWritesWindow = 10 * time.Millisecond }, []string{"read_your_writes_window"}},
		{"read-your-writes window too long", func(c *Config) { c.ReadYourWritesWindow = time.Hour }, []string{"read_your_writes_window"}},
		{"stale_on_error off", func(c *Config) { c.StaleOnError = -1 }, nil},
		{"stale_on_error 10 min", func(c *Config) { c.StaleOnError = 10 * time.Minute }, nil},
		{"stale_on_error past max_ttl", func(c *Config) { c.StaleOnError = 2 * time.Hour; c.MaxTTL = time.Hour }, []string{"stale_on_error"}},
	}
	for _, tc := range cases {
		c := ok
		tc.cfg(&c)
		err := c.Validate()
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err %v does not wrap ErrInvalidConfig", tc.name, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not mention %q", tc.name, err, w)
			}
		}
	}
	if _, err := New(Config{RedisURL: "http://not-redis"}, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New with a non-Redis URL: %v", err)
	}
}

// TestOutageLogsOnce: one warning per outage, one info on recovery.
func TestOutageLogsOnce(t *testing.T) {
	rs := testenv.FreshRedis(t)
	core, logs := observer.New(zap.InfoLevel)
	c, err := New(Config{RedisURL: rs.URL, Namespace: "t:" + randName(t) + ":", TagIndexNamespace: "ti:" + randName(t) + ":"}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	o := newOrigin(static(200, "b", "Cache-Control", "max-age=60"))
	rs.Kill()
	for i := 0; i < 50; i++ {
		do(c, o, "GET", "/l")
	}
	if n := logs.FilterMessageSnippet("unreachable").Len(); n != 1 {
		t.Fatalf("%d outage warnings, want 1", n)
	}
}
