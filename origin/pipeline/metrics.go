package pipeline

import (
	"io"

	"github.com/VictoriaMetrics/metrics"
	"github.com/novashop/edge/internal/metricshelp"
)

// Metrics are the pipeline's Prometheus series. Each Worker may get its own
// set (tests run several in one process); the worker command exposes one on
// --metrics-listen.
type Metrics struct {
	set *metrics.Set

	// Relayed counts outbox rows added to the stream (first relays).
	Relayed *metrics.Counter
	// Redelivered counts rows relayed again because their entry vanished.
	Redelivered *metrics.Counter
	// RelayErrors counts failed relay rounds (Redis or PostgreSQL down).
	RelayErrors *metrics.Counter
	// Processed counts messages whose effect committed.
	Processed *metrics.Counter
	// Duplicates counts messages that were already processed.
	Duplicates *metrics.Counter
	// Retried counts processing failures left pending for a retry.
	Retried *metrics.Counter
	// Reclaimed counts messages taken over from another (or a dead) consumer.
	Reclaimed *metrics.Counter
	// DeadLettered counts messages moved to the dead-letter table.
	DeadLettered *metrics.Counter
	// ProcessSeconds is the time from read to acknowledgement. A Prometheus
	// histogram (le buckets), so histogram_quantile works on it.
	ProcessSeconds *metrics.PrometheusHistogram

	// StreamLag is the group's lag: entries not yet delivered to any consumer.
	StreamLag *metrics.Gauge
	// Pending is the group's pending list: delivered, not acknowledged.
	Pending *metrics.Gauge
	// OutboxUnsent is the outbox backlog the relay has not sent yet.
	OutboxUnsent *metrics.Gauge
	// Inflight is relayed rows not yet processed.
	Inflight *metrics.Gauge
}

// NewMetrics makes a fresh set of the pipeline's series.
func NewMetrics() *Metrics {
	s := metrics.NewSet()
	return &Metrics{
		set:            s,
		Relayed:        s.NewCounter("novashop_pipeline_relayed_total"),
		Redelivered:    s.NewCounter("novashop_pipeline_redelivered_total"),
		RelayErrors:    s.NewCounter("novashop_pipeline_relay_errors_total"),
		Processed:      s.NewCounter("novashop_pipeline_processed_total"),
		Duplicates:     s.NewCounter("novashop_pipeline_duplicates_total"),
		Retried:        s.NewCounter("novashop_pipeline_retried_total"),
		Reclaimed:      s.NewCounter("novashop_pipeline_reclaimed_total"),
		DeadLettered:   s.NewCounter("novashop_pipeline_dead_lettered_total"),
		ProcessSeconds: s.NewPrometheusHistogram("novashop_pipeline_process_seconds"),
		StreamLag:      s.NewGauge("novashop_pipeline_stream_lag", nil),
		Pending:        s.NewGauge("novashop_pipeline_pending", nil),
		OutboxUnsent:   s.NewGauge("novashop_pipeline_outbox_unsent", nil),
		Inflight:       s.NewGauge("novashop_pipeline_inflight", nil),
	}
}

// pipelineHelp is the HELP text of each pipeline series (docs/metrics.md lists them).
var pipelineHelp = metricshelp.Help{
	"novashop_pipeline_relayed_total":       "Outbox rows added to the order stream (first relays).",
	"novashop_pipeline_redelivered_total":   "Outbox rows relayed again because their stream entry vanished.",
	"novashop_pipeline_relay_errors_total":  "Relay rounds that failed (Redis or PostgreSQL unavailable).",
	"novashop_pipeline_processed_total":     "Messages whose effect committed (orders confirmed).",
	"novashop_pipeline_duplicates_total":    "Messages delivered again after they had been processed, acknowledged without effect.",
	"novashop_pipeline_retried_total":       "Processing failures left pending for a retry.",
	"novashop_pipeline_reclaimed_total":     "Messages taken over from another (or a dead) consumer.",
	"novashop_pipeline_dead_lettered_total": "Messages moved to the dead-letter table and stream.",
	"novashop_pipeline_process_seconds":     "Time from reading a message to acknowledging it.",
	"novashop_pipeline_stream_lag":          "Stream entries not yet delivered to the consumer group.",
	"novashop_pipeline_pending":             "Messages delivered to a consumer and not yet acknowledged.",
	"novashop_pipeline_outbox_unsent":       "Outbox rows the relay has not sent to the stream yet.",
	"novashop_pipeline_inflight":            "Relayed outbox rows not yet processed.",
}

// WritePrometheus writes every series in the Prometheus text format, with
// their # HELP and # TYPE lines.
func (m *Metrics) WritePrometheus(w io.Writer) {
	metricshelp.Write(w, pipelineHelp, m.set.WritePrometheus)
}
