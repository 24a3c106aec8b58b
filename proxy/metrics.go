package proxy

import (
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/novashop/edge/internal/metricshelp"
	"github.com/novashop/edge/proxy/internal/stripe"
)

// Metrics are the edge's Prometheus series, in their own metrics.Set so several
// servers (tests) do not collide. Per-status counters are created on first use and
// then found by array index, so counting a request allocates nothing.
type Metrics struct {
	set *metrics.Set

	requests [600]atomic.Pointer[metrics.Counter]
	// hot counts the statuses of nearly every answer (200 and 304) in
	// stripes (RequestOn), added to their series when they are written:
	// the event loops answer at once, and one counter's cache line moving
	// between their cores on every hit cost more than the add (see
	// package stripe).
	hot [2]stripe.Counter

	mu        sync.Mutex
	upstreams map[string]*upstreamMetrics

	Retries         *metrics.Counter
	RetriesDenied   *metrics.Counter
	NoUpstream      *metrics.Counter
	Panics          *metrics.Counter
	logDropped      *metrics.Counter // access log lines the buffered writer dropped
	jwtMissing      *metrics.Counter
	jwtInvalid      *metrics.Counter
	jwtForbidden    *metrics.Counter
	fwdInvalidAddr  *metrics.Counter // trusted forwarding headers with an entry that is not an address
	fwdBadScheme    *metrics.Counter // trusted scheme headers refused 400
	rateLimitedIP   sync.Map         // rule name -> *metrics.Counter
	rateLimitedUser sync.Map
}

type upstreamMetrics struct {
	m        *Metrics
	name     string
	statuses [600]atomic.Pointer[metrics.Counter]
	errors   *metrics.Counter
	latency  *metrics.PrometheusHistogram
	ejected  *metrics.Counter
}

// NewMetrics builds an empty series set.
func NewMetrics() *Metrics {
	s := metrics.NewSet()
	return &Metrics{
		set:            s,
		upstreams:      map[string]*upstreamMetrics{},
		Retries:        s.NewCounter("edge_retries_total"),
		RetriesDenied:  s.NewCounter("edge_retries_denied_total"),
		NoUpstream:     s.NewCounter("edge_no_upstream_total"),
		Panics:         s.NewCounter("edge_panics_total"),
		logDropped:     s.NewCounter("edge_access_log_dropped_lines_total"),
		jwtMissing:     s.NewCounter(`edge_jwt_rejections_total{reason="missing"}`),
		jwtInvalid:     s.NewCounter(`edge_jwt_rejections_total{reason="invalid"}`),
		jwtForbidden:   s.NewCounter(`edge_jwt_rejections_total{reason="forbidden"}`),
		fwdInvalidAddr: s.NewCounter(`edge_forwarded_header_problems_total{problem="invalid_address"}`),
		fwdBadScheme:   s.NewCounter(`edge_forwarded_header_problems_total{problem="bad_scheme"}`),
	}
}

// edgeHelp is the HELP text of each edge series (docs/metrics.md lists them).
var edgeHelp = metricshelp.Help{
	"edge_requests_total":                        "Answers the edge gave its clients, by HTTP status.",
	"edge_upstream_requests_total":               "Answers the edge received from each origin, by HTTP status.",
	"edge_upstream_request_duration_seconds":     "Time of one try against an origin, answered or failed.",
	"edge_upstream_errors_total":                 "Tries against an origin that got no answer (connection error, timeout).",
	"edge_retries_total":                         "Tries the edge made again on another origin.",
	"edge_draining":                              "1 while the edge drains (SIGTERM or POST /admin/drain: /readyz answers 503, answers close their connections), else 0.",
	"edge_pool_panic":                            "1 while fewer than health.panic_threshold of the hosts are healthy and the pool balances over every host, else 0.",
	"edge_retries_denied_total":                  "Retries the retry budget refused.",
	"edge_ejections_total":                       "Times passive health checks ejected an origin.",
	"edge_no_upstream_total":                     "Requests answered 503 because no origin was available.",
	"edge_panics_total":                          "Handler panics recovered as 500 answers.",
	"edge_access_log_dropped_lines_total":        "Access log lines dropped because the output could not keep up (every buffer was waiting to be written).",
	"edge_jwt_rejections_total":                  "Requests refused at the edge by the JWT check, by reason (missing, invalid, forbidden).",
	"edge_rate_limited_total":                    "Requests refused 429 by a rate-limit rule, by rule and key (ip or user).",
	"edge_tls_handshakes_total":                  "TLS handshakes completed, by resumed (true: session ticket).",
	"edge_tls_handshake_failures_total":          "TLS handshakes that failed or timed out (the connection was closed).",
	"edge_tls_handshakes_refused_total":          "Connections to the TLS listener closed before their handshake because tls.max_handshakes were in progress.",
	"edge_tls_certificate_reloads_total":         "Certificate reloads (SIGHUP or a changed file).",
	"edge_tls_certificate_reload_failures_total": "Certificate reloads where a pair failed to load and the previous certificate was kept.",
	"edge_tls_ticket_key_refresh_failures_total": "Session ticket key refreshes that failed (the keys in force were kept).",
	"edge_h2_errors_total":                       "HTTP/2 protocol errors by x/net's error type (each refused frame, stream or connection).",
	"edge_compressed_total":                      "Answers the edge compressed, by encoding.",
	"edge_compression_memo_hits_total":           "Compressed answers taken from the memo instead of compressing again.",
	"edge_forwarded_header_problems_total":       "Requests from a forwarded.trusted peer whose forwarding headers had a problem, by problem (invalid_address: an entry that is not an address ended the walk, the client is the last address before it or the peer; bad_scheme: contradicting or unknown scheme headers, answered 400).",
	"edge_proxy_protocol_rejected_total":         "Connections to the public listeners closed unanswered by the PROXY protocol check, by reason (untrusted source, invalid or missing header, timeout).",
}

// WritePrometheus writes every series plus the Go process metrics, with
// their # HELP and # TYPE lines.
func (m *Metrics) WritePrometheus(w io.Writer) {
	m.syncHot()
	metricshelp.Write(w, edgeHelp, func(w io.Writer) {
		m.set.WritePrometheus(w)
		metrics.WriteProcessMetrics(w)
	})
}

func statusIndex(code int) int {
	if code < 100 || code > 599 {
		return 0
	}
	return code
}

// Request counts one answer to a client by status.
func (m *Metrics) Request(code int) { m.requestCounter(statusIndex(code)).Inc() }

func (m *Metrics) requestCounter(i int) *metrics.Counter {
	c := m.requests[i].Load()
	if c == nil {
		c = m.set.GetOrCreateCounter(`edge_requests_total{status="` + strconv.Itoa(i) + `"}`)
		m.requests[i].Store(c)
	}
	return c
}

// hotStatuses are the statuses RequestOn counts in stripes.
var hotStatuses = [len(Metrics{}.hot)]int{200, 304}

// RequestOn is Request for a caller with stripe hint h (stripe.Hint).
func (m *Metrics) RequestOn(code int, h uint) {
	switch code {
	case hotStatuses[0]:
		m.hot[0].Inc(h)
	case hotStatuses[1]:
		m.hot[1].Inc(h)
	default:
		m.Request(code)
	}
}

// syncHot adds the striped counts to their series.
func (m *Metrics) syncHot() {
	for i := range m.hot {
		if n := m.hot[i].Drain(); n > 0 {
			m.requestCounter(hotStatuses[i]).Add(int(n))
		}
	}
}

// upstream returns (creating once) the series of the host called name.
func (m *Metrics) upstream(name string) *upstreamMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	if um := m.upstreams[name]; um != nil {
		return um
	}
	q := strconv.Quote(name)
	um := &upstreamMetrics{
		m:       m,
		name:    q,
		errors:  m.set.GetOrCreateCounter("edge_upstream_errors_total{upstream=" + q + "}"),
		latency: m.set.GetOrCreatePrometheusHistogram("edge_upstream_request_duration_seconds{upstream=" + q + "}"),
		ejected: m.set.GetOrCreateCounter("edge_ejections_total{upstream=" + q + "}"),
	}
	m.upstreams[name] = um
	return um
}

// answered counts one answer from the host and its latency.
func (um *upstreamMetrics) answered(code int, d time.Duration) {
	i := statusIndex(code)
	c := um.statuses[i].Load()
	if c == nil {
		c = um.m.set.GetOrCreateCounter(fmt.Sprintf("edge_upstream_requests_total{upstream=%s,status=\"%d\"}", um.name, i))
		um.statuses[i].Store(c)
	}
	c.Inc()
	um.latency.Update(d.Seconds())
}

// failed counts a try that got no answer (connection error, timeout).
func (um *upstreamMetrics) failed(d time.Duration) {
	um.errors.Inc()
	um.latency.Update(d.Seconds())
}

// RateLimited counts a 429 for rule; byUser tells the per-user bucket from per-IP.
func (m *Metrics) RateLimited(rule string, byUser bool) {
	store, key := &m.rateLimitedIP, "ip"
	if byUser {
		store, key = &m.rateLimitedUser, "user"
	}
	c, ok := store.Load(rule)
	if !ok {
		c, _ = store.LoadOrStore(rule, m.set.GetOrCreateCounter(
			"edge_rate_limited_total{rule="+strconv.Quote(rule)+`,key="`+key+`"}`))
	}
	c.(*metrics.Counter).Inc()
}
