package cpu

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

func TestParseSettle(t *testing.T) {
	tests := []struct {
		in       string
		measured bool
		want     time.Duration
		err      bool
	}{
		{"auto", true, DefaultSettle, false},
		{"auto", false, 0, false},
		{" auto ", true, DefaultSettle, false},
		{"0", true, 0, false},
		{"0s", false, 0, false},
		{"500ms", false, 500 * time.Millisecond, false},
		{"3s", true, 3 * time.Second, false},
		{"1m", true, time.Minute, false},
		{"1m1s", true, 0, true},
		{"-1ms", true, 0, true},
		{"", true, 0, true},
		{"soon", false, 0, true},
		{"2", true, 0, true},
		{"Auto", true, 0, true},
	}
	for _, tt := range tests {
		got, err := ParseSettle(tt.in, tt.measured)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseSettle(%q, %v) = %s, %v; want %s, error %v", tt.in, tt.measured, got, err, tt.want, tt.err)
		}
		if err != nil && (!errors.Is(err, ErrSettle) || !errors.Is(err, ErrSpec)) {
			t.Errorf("ParseSettle(%q): %v is not ErrSettle", tt.in, err)
		}
	}
}

// TestSettleZeroReadsAtOnce: a bound of 0 is a plain reading, no wait.
func TestSettleZeroReadsAtOnce(t *testing.T) {
	m := &Meter{Sources: []Source{{Name: "self", PIDs: []int{os.Getpid()}}}}
	s, err := m.Settle(context.Background(), 0, 0)
	if err != nil || s.Waited != 0 || len(s.Reading) != 1 {
		t.Fatalf("Settle(0) = %+v, %v", s, err)
	}
}

// TestSettleBoundedByBusyProcess: a process that never goes quiet (this
// one, burning a core) ends the wait at the bound, reported not quiet.
func TestSettleBoundedByBusyProcess(t *testing.T) {
	m := &Meter{Sources: []Source{{Name: "self", PIDs: []int{os.Getpid()}}}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			for i := 0; i < 1e5; i++ {
				_ = i * i
			}
		}
	}()
	s, err := m.Settle(context.Background(), 600*time.Millisecond, 100*time.Millisecond)
	if err != nil || s.Quiet || s.Waited < 600*time.Millisecond {
		t.Fatalf("Settle = quiet %v after %s, %v; want not quiet at the 600ms bound", s.Quiet, s.Waited, err)
	}
}

// FuzzParseSettle: whatever is accepted is within [0, MaxSettle].
func FuzzParseSettle(f *testing.F) {
	for _, s := range []string{"auto", "2s", "-1s", "1m1s", "9223372036854775807ns", ""} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, measured bool) {
		if d, err := ParseSettle(s, measured); err == nil && (d < 0 || d > MaxSettle) {
			t.Fatalf("ParseSettle(%q) = %s, outside [0, %s]", s, d, MaxSettle)
		}
	})
}
