package stripe

import (
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// TestStripeSizes pins one stripe per cache line: two stripes on one line
// would share it between cores again.
func TestStripeSizes(t *testing.T) {
	for name, size := range map[string]uintptr{
		"counter": unsafe.Sizeof(counterStripe{}),
		"rwmutex": unsafe.Sizeof(rwStripe{}),
	} {
		if size != lineSize {
			t.Errorf("%s stripe is %d bytes, want %d", name, size, lineSize)
		}
	}
}

// TestCounterDrain: every Inc from any hint is drained exactly once, also
// while adds run concurrently with drains.
func TestCounterDrain(t *testing.T) {
	var c Counter
	var wg sync.WaitGroup
	const per, workers = 5000, 4
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				c.Inc(uint(w*7 + i))
			}
		}()
	}
	var total uint64
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		total += c.Drain()
	}
	total += c.Drain()
	if total != per*workers {
		t.Fatalf("drained %d, want %d", total, per*workers)
	}
	if n := c.Drain(); n != 0 {
		t.Fatalf("second drain gave %d", n)
	}
}

// TestRWMutexExcludes: a writer excludes the readers of every stripe.
func TestRWMutexExcludes(t *testing.T) {
	var m RWMutex
	var shared int
	var bad atomic.Int32
	var wg sync.WaitGroup
	for r := range 2 * N {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2000 {
				mu := m.RLock(uint(r))
				if shared%2 != 0 {
					bad.Add(1) // a writer is mid-update
				}
				mu.RUnlock()
			}
		}()
	}
	for range 2000 {
		m.Lock()
		shared++
		shared++
		m.Unlock()
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("readers saw a writer's half-done update %d times", bad.Load())
	}
}

// TestHint: a connection without a loop hints by its connection id.
func TestHint(t *testing.T) {
	var ctx fasthttp.RequestCtx
	if h := Hint(&ctx); h != uint(ctx.ConnID()) {
		t.Fatalf("hint %d, want the connection id %d", h, ctx.ConnID())
	}
}

// TestSequenceUnique: numbers from every stripe, taken concurrently, never
// repeat and are never zero.
func TestSequenceUnique(t *testing.T) {
	var q Sequence
	const per, workers = 3000, 2 * N
	got := make([][]uint64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				got[w] = append(got[w], q.Next(uint(w+i%3)))
			}
		}()
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for _, g := range got {
		for _, v := range g {
			if v == 0 || seen[v] {
				t.Fatalf("number %d given twice (or zero)", v)
			}
			seen[v] = true
		}
	}
}
