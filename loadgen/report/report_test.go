package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/novashop/edge/loadgen/metrics"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func TestSpreadOf(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want Spread
		ok   bool
	}{
		{"empty", nil, Spread{}, false},
		{"one", []float64{2}, Spread{2, 2, 2}, true},
		{"odd", []float64{3, 1, 2}, Spread{1, 2, 3}, true},
		{"even takes the mean of the middle", []float64{4, 1, 3, 2}, Spread{1, 2.5, 4}, true},
		{"skips NaN and Inf", []float64{math.NaN(), 5, math.Inf(1), 7}, Spread{5, 6, 7}, true},
		{"only NaN", []float64{math.NaN()}, Spread{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := SpreadOf(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("SpreadOf(%v) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func sum(thr, p50, p99 float64) metrics.Summary {
	return metrics.Summary{ThroughputRPS: thr, Latency: metrics.Latency{P50: p50, P99: p99}}
}

func TestRatios(t *testing.T) {
	rounds := [][]metrics.Summary{
		{sum(1000, 1, 2), sum(100, 10, 40), sum(500, 2, 4)},
		{sum(900, 1, 4), sum(100, 10, 40), sum(0, 2, 4)},
		{sum(1200, 2, 8), sum(100, 10, 20), sum(600, 2, 4)},
	}
	got := Ratios([]string{"edge", "nginx", "origin"}, rounds)
	want := map[string]map[string]Spread{
		"edge/nginx": {
			"throughput": {Min: 9, Median: 10, Max: 12},
			"p50":        {Min: 0.1, Median: 0.1, Max: 0.2},
			"p99":        {Min: 0.05, Median: 0.1, Max: 0.4},
		},
		// Round 2's origin served nothing: its ratio (x/0) is left out.
		"edge/origin": {
			"throughput": {Min: 2, Median: 2, Max: 2},
			"p50":        {Min: 0.5, Median: 0.5, Max: 1},
			"p99":        {Min: 0.5, Median: 1, Max: 2},
		},
		"nginx/origin": {
			"throughput": {Min: 0.1667, Median: 0.1833, Max: 0.2},
			"p50":        {Min: 5, Median: 5, Max: 5},
			"p99":        {Min: 5, Median: 10, Max: 10},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Ratios =\n%v\nwant\n%v", got, want)
	}
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func fixture() (*Document, []*metrics.Metrics) {
	var ms []*metrics.Metrics
	for k, name := range []string{"edge", "nginx"} {
		m := metrics.New(name, "http://127.0.0.1:808"+string(rune('0'+k)), t0)
		for i := 1; i <= 200; i++ {
			r := &vegeta.Result{Code: 200, Timestamp: t0.Add(time.Duration(i) * 10 * time.Millisecond),
				Latency: time.Duration(i*(k+1)) * 100 * time.Microsecond, URL: "http://x/#home",
				Headers: http.Header{"Cache-Status": {"novashop-edge; hit"}}}
			if k == 1 {
				r.Headers = nil
			}
			if i%50 == 0 {
				r.Code, r.Error = 0, `Get "http://x/": connection refused`
			}
			m.Add(r)
		}
		m.Close()
		ms = append(ms, m)
	}
	d := &Document{Campaign: "browse", Started: t0.Format(time.RFC3339), Rounds: 1, Note: "note", Profile: "constant 100/s"}
	var round []metrics.Summary
	for _, m := range ms {
		d.Targets = append(d.Targets, m.Summary())
		round = append(round, m.Summary())
	}
	d.Ratios = Ratios([]string{"edge", "nginx"}, [][]metrics.Summary{round})
	return d, ms
}

// TestJSONShape pins DESIGN.md's loadgen JSON: these keys must exist with
// these types, whatever is added beside them.
func TestJSONShape(t *testing.T) {
	d, _ := fixture()
	var buf bytes.Buffer
	if err := WriteJSON(&buf, d); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"campaign": "string", "started": "string", "rounds": "float64", "targets": "[]interface {}", "ratios": "map[string]interface {}"}
	for k, typ := range want {
		if got := reflect.TypeOf(doc[k]); got == nil || got.String() != typ {
			t.Errorf("%q has type %v, want %s", k, got, typ)
		}
	}
	if _, err := time.Parse(time.RFC3339, doc["started"].(string)); err != nil {
		t.Errorf("started is not RFC 3339: %v", err)
	}
	tg := doc["targets"].([]any)[0].(map[string]any)
	for k, typ := range map[string]string{"name": "string", "url": "string", "requests": "float64", "throughput_rps": "float64", "success_ratio": "float64", "latency_ms": "map[string]interface {}", "status_codes": "map[string]interface {}", "errors": "map[string]interface {}", "cache_status": "map[string]interface {}"} {
		if got := reflect.TypeOf(tg[k]); got == nil || got.String() != typ {
			t.Errorf("targets[0].%s has type %v, want %s", k, got, typ)
		}
	}
	for _, k := range []string{"mean", "p50", "p90", "p99", "p999", "max"} {
		if _, ok := tg["latency_ms"].(map[string]any)[k].(float64); !ok {
			t.Errorf("latency_ms.%s missing", k)
		}
	}
	r := doc["ratios"].(map[string]any)["edge/nginx"].(map[string]any)["throughput"].(map[string]any)
	for _, k := range []string{"min", "median", "max"} {
		if _, ok := r[k].(float64); !ok {
			t.Errorf("ratios.edge/nginx.throughput.%s missing", k)
		}
	}
	// Round trip: decoding into Document and encoding again changes nothing.
	var back Document
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	_ = WriteJSON(&again, &back)
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("JSON does not round-trip")
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (check, then go test -update):\n%s", path, got)
	}
}

func TestTextGolden(t *testing.T) {
	d, _ := fixture()
	var buf bytes.Buffer
	if err := WriteText(&buf, d); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.txt.golden", buf.Bytes())
}

func TestHTMLSelfContained(t *testing.T) {
	d, ms := fixture()
	var buf bytes.Buffer
	if err := WriteHTML(&buf, d, ms); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	if n := strings.Count(page, "<svg"); n != 5 {
		t.Errorf("page has %d plots, want 5 (one comparison, two per target)", n)
	}
	// Nothing may load from outside the page: no src=, no href=, no
	// url(...), no @import; the only URL allowed is the SVG namespace.
	for _, re := range []string{`src=`, `href=`, `url\(`, `@import`, `<script`, `<link`} {
		if regexp.MustCompile(re).MatchString(page) {
			t.Errorf("page contains %s", re)
		}
	}
	if !strings.Contains(page, "edge/nginx") || !strings.Contains(page, "intended") && !strings.Contains(page, "note") {
		t.Error("page lacks the ratios or the note")
	}
	golden(t, "report.html.golden", buf.Bytes())
}
