package main

import (
	"math"
	"strings"
	"testing"
)

// TestBestPeerRatios: each round's edge figure is divided by that round's best
// peer (highest req/s, lowest CPU and p99), whichever peer it is; non-peers
// (the fasthttp ceiling) are left out.
func TestBestPeerRatios(t *testing.T) {
	res := scenarioResult{Ratios: map[string]map[string]spread{}, Targets: map[string][]wrkRun{
		"edge-eventloop": {{RPS: 300, P99ms: 2, CPUusPerR: 10}, {RPS: 200, P99ms: 4, CPUusPerR: 12}},
		"nginx-cache":    {{RPS: 100, P99ms: 1, CPUusPerR: 20}, {RPS: 100, P99ms: 8, CPUusPerR: 30}},
		"varnish":        {{RPS: 150, P99ms: 4, CPUusPerR: 40}, {RPS: 50, P99ms: 2, CPUusPerR: 24}},
		"fasthttp":       {{RPS: 1000, P99ms: 0.1, CPUusPerR: 1}, {RPS: 1000, P99ms: 0.1, CPUusPerR: 1}},
	}}
	targets := []target{{name: "edge-eventloop"}, {name: "nginx-cache"}, {name: "varnish"}, {name: "fasthttp"}}
	bestPeerRatios(&res, targets, []string{"nginx-cache", "varnish"})
	r, ok := res.Ratios["edge-eventloop/best-peer"]
	if !ok || len(res.Ratios) != 1 {
		t.Fatalf("ratios %v", res.Ratios)
	}
	tests := []struct {
		name     string
		min, max float64
	}{
		{"throughput", 2, 2},          // 300/150, 200/100
		{"cpu_per_request", 0.5, 0.5}, // 10/20, 12/24
		{"p99", 2, 2},                 // 2/1, 4/2
	}
	for _, tt := range tests {
		if got := r[tt.name]; math.Abs(got.Min-tt.min) > 1e-9 || math.Abs(got.Max-tt.max) > 1e-9 {
			t.Errorf("%s = %+v, want %v..%v", tt.name, got, tt.min, tt.max)
		}
	}
	// No peers: nothing added.
	res2 := scenarioResult{Ratios: map[string]map[string]spread{}, Targets: res.Targets}
	bestPeerRatios(&res2, targets, nil)
	for k := range res2.Ratios {
		if strings.HasSuffix(k, "best-peer") {
			t.Fatalf("best-peer ratio without peers: %v", res2.Ratios)
		}
	}
}
