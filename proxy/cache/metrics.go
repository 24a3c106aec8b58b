package cache

import (
	"io"

	"github.com/VictoriaMetrics/metrics"
	"github.com/novashop/edge/internal/metricshelp"
	"github.com/novashop/edge/proxy/internal/stripe"
	"github.com/valyala/fasthttp"
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
	// hits counts local hits (countHit) in stripes, added to hit when the
	// series are written: the loops' hits would otherwise share hit's
	// cache line (see package stripe).
	hits stripe.Counter
}

// countHit counts a hit answered from the local tier on ctx's stripe.
func (c *Cache) countHit(ctx *fasthttp.RequestCtx) { c.m.hits.Inc(stripe.Hint(ctx)) }

// syncHits adds the striped local hits to the hit series.
func (m *cacheMetrics) syncHits() {
	if n := m.hits.Drain(); n > 0 {
		m.hit.Add(int(n))
	}
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

// cacheHelp is the HELP text of each cache series (docs/metrics.md lists them).
var cacheHelp = metricshelp.Help{
	"edge_cache_requests_total":  "Requests the cache looked up, by result: hit, stale (served stale), miss, bypass (Redis unavailable or a target it cannot key, passed to the origin untouched).",
	"edge_cache_stored_total":    "Responses stored in the cache.",
	"edge_cache_rv_checks_total": "Read-your-writes token checks against Redis, by result: current (the stored entry was still good) or changed (it was not, so a miss).",
	"edge_cache_local_bytes":     "Bytes held by the in-process tier of the cache.",
	"edge_cache_redis_up":        "1 while the cache reaches Redis, 0 while its breaker is open and requests go straight to the origins.",
}

// WritePrometheus writes the cache's series in the Prometheus text format,
// with their # HELP and # TYPE lines; the edge's /metrics handler calls it.
func (c *Cache) WritePrometheus(w io.Writer) {
	c.m.syncHits()
	metricshelp.Write(w, cacheHelp, c.m.set.WritePrometheus)
}
