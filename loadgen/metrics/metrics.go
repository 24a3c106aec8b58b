package metrics

import (
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/novashop/edge/loadgen/targeter"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Histogram bounds, in microseconds. Latencies outside are clamped, so a
// stuck request still counts, at the hour mark.
const (
	histMin       = 1
	histMax       = int64(time.Hour / time.Microsecond)
	histSigFigs   = 3
	seriesMax     = int64(time.Minute / time.Microsecond)
	seriesSigFigs = 2
	// maxSeconds bounds the per-second series (10 hours).
	maxSeconds = 36000
	// maxErrorKinds bounds the distinct error texts kept; the rest are
	// counted under OtherErrors.
	maxErrorKinds = 50
	// OtherErrors is the error key counting texts past maxErrorKinds.
	OtherErrors = "other errors"
)

// Second is one second of the series.
type Second struct {
	Requests, Success uint64
	Latency           *hdr.Histogram
}

// Request is the breakdown for one request label of the campaign.
type Request struct {
	Requests, Success uint64
	Latency           *hdr.Histogram
}

// Metrics aggregates results for one target. It is not safe for concurrent
// use: one goroutine adds the results of one attack.
type Metrics struct {
	// Name and URL identify the target.
	Name, URL string
	// Base is the time second 0 of Series refers to.
	Base time.Time
	// Requests and Success count results; success is vegeta's: no error
	// and a status in [200, 400).
	Requests, Success uint64
	// SumLatency and MaxLatency are exact, unlike the histogram's buckets.
	SumLatency, MaxLatency time.Duration
	// Latency is in microseconds.
	Latency *hdr.Histogram
	// StatusCodes counts by status ("0" for no answer).
	StatusCodes map[string]uint64
	// Errors counts by error text, without the request's method and URL.
	Errors map[string]uint64
	// CacheStatus counts Cache-Status classes (see CacheClass).
	CacheStatus map[string]uint64
	// ByRequest breaks results down by the campaign's request labels.
	ByRequest map[string]*Request
	// Series holds one entry per second since Base.
	Series []*Second
	// BytesIn and BytesOut sum the bodies.
	BytesIn, BytesOut uint64
	// First is the earliest (intended) send time, Last the latest end.
	First, Last time.Time
	// Elapsed is the attack time throughput is computed over: set by
	// Close to Last−First when zero, summed by Merge.
	Elapsed time.Duration
	// Journeys counts the campaign's journeys, set by the attack.
	Journeys Journeys
	// MaxSendLag is how far behind schedule the generator sent a request
	// at worst, set by the attack; large values mean the generator, not
	// only the target, was saturated.
	MaxSendLag time.Duration
}

// Journeys counts journeys started, completed (every step answered 2xx)
// and aborted (a step failed or could not be filled).
type Journeys struct {
	Started   uint64 `json:"started"`
	Completed uint64 `json:"completed"`
	Aborted   uint64 `json:"aborted"`
}

// New returns empty Metrics whose series starts at base.
func New(name, url string, base time.Time) *Metrics {
	return &Metrics{
		Name: name, URL: url, Base: base,
		Latency:     hdr.New(histMin, histMax, histSigFigs),
		StatusCodes: map[string]uint64{},
		Errors:      map[string]uint64{},
		CacheStatus: map[string]uint64{},
		ByRequest:   map[string]*Request{},
	}
}

// Success reports whether r counts as a successful answer.
func Success(r *vegeta.Result) bool {
	return r.Error == "" && r.Code >= 200 && r.Code < 400
}

func micros(d time.Duration, max int64) int64 {
	v := d.Microseconds()
	if v < histMin {
		v = histMin
	}
	if v > max {
		v = max
	}
	return v
}

// Add counts one result.
func (m *Metrics) Add(r *vegeta.Result) {
	ok := Success(r)
	m.Requests++
	if ok {
		m.Success++
	}
	m.SumLatency += r.Latency
	if r.Latency > m.MaxLatency {
		m.MaxLatency = r.Latency
	}
	us := micros(r.Latency, histMax)
	_ = m.Latency.RecordValue(us)
	m.StatusCodes[strconv.Itoa(int(r.Code))]++
	if !ok {
		text := r.Error
		if text == "" {
			text = strconv.Itoa(int(r.Code))
		}
		m.addError(CleanError(text), 1)
	}
	if r.Headers != nil {
		m.CacheStatus[CacheClass(strings.Join(r.Headers.Values("Cache-Status"), ", "))]++
	} else {
		m.CacheStatus["none"]++
	}
	if name := targeter.RequestName(r.URL); name != "" {
		br := m.ByRequest[name]
		if br == nil {
			br = &Request{Latency: hdr.New(histMin, seriesMax, seriesSigFigs)}
			m.ByRequest[name] = br
		}
		br.Requests++
		if ok {
			br.Success++
		}
		_ = br.Latency.RecordValue(micros(r.Latency, seriesMax))
	}
	in := r.BytesIn
	if in == 0 && r.Headers != nil {
		// The attack drains bodies it does not read; their size is
		// the declared one.
		if n, err := strconv.ParseUint(r.Headers.Get("Content-Length"), 10, 64); err == nil {
			in = n
		}
	}
	m.BytesIn += in
	m.BytesOut += r.BytesOut
	if m.First.IsZero() || r.Timestamp.Before(m.First) {
		m.First = r.Timestamp
	}
	if end := r.End(); end.After(m.Last) {
		m.Last = end
	}
	i := int(r.Timestamp.Sub(m.Base) / time.Second)
	if i < 0 {
		i = 0
	}
	if i >= maxSeconds {
		i = maxSeconds - 1
	}
	s := m.second(i)
	s.Requests++
	if ok {
		s.Success++
	}
	_ = s.Latency.RecordValue(micros(r.Latency, seriesMax))
}

func (m *Metrics) second(i int) *Second {
	for len(m.Series) <= i {
		m.Series = append(m.Series, nil)
	}
	if m.Series[i] == nil {
		m.Series[i] = &Second{Latency: hdr.New(histMin, seriesMax, seriesSigFigs)}
	}
	return m.Series[i]
}

func (m *Metrics) addError(text string, n uint64) {
	if _, ok := m.Errors[text]; !ok && len(m.Errors) >= maxErrorKinds {
		text = OtherErrors
	}
	m.Errors[text] += n
}

// Close fixes Elapsed from the results' window when nobody set it.
func (m *Metrics) Close() {
	if m.Elapsed == 0 && m.Last.After(m.First) {
		m.Elapsed = m.Last.Sub(m.First)
	}
}

// Merge adds o (another round of the same target) into m. Histograms merge
// exactly; Elapsed adds up, as rounds run one after the other; the series
// are overlaid second by second from each one's Base.
func (m *Metrics) Merge(o *Metrics) {
	m.Requests += o.Requests
	m.Success += o.Success
	m.SumLatency += o.SumLatency
	m.MaxLatency = max(m.MaxLatency, o.MaxLatency)
	m.Latency.Merge(o.Latency)
	for k, v := range o.StatusCodes {
		m.StatusCodes[k] += v
	}
	for _, k := range sortedKeys(o.Errors) {
		m.addError(k, o.Errors[k])
	}
	for k, v := range o.CacheStatus {
		m.CacheStatus[k] += v
	}
	for k, v := range o.ByRequest {
		br := m.ByRequest[k]
		if br == nil {
			br = &Request{Latency: hdr.New(histMin, seriesMax, seriesSigFigs)}
			m.ByRequest[k] = br
		}
		br.Requests += v.Requests
		br.Success += v.Success
		br.Latency.Merge(v.Latency)
	}
	for i, s := range o.Series {
		if s == nil {
			continue
		}
		d := m.second(i)
		d.Requests += s.Requests
		d.Success += s.Success
		d.Latency.Merge(s.Latency)
	}
	m.BytesIn += o.BytesIn
	m.BytesOut += o.BytesOut
	if m.First.IsZero() || (!o.First.IsZero() && o.First.Before(m.First)) {
		m.First = o.First
	}
	if o.Last.After(m.Last) {
		m.Last = o.Last
	}
	m.Elapsed += o.Elapsed
	m.MaxSendLag = max(m.MaxSendLag, o.MaxSendLag)
	m.Journeys.Started += o.Journeys.Started
	m.Journeys.Completed += o.Journeys.Completed
	m.Journeys.Aborted += o.Journeys.Aborted
}

// Quantile returns the latency at quantile q in [0, 1].
func (m *Metrics) Quantile(q float64) time.Duration {
	return time.Duration(m.Latency.ValueAtQuantile(q*100)) * time.Microsecond
}

// Throughput is successful answers per second of Elapsed.
func (m *Metrics) Throughput() float64 {
	if m.Elapsed <= 0 {
		return 0
	}
	return float64(m.Success) / m.Elapsed.Seconds()
}

// SuccessRatio is successes over requests (0 without requests).
func (m *Metrics) SuccessRatio() float64 {
	if m.Requests == 0 {
		return 0
	}
	return float64(m.Success) / float64(m.Requests)
}

var requestPrefixRE = regexp.MustCompile(`^[A-Za-z]+ "[^"]*": `)

// CleanError drops the `Get "http://…": ` prefix Go's client puts on its
// errors, so one failure kind is one key however many URLs it hit.
func CleanError(s string) string {
	return requestPrefixRE.ReplaceAllString(s, "")
}

// CacheClass classifies a Cache-Status field value (RFC 9211 §2) by its
// last member, the cache nearest the client: "hit" when it has the hit
// parameter, the fwd parameter's value otherwise ("miss", also for
// uri-miss and vary-miss; "stale", "bypass", "method", ...), "none" when
// the header is absent and "other" when the member says neither.
func CacheClass(h string) string {
	members := splitOutsideQuotes(h, ',')
	last := ""
	for i := len(members) - 1; i >= 0; i-- {
		if m := strings.TrimSpace(members[i]); m != "" {
			last = m
			break
		}
	}
	if last == "" {
		return "none"
	}
	params := splitOutsideQuotes(last, ';')
	fwd := ""
	for _, p := range params[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.Trim(strings.TrimSpace(v), `"`)
		switch k {
		case "hit":
			// A boolean parameter: bare, or ?1 in structured-field syntax.
			if v == "" || v == "?1" {
				return "hit"
			}
		case "fwd":
			if fwd == "" && v != "" {
				fwd = strings.ToLower(v)
				// uri-miss and vary-miss are misses with a reason
				// (RFC 9211 §2.2); hit rates count them as misses.
				if fwd == "uri-miss" || fwd == "vary-miss" {
					fwd = "miss"
				}
			}
		}
	}
	if fwd != "" {
		return fwd
	}
	return "other"
}

func splitOutsideQuotes(s string, sep byte) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && quoted:
			i++
		case s[i] == '"':
			quoted = !quoted
		case s[i] == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ms converts to milliseconds rounded to the microsecond.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}
