package cache

import (
	"io"

	"github.com/VictoriaMetrics/metrics"
)

// cacheMetrics are one Cache's Prometheus series, in their own set so two
// caches in one process (tests, two edges) do not collide.
type cacheMetrics struct {
	set                      *metrics.Set
	hit, stale, miss, bypass *metrics.Counter
	stored                   *metrics.Counter
	// rvCurrent and rvChanged count read-your-writes checks against
	// Redis whose entry was still current, or had changed.
	rvCurrent, rvChanged *metrics.Counter
}

func newCacheMetrics(c *Cache) *cacheMetrics {
	s := metrics.NewSet()
	m := &cacheMetrics{
		set:       s,
		hit:       s.NewCounter(`edge_cache_requests_total{result="hit"}`),
		stale:     s.NewCounter(`edge_cache_requests_total{result="stale"}`),
		miss:      s.NewCounter(`edge_cache_requests_total{result="miss"}`),
		bypass:    s.NewCounter(`edge_cache_requests_total{result="bypass"}`),
		stored:    s.NewCounter(`edge_cache_stored_total`),
		rvCurrent: s.NewCounter(`edge_cache_rv_checks_total{result="current"}`),
		rvChanged: s.NewCounter(`edge_cache_rv_checks_total{result="changed"}`),
	}
	s.NewGauge(`edge_cache_local_bytes`, func() float64 { return float64(c.local.bytes()) })
	s.NewGauge(`edge_cache_redis_up`, func() float64 {
		if c.t.ok() {
			return 1
		}
		return 0
	})
	return m
}

// WritePrometheus writes the cache's series in the Prometheus text format;
// the edge's /metrics handler calls it.
func (c *Cache) WritePrometheus(w io.Writer) { c.m.set.WritePrometheus(w) }
