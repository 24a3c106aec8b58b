package proxy

import (
	"net/http"
	"testing"
	"time"
)

// fakeBridge records the goroutine stack depth it ran at (to tell a worker
// from the caller), and blocks or panics when told to.
type fakeBridge struct {
	block chan struct{}
	panic any
	ran   chan struct{}
}

func (b *fakeBridge) bridge(http.ResponseWriter, *http.Request) {
	if b.ran != nil {
		b.ran <- struct{}{}
	}
	if b.block != nil {
		<-b.block
	}
	if b.panic != nil {
		panic(b.panic)
	}
}

// TestH2WorkersRunAndPanic: a job runs to its end before run returns, and a
// panic in it (http.ErrAbortHandler is how the bridge resets a stream) comes
// out of run in the caller, where x/net recovers it.
func TestH2WorkersRunAndPanic(t *testing.T) {
	p := &h2Workers{}
	p.init(4, time.Minute)
	defer p.close()
	cases := []struct {
		name  string
		panic any
	}{
		{"returns", nil},
		{"abort handler", http.ErrAbortHandler},
		{"other panic", "boom"},
		{"returns after a panic", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got any
			func() {
				defer func() { got = recover() }()
				p.run(&fakeBridge{panic: tc.panic}, nil, nil)
			}()
			if got != tc.panic {
				t.Fatalf("recovered %v, want %v", got, tc.panic)
			}
		})
	}
	// A panic neither kills nor strands a worker: all go back to idle.
	waitUntil(t, "every worker idle", 5*time.Second, func() bool {
		n, idle := p.pool.Workers()
		return n >= 1 && idle == n
	})
	// With every worker busy a stream runs in the caller's goroutine.
	full := &h2Workers{}
	full.init(0, time.Minute)
	ran := make(chan struct{}, 1)
	full.run(&fakeBridge{ran: ran}, nil, nil)
	<-ran
}
