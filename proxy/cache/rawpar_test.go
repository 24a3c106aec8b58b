package cache

import (
	"strconv"
	"strings"
	"testing"

	"github.com/novashop/edge/proxy/internal/stripe"
)

// BenchmarkRawHitParallel runs raw hits on one entry from every P at once,
// as the event loops do under load: what the shared state of a hit (the
// table's locks, the counters) costs when two cores touch it.
func BenchmarkRawHitParallel(b *testing.B) {
	c, o := warmHit(b)
	c.Serve(hitCtx(), o.fetch)
	b.RunParallel(func(pb *testing.PB) {
		ctx := hitCtx()
		ctx.Init2(nil, nil, false) // a connection of its own, as each loop is
		dst := make([]byte, 0, 8192)
		for pb.Next() {
			ctx.Response.Reset()
			_, _, res := c.TryServeLocalRaw(ctx, dst[:0])
			if res != RawWritten {
				b.Fatal("not a raw hit")
			}
		}
	})
}

// TestLocalHitsCounted: hits counted on stripes (countHit) all show in the
// hit series, exactly once, whichever connection (hint) served them and
// however often the series are written.
func TestLocalHitsCounted(t *testing.T) {
	c, o := warmHit(t)
	c.Serve(hitCtx(), o.fetch)
	hitSeries := func() int {
		var m strings.Builder
		c.WritePrometheus(&m)
		for _, line := range strings.Split(m.String(), "\n") {
			if v, ok := strings.CutPrefix(line, `edge_cache_requests_total{result="hit"} `); ok {
				n, err := strconv.Atoi(v)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
		}
		t.Fatalf("no hit series in:\n%s", m.String())
		return 0
	}
	before := hitSeries()
	const n = 3 * stripe.N
	for i := range n {
		ctx := hitCtx()
		ctx.Init2(nil, nil, false) // a new connection id: the next stripe
		if i%2 == 0 {
			if _, _, res := c.TryServeLocalRaw(ctx, nil); res != RawWritten {
				t.Fatalf("hit %d not raw", i)
			}
		} else if !c.TryServeLocal(ctx) {
			t.Fatalf("hit %d not local", i)
		}
	}
	if got := hitSeries() - before; got != n {
		t.Fatalf("hit series grew by %d, want %d", got, n)
	}
	if got := hitSeries() - before; got != n {
		t.Fatalf("second scrape: grew by %d, want %d", got, n)
	}
}
