package upstream

import (
	"testing"
	"time"
)

// TestReturningHostForgetsItsLatency pins the fix for the p2c-ewma
// starvation found by internal/e2e (TestOriginKilledMidLoad/p2c-ewma): the
// peak EWMA decays only when a host answers, so a host that died under load
// kept the slow samples of its dying requests and, once back, was never
// picked. A host marked healthy again starts with no latency history.
func TestReturningHostForgetsItsLatency(t *testing.T) {
	p := mustPool(t, 1, 1)
	now := time.Unix(1000, 0)
	p.SetClock(func() time.Time { return now })
	u := p.All()[0]
	u.Done(400*time.Millisecond, false, now)
	if u.EWMA() != 400*time.Millisecond {
		t.Fatalf("EWMA after a slow failure = %s", u.EWMA())
	}
	p.SetHealthy(u, false, 0)
	if u.EWMA() == 0 {
		t.Fatal("marking a host down must not clear its EWMA (it is not picked anyway)")
	}
	p.SetHealthy(u, true, 0)
	if u.EWMA() != 0 {
		t.Fatalf("EWMA of a returning host = %s, want 0 (no history)", u.EWMA())
	}
}
