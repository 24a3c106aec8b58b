package metrics

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// known builds 100 results with latencies 1..100 ms, one per 10 ms; every
// tenth fails with a 503.
func known(name string) *Metrics {
	m := New(name, "http://127.0.0.1:1", t0)
	for i := 1; i <= 100; i++ {
		r := &vegeta.Result{
			Code:      200,
			Timestamp: t0.Add(time.Duration(i-1) * 10 * time.Millisecond),
			Latency:   time.Duration(i) * time.Millisecond,
			URL:       "http://127.0.0.1:1/#home",
			Headers:   http.Header{"Cache-Status": {"novashop-edge; hit"}},
			BytesIn:   10,
		}
		if i%10 == 0 {
			r.Code, r.Error = 503, "503 Service Unavailable"
			r.Headers = http.Header{"Cache-Status": {"novashop-edge; fwd=miss"}}
		}
		m.Add(r)
	}
	m.Close()
	return m
}

func TestSummaryKnownInputs(t *testing.T) {
	s := known("edge").Summary()
	// Window: first send at 0, last answer at 990 ms + 100 ms = 1.09 s.
	tests := []struct {
		name      string
		got, want any
	}{
		{"requests", s.Requests, uint64(100)},
		{"success ratio", s.SuccessRatio, 0.9},
		{"duration", s.DurationS, 1.09},
		{"throughput", s.ThroughputRPS, 82.569},
		{"mean", s.Latency.Mean, 50.5},
		// With 3 significant digits HDR buckets [1024·2^k, 2048·2^k) µs
		// are 2^k µs wide: 32 µs around 50 ms, 64 µs around 90 ms.
		// Nearest-rank percentiles report the bucket's highest
		// equivalent value: 50000 → 50015, 90000 → 90047, 99000 → 99007.
		{"p50", s.Latency.P50, 50.015},
		{"p90", s.Latency.P90, 90.047},
		{"p99", s.Latency.P99, 99.007},
		{"max is exact", s.Latency.Max, 100.0},
		{"status", s.StatusCodes, map[string]uint64{"200": 90, "503": 10}},
		{"errors", s.Errors, map[string]uint64{"503 Service Unavailable": 10}},
		{"cache", s.CacheStatus, map[string]uint64{"hit": 90, "miss": 10}},
		{"by request", s.ByRequest["home"].Requests, uint64(100)},
		{"bytes", s.BytesIn, uint64(1000)},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestExactBelowTwoMilliseconds(t *testing.T) {
	m := New("x", "", t0)
	for i := 1; i <= 1000; i++ {
		m.Add(&vegeta.Result{Code: 200, Timestamp: t0, Latency: time.Duration(i) * time.Microsecond})
	}
	m.Close()
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.9, 900 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {0.999, 999 * time.Microsecond}, {1, time.Millisecond}} {
		if got := m.Quantile(tt.q); got != tt.want {
			t.Errorf("Quantile(%g) = %s, want %s", tt.q, got, tt.want)
		}
	}
}

func TestMergeIsExact(t *testing.T) {
	a, b := known("edge"), known("edge")
	all := New("edge", "", t0)
	// The same 200 results added to one Metrics.
	for i := 0; i < 2; i++ {
		for j := 1; j <= 100; j++ {
			r := &vegeta.Result{Code: 200, Timestamp: t0.Add(time.Duration(j-1) * 10 * time.Millisecond), Latency: time.Duration(j) * time.Millisecond, URL: "http://127.0.0.1:1/#home", Headers: http.Header{"Cache-Status": {"novashop-edge; hit"}}, BytesIn: 10}
			if j%10 == 0 {
				r.Code, r.Error = 503, "503 Service Unavailable"
				r.Headers = http.Header{"Cache-Status": {"novashop-edge; fwd=miss"}}
			}
			all.Add(r)
		}
	}
	a.Merge(b)
	if !a.Latency.Equals(all.Latency) {
		t.Error("merged histogram differs from the histogram of all results")
	}
	sa, sall := a.Summary(), all.Summary()
	if sa.Latency != sall.Latency || sa.Requests != 200 || !reflect.DeepEqual(sa.StatusCodes, sall.StatusCodes) || !reflect.DeepEqual(sa.CacheStatus, sall.CacheStatus) {
		t.Errorf("merged summary %+v differs from %+v", sa, sall)
	}
	if a.Elapsed != 2*1090*time.Millisecond {
		t.Errorf("rounds' elapsed times must add up, got %s", a.Elapsed)
	}
	if a.Series[0].Requests != 200 {
		t.Errorf("series overlay: second 0 has %d requests, want 200", a.Series[0].Requests)
	}
}

func TestJSONShape(t *testing.T) {
	b, err := json.Marshal(known("edge").Summary())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"name", "url", "requests", "throughput_rps", "success_ratio", "latency_ms", "status_codes", "errors", "cache_status"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("summary JSON lacks %q", k)
		}
	}
	lat, _ := doc["latency_ms"].(map[string]any)
	for _, k := range []string{"mean", "p50", "p90", "p99", "p999", "max"} {
		if _, ok := lat[k]; !ok {
			t.Errorf("latency_ms lacks %q", k)
		}
	}
}

func TestErrorKindsAreBounded(t *testing.T) {
	m := New("x", "", t0)
	for i := range maxErrorKinds + 10 {
		m.Add(&vegeta.Result{Timestamp: t0, Error: "e" + string(rune('A'+i))})
	}
	if len(m.Errors) != maxErrorKinds+1 || m.Errors[OtherErrors] != 10 {
		t.Errorf("errors kept %d kinds, other = %d", len(m.Errors), m.Errors[OtherErrors])
	}
}

func TestCleanError(t *testing.T) {
	got := CleanError(`Get "http://127.0.0.1:9/x#home": dial tcp 127.0.0.1:9: connect: connection refused`)
	if got != "dial tcp 127.0.0.1:9: connect: connection refused" {
		t.Errorf("CleanError = %q", got)
	}
}

func TestCacheClass(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "none"},
		{"novashop-edge; hit", "hit"},
		{"novashop-edge; fwd=miss; stored", "miss"},
		{"novashop-edge; fwd=stale; fwd-status=200", "stale"},
		{"novashop-edge; fwd=uri-miss; fwd-status=200; stored", "miss"},
		{"novashop-edge; fwd=vary-miss", "miss"},
		{"novashop-edge; fwd=method", "method"},
		{"nginx; hit; detail=stale", "hit"},
		{"nginx; fwd=bypass", "bypass"},
		{"origin-cache; hit, novashop-edge; fwd=miss", "miss"},
		{"novashop-edge; fwd=miss, ", "miss"},
		{`novashop-edge; detail="a, b; hit"`, "other"},
		{"novashop-edge; hit=?1", "hit"},
		{"novashop-edge", "other"},
	}
	for _, tt := range tests {
		if got := CacheClass(tt.in); got != tt.want {
			t.Errorf("CacheClass(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzCacheClass(f *testing.F) {
	for _, s := range []string{"", "a; hit", "a; fwd=miss", `a; detail="x,;y"`, `a; fwd="\"`, ",,;;=="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if c := CacheClass(s); c == "" {
			t.Fatalf("CacheClass(%q) is empty", s)
		}
	})
}

func BenchmarkAdd(b *testing.B) {
	m := New("x", "", t0)
	r := &vegeta.Result{Code: 200, Timestamp: t0, Latency: 3 * time.Millisecond, URL: "http://x/#home", Headers: http.Header{"Cache-Status": {"novashop-edge; hit"}}}
	b.ReportAllocs()
	for b.Loop() {
		m.Add(r)
	}
}
