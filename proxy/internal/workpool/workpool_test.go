package workpool

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

func waitUntil(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// blocker is a job: it signals ran, then waits for release.
type blocker struct{ ran, release chan struct{} }

func newPool(max int, idle time.Duration) *Pool[blocker] {
	return &Pool[blocker]{Max: max, MaxIdle: idle, Do: func(b blocker) any {
		if b.ran != nil {
			b.ran <- struct{}{}
		}
		if b.release != nil {
			<-b.release
		}
		return "done"
	}}
}

// TestRunAndGo: Run returns Do's result; Go returns at once and the job runs.
func TestRunAndGo(t *testing.T) {
	p := newPool(4, time.Minute)
	defer p.Close()
	if v, ok := p.Run(blocker{}); !ok || v != "done" {
		t.Fatalf("Run = %v, %v", v, ok)
	}
	ran := make(chan struct{}, 1)
	if !p.Go(blocker{ran: ran}) {
		t.Fatal("Go found no worker in an empty pool")
	}
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("a job handed over by Go never ran")
	}
	waitUntil(t, "every worker idle", 5*time.Second, func() bool { n, idle := p.Workers(); return n >= 1 && n == idle })
}

// TestFullReportsFalse: with every worker busy, Go and Run report false at
// once instead of waiting, so the caller runs the job and the pool never
// limits streams; after Close too.
func TestFullReportsFalse(t *testing.T) {
	p := newPool(2, time.Minute)
	release := make(chan struct{})
	for i := 0; i < 2; i++ {
		ran := make(chan struct{}, 1)
		if !p.Go(blocker{ran: ran, release: release}) {
			t.Fatalf("job %d found no worker", i)
		}
		<-ran
	}
	if p.Go(blocker{}) {
		t.Fatal("Go took a job with every worker busy")
	}
	if _, ok := p.Run(blocker{}); ok {
		t.Fatal("Run took a job with every worker busy")
	}
	if n, _ := p.Workers(); n != 2 {
		t.Fatalf("%d workers, bound 2", n)
	}
	close(release)
	waitUntil(t, "both workers idle", 5*time.Second, func() bool { _, idle := p.Workers(); return idle == 2 })
	p.Close()
	waitUntil(t, "workers to exit", 5*time.Second, func() bool { n, _ := p.Workers(); return n == 0 })
	if p.Go(blocker{}) {
		t.Fatal("Go took a job after Close")
	}
}

// TestIdleLetGo: a worker idle past MaxIdle exits when another goes idle, so
// a burst's workers do not stay forever; Close ends the rest.
func TestIdleLetGo(t *testing.T) {
	p := newPool(8, 50*time.Millisecond)
	release := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		ran := make(chan struct{}, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Run(blocker{ran: ran, release: release})
		}()
		<-ran
	}
	close(release)
	wg.Wait()
	waitUntil(t, "three idle workers", 5*time.Second, func() bool { _, idle := p.Workers(); return idle == 3 })
	time.Sleep(100 * time.Millisecond)
	p.Run(blocker{}) // goes idle again: lets the oldest idle one go
	waitUntil(t, "the worker idle past MaxIdle to be let go", 5*time.Second, func() bool { n, _ := p.Workers(); return n <= 2 })
	if n, _ := p.Workers(); n != 2 {
		t.Fatalf("%d workers after one idle past MaxIdle, want 2", n)
	}
	before := runtime.NumGoroutine()
	p.Close()
	waitUntil(t, "idle workers to exit", 5*time.Second, func() bool { return runtime.NumGoroutine() <= before-2 })
}
