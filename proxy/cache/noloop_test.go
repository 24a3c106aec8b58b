package cache

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/novashop/edge/internal/testenv"
)

// localKeys returns the local table's keys that contain sub.
func localKeys(c *Cache, sub string) []string {
	var out []string
	for i := range c.local.shards {
		s := &c.local.shards[i]
		mu := s.mu.RLock(0)
		for k := range s.m {
			if strings.Contains(k, sub) {
				out = append(out, k)
			}
		}
		mu.RUnlock()
	}
	return out
}

// TestNoLoop pins CLIENT TRACKING NOLOOP against a real Redis: the entry an
// edge has just stored stays in its local table although its own SET
// changed the key (before NOLOOP the echo of that SET dropped it and the
// next request read the whole entry from Redis again), while a write by any
// other client still invalidates it at once, and the edge's own purges
// (hard and soft) still take effect on its next request.
func TestNoLoop(t *testing.T) {
	url := testenv.Redis(t)
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	other, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	ctx := context.Background()

	cases := []struct {
		name string
		// change is what happens to the stored entry under redisKey.
		change func(t *testing.T, c *Cache, redisKey string)
		// gone: the local copy must disappear (another client's write,
		// or a purge dropping it here); else it must survive.
		gone bool
		// want is a substring of the next request's Cache-Status.
		want string
	}{
		{"its own store is not echoed back", func(*testing.T, *Cache, string) {}, false, "; hit"},
		{"another client's SET invalidates", func(t *testing.T, _ *Cache, k string) {
			if err := other.Do(ctx, other.B().Set().Key(k).Value("junk").Build()).Error(); err != nil {
				t.Fatal(err)
			}
		}, true, "fwd=uri-miss"},
		{"another client's DEL invalidates", func(t *testing.T, _ *Cache, k string) {
			if err := other.Do(ctx, other.B().Del().Key(k).Build()).Error(); err != nil {
				t.Fatal(err)
			}
		}, true, "fwd=uri-miss"},
		{"its own hard purge applies locally", func(t *testing.T, c *Cache, _ string) {
			if _, err := c.Purge(ctx, []string{"/n"}, nil, "", false); err != nil {
				t.Fatal(err)
			}
		}, true, "fwd=uri-miss"},
		{"its own soft purge applies locally", func(t *testing.T, c *Cache, _ string) {
			if _, err := c.Purge(ctx, []string{"/n"}, nil, "", true); err != nil {
				t.Fatal(err)
			}
		}, true, "detail=soft-purged"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := randName(t)
			c := newTestCache(t, url, ns, nil)
			o := newOrigin(static(200, "body", "Cache-Control", "max-age=3600", "ETag", `"v1"`))
			if r := do(c, o, "GET", "/n"); !strings.Contains(cacheStatus(r), "stored") {
				t.Fatalf("first request: Cache-Status %q, want stored", cacheStatus(r))
			}
			keys := localKeys(c, "/n")
			if len(keys) != 1 {
				t.Fatalf("local table holds %q after the store, want the one entry", keys)
			}
			tc.change(t, c, keys[0])
			if tc.gone {
				eventually(t, 5*time.Second, "the push dropping the local copy", func() bool { return len(localKeys(c, "/n")) == 0 })
			} else {
				// Give an echo every chance to arrive: a round trip to
				// Redis after the write is ordered behind any push for it.
				cli, err := c.t.cli()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.t.do(cli.B().Ping().Build()); err != nil {
					t.Fatal(err)
				}
				time.Sleep(50 * time.Millisecond)
				if got := localKeys(c, "/n"); len(got) != 1 {
					t.Fatalf("local table holds %q after the edge's own write, want the entry kept", got)
				}
			}
			calls := o.calls.Load()
			r := do(c, o, "GET", "/n")
			if !strings.Contains(cacheStatus(r), tc.want) {
				t.Fatalf("next request: Cache-Status %q, want %q", cacheStatus(r), tc.want)
			}
			if tc.want == "; hit" && o.calls.Load() != calls {
				t.Fatal("a hit reached the origin")
			}
		})
	}
}
