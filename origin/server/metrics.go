package server

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/novashop/edge/internal/metricshelp"
	"github.com/valyala/fasthttp"
)

// metricsSet is one server's metrics. Each server has its own Set, so two
// in-process servers (as in the no-oversell test) never collide.
type metricsSet struct {
	set *metrics.Set
	// series caches counters and histograms by label set, so the hot path
	// does one map lookup and no formatting.
	series sync.Map // seriesKey -> *series
}

type seriesKey struct {
	route, method string
	status        int
}

type series struct {
	count *metrics.Counter
	dur   *metrics.PrometheusHistogram
}

// originHelp is the HELP text of each origin series (docs/metrics.md lists them).
var originHelp = metricshelp.Help{
	"origin_http_requests_total":                    "Requests the origin answered, by route pattern, method and status.",
	"origin_http_request_duration_seconds":          "Time from a request's arrival to its answer, by route pattern, method and status.",
	"origin_pgxpool_total_conns":                    "PostgreSQL connections in the pool (idle, acquired and being opened).",
	"origin_pgxpool_idle_conns":                     "Idle PostgreSQL connections in the pool.",
	"origin_pgxpool_acquired_conns":                 "PostgreSQL connections in use by a request.",
	"origin_pgxpool_max_conns":                      "Size limit of the PostgreSQL pool (--db-max-conns).",
	"origin_pgxpool_acquire_total":                  "Connections acquired from the PostgreSQL pool.",
	"origin_pgxpool_empty_acquire_total":            "Acquires that found no idle connection and had to wait or open one.",
	"origin_pgxpool_acquire_duration_seconds_total": "Total time requests spent acquiring a PostgreSQL connection.",
}

func newMetricsSet(pool *pgxpool.Pool) *metricsSet {
	m := &metricsSet{set: metrics.NewSet()}
	stat := func(name string, f func(*pgxpool.Stat) float64) {
		m.set.NewGauge(name, func() float64 { return f(pool.Stat()) })
	}
	stat("origin_pgxpool_total_conns", func(s *pgxpool.Stat) float64 { return float64(s.TotalConns()) })
	stat("origin_pgxpool_idle_conns", func(s *pgxpool.Stat) float64 { return float64(s.IdleConns()) })
	stat("origin_pgxpool_acquired_conns", func(s *pgxpool.Stat) float64 { return float64(s.AcquiredConns()) })
	stat("origin_pgxpool_max_conns", func(s *pgxpool.Stat) float64 { return float64(s.MaxConns()) })
	// The pool's running totals are counters; the library has no counter
	// read from a function, so they are written as counters by hand (a gauge
	// named _total is what promtool rejects).
	m.set.RegisterMetricsWriter(func(w io.Writer) {
		s := pool.Stat()
		metrics.WriteCounterUint64(w, "origin_pgxpool_acquire_total", uint64(s.AcquireCount()))
		metrics.WriteCounterUint64(w, "origin_pgxpool_empty_acquire_total", uint64(s.EmptyAcquireCount()))
		metrics.WriteCounterFloat64(w, "origin_pgxpool_acquire_duration_seconds_total", s.AcquireDuration().Seconds())
	})
	return m
}

func (m *metricsSet) observe(route, method string, status int, d time.Duration) {
	k := seriesKey{route, method, status}
	v, ok := m.series.Load(k)
	if !ok {
		labels := fmt.Sprintf(`{route=%q,method=%q,status="%d"}`, route, method, status)
		v, _ = m.series.LoadOrStore(k, &series{
			count: m.set.GetOrCreateCounter("origin_http_requests_total" + labels),
			dur:   m.set.GetOrCreatePrometheusHistogram("origin_http_request_duration_seconds" + labels),
		})
	}
	s := v.(*series)
	s.count.Inc()
	s.dur.Update(d.Seconds())
}

func (m *metricsSet) serve(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
	metricshelp.Write(ctx, originHelp, func(w io.Writer) {
		m.set.WritePrometheus(w)
		metrics.WriteProcessMetrics(w)
	})
}
