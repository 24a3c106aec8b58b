package metrics

import (
	"math"
	"time"
)

// Latency is the latency_ms object of DESIGN.md's JSON.
type Latency struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// RequestSummary is one request label's line.
type RequestSummary struct {
	Requests     uint64  `json:"requests"`
	SuccessRatio float64 `json:"success_ratio"`
	P50          float64 `json:"p50_ms"`
	P99          float64 `json:"p99_ms"`
}

// Summary is one target of DESIGN.md's JSON; fields after CacheStatus are
// additions.
type Summary struct {
	Name          string            `json:"name"`
	URL           string            `json:"url"`
	Requests      uint64            `json:"requests"`
	ThroughputRPS float64           `json:"throughput_rps"`
	SuccessRatio  float64           `json:"success_ratio"`
	Latency       Latency           `json:"latency_ms"`
	StatusCodes   map[string]uint64 `json:"status_codes"`
	Errors        map[string]uint64 `json:"errors"`
	CacheStatus   map[string]uint64 `json:"cache_status"`

	// RequestRPS is all answers (successful or not) per second.
	RequestRPS float64 `json:"request_rps"`
	// DurationS is the attack time the rates are computed over.
	DurationS float64 `json:"duration_s"`
	BytesIn   uint64  `json:"bytes_in"`
	BytesOut  uint64  `json:"bytes_out"`
	// ByRequest breaks the figures down by the campaign's request labels.
	ByRequest map[string]RequestSummary `json:"by_request,omitempty"`
	// MaxSendLagMs is how far behind schedule the generator fell at worst.
	MaxSendLagMs float64 `json:"max_send_lag_ms"`
	// Journeys is present when the campaign has journeys.
	Journeys *Journeys `json:"journeys,omitempty"`
	// CPUUsPerRequest is the CPU of every measured process (loadgen
	// --cpu/--cgroup) during this target's runs per request it sent;
	// CPUByLabel splits it by measured name. Absent when nothing is measured.
	CPUUsPerRequest float64            `json:"cpu_us_per_request,omitempty"`
	CPUByLabel      map[string]float64 `json:"cpu_us_per_request_by_label,omitempty"`
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func quantileMs(us int64) float64 { return ms(time.Duration(us) * time.Microsecond) }

// Summary summarises m; call Close first.
func (m *Metrics) Summary() Summary {
	s := Summary{
		Name:          m.Name,
		URL:           m.URL,
		Requests:      m.Requests,
		ThroughputRPS: round(m.Throughput(), 3),
		SuccessRatio:  round(m.SuccessRatio(), 6),
		StatusCodes:   copyMap(m.StatusCodes),
		Errors:        copyMap(m.Errors),
		CacheStatus:   copyMap(m.CacheStatus),
		DurationS:     round(m.Elapsed.Seconds(), 3),
		BytesIn:       m.BytesIn,
		BytesOut:      m.BytesOut,
		MaxSendLagMs:  ms(m.MaxSendLag),
	}
	if m.Elapsed > 0 {
		s.RequestRPS = round(float64(m.Requests)/m.Elapsed.Seconds(), 3)
	}
	if m.Requests > 0 {
		s.Latency = Latency{
			Mean: ms(m.SumLatency / time.Duration(m.Requests)),
			P50:  quantileMs(m.Latency.ValueAtQuantile(50)),
			P90:  quantileMs(m.Latency.ValueAtQuantile(90)),
			P99:  quantileMs(m.Latency.ValueAtQuantile(99)),
			P999: quantileMs(m.Latency.ValueAtQuantile(99.9)),
			Max:  ms(m.MaxLatency),
		}
	}
	if m.Journeys != (Journeys{}) {
		j := m.Journeys
		s.Journeys = &j
	}
	if len(m.ByRequest) > 0 {
		s.ByRequest = map[string]RequestSummary{}
		for k, v := range m.ByRequest {
			rs := RequestSummary{Requests: v.Requests, P50: quantileMs(v.Latency.ValueAtQuantile(50)), P99: quantileMs(v.Latency.ValueAtQuantile(99))}
			if v.Requests > 0 {
				rs.SuccessRatio = round(float64(v.Success)/float64(v.Requests), 6)
			}
			s.ByRequest[k] = rs
		}
	}
	return s
}

func copyMap(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
