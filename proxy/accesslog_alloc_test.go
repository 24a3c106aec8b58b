//go:build !race

package proxy

import (
	"io"
	"testing"
)

// TestAccessLoggedHitAllocatesNothing pins the access log's cost: a cache hit
// logged (sample 1) through the buffered writer allocates nothing.
func TestAccessLoggedHitAllocatesNothing(t *testing.T) {
	o := newOrigin(t, "o1", nil)
	cfg := testConfig(o)
	cfg.Health.Active = false
	cfg.AccessLog.Enabled, cfg.AccessLog.Sample = true, 1
	if allocs := handlerAllocs(t, cfg, Options{Cache: &memCache{body: []byte(`{"id":1}`)}, AccessLog: io.Discard}); allocs != 0 {
		t.Fatalf("a logged cache hit allocates %v times in the edge", allocs)
	}
}
