package cpu

import (
	"os/exec"
	"testing"
	"time"
)

func TestStatState(t *testing.T) {
	tests := []struct {
		line string
		want byte
	}{
		{"1234 (edge) S 1 2 3", 'S'},
		{"1234 (a) b) R 1 2 3", 'R'},
		{"1234 (x y) D 1", 'D'},
		{"1234 (edge)", 0},
		{"no parens R", 0},
		{"", 0},
	}
	for _, tt := range tests {
		if got := StatState([]byte(tt.line)); got != tt.want {
			t.Errorf("StatState(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
}

// TestRunnable: a child that spins is runnable, a sleeping one is not, and
// a process that does not exist has no runnable thread. (The test's own
// process is no subject: the thread reading /proc is itself running.)
func TestRunnable(t *testing.T) {
	start := func(args ...string) int {
		cmd := exec.Command(args[0], args[1:]...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd.Process.Pid
	}
	busy := &Meter{Sources: []Source{{Name: "busy", PIDs: []int{start("sh", "-c", "while :; do :; done")}}}}
	idle := &Meter{Sources: []Source{{Name: "idle", PIDs: []int{start("sleep", "30")}}}}
	seen := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !seen; time.Sleep(time.Millisecond) {
		seen = busy.Runnable()
	}
	if !seen {
		t.Error("Runnable never saw the spinning child")
	}
	time.Sleep(50 * time.Millisecond) // sleep(1) has reached its sleep
	for range 20 {
		if idle.Runnable() {
			t.Fatal("a sleeping child is runnable")
		}
		time.Sleep(5 * time.Millisecond)
	}
	gone := &Meter{Sources: []Source{{Name: "gone", PIDs: []int{1 << 30}}}}
	if gone.Runnable() {
		t.Error("a process that does not exist is runnable")
	}
}
