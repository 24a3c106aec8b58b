package cpu

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestHelperBurn is the child of TestReadPIDCountsChildren: it spins until
// it has used 250ms of CPU itself (not of wall time: on a loaded machine a
// wall-time spin gets less than it asks for) and exits.
func TestHelperBurn(t *testing.T) {
	if os.Getenv("CPU_TEST_BURN") != "1" {
		t.Skip("helper process for TestReadPIDCountsChildren")
	}
	giveUp := time.Now().Add(30 * time.Second)
	x := 0
	for ownCPU(t) < burn && time.Now().Before(giveUp) {
		for i := 0; i < 100000; i++ {
			x++
		}
	}
	_ = x
}

const burn = 250 * time.Millisecond

func ownCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// A child that burns at least 250ms of CPU shows in its parent's reading
// once waited for (cutime+cstime). The upper bound leaves room for the
// child's start-up under the race detector, but a reader that ignored
// children or mis-scaled ticks (x10, /10) falls outside the band.
func TestReadPIDCountsChildren(t *testing.T) {
	self := os.Getpid()
	before, err := ReadPID(self)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperBurn$")
	cmd.Env = append(os.Environ(), "CPU_TEST_BURN=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	after, err := ReadPID(self)
	if err != nil {
		t.Fatal(err)
	}
	d := after - before
	t.Logf("child CPU %s", d)
	// /proc counts user and system time in clock ticks (10ms), each rounded
	// down: allow three ticks below the burn.
	if low := burn - 30*time.Millisecond; d < low || d > 2400*time.Millisecond {
		t.Fatalf("CPU around a child that burned %s = %s, want within [%s, 2.4s]", burn, d, low)
	}
}

func TestReadErrors(t *testing.T) {
	if _, err := (Source{Name: "x", PIDs: []int{1 << 30}}).Read(); !errors.Is(err, ErrSpec) {
		t.Fatalf("missing pid: err = %v", err)
	}
	dir := t.TempDir()
	if _, err := (Source{Name: "x", Cgroup: dir}).Read(); !errors.Is(err, ErrSpec) {
		t.Fatalf("missing cpu.stat: err = %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cpu.stat"), []byte("usage_usec 1500\nuser_usec 1000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := ReadCgroup(dir)
	if err != nil || d != 1500*time.Microsecond {
		t.Fatalf("ReadCgroup = %v, %v", d, err)
	}
}

func TestParseSpecs(t *testing.T) {
	for _, tc := range []struct {
		in     string
		cgroup bool
		ok     bool
		pids   []int
	}{
		{"edge=12", false, true, []int{12}},
		{"nginx=1,2, 3", false, true, []int{1, 2, 3}},
		{"edge", false, false, nil},
		{"=12", false, false, nil},
		{"edge=", false, false, nil},
		{"edge=12,x", false, false, nil},
		{"edge=-4", false, false, nil},
		{"edge=0", false, false, nil},
		{"pg=/sys/fs/cgroup/pg", true, true, nil},
		{"pg", true, false, nil},
		{"=/x", true, false, nil},
	} {
		var s Source
		var err error
		if tc.cgroup {
			s, err = ParseCgroup(tc.in)
		} else {
			s, err = ParsePIDs(tc.in)
		}
		if (err == nil) != tc.ok {
			t.Errorf("%q: err = %v, want ok %v", tc.in, err, tc.ok)
			continue
		}
		if err != nil && !errors.Is(err, ErrSpec) {
			t.Errorf("%q: err %v is not ErrSpec", tc.in, err)
		}
		if tc.ok && !tc.cgroup && len(s.PIDs) != len(tc.pids) {
			t.Errorf("%q: pids %v, want %v", tc.in, s.PIDs, tc.pids)
		}
	}
}

func TestParseStat(t *testing.T) {
	// Field 2 with a space and a parenthesis; utime 10, stime 5, cutime 3, cstime 2 ticks.
	line := "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 10 5 3 2 20 0 1 0 100 1000 10"
	d, err := ParseStat([]byte(line))
	if err != nil || d != 200*time.Millisecond {
		t.Fatalf("ParseStat = %v, %v; want 200ms", d, err)
	}
	for _, bad := range []string{"", "42 no paren", "42 (x) S 1 2", "42 (x) S 1 42 42 0 -1 0 0 0 0 0 x 5 3 2 20"} {
		if _, err := ParseStat([]byte(bad)); err == nil {
			t.Errorf("ParseStat(%q) accepted", bad)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("42 (a b) S 1 42 42 0 -1 4194560 100 0 0 0 10 5 3 2 20 0 1 0 100 1000 10"))
	f.Add([]byte("1 ()) S"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := ParseStat(b); err == nil && d < 0 {
			t.Fatalf("negative %v", d)
		}
	})
}

func FuzzParseCPUStat(f *testing.F) {
	f.Add([]byte("usage_usec 10\nuser_usec 5\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := ParseCPUStat(b); err == nil && d < 0 {
			t.Fatalf("negative %v", d)
		}
	})
}

// The attribution: each run charges its CPU to the target that ran, so
// a target's figure is (all names' CPU in its runs) / (its requests) and a
// label's is (its CPU in all runs) / (all requests).
func TestLedger(t *testing.T) {
	l := NewLedger([]string{"edge", "postgres", "edge"})
	ms := time.Millisecond
	// Round 1: edge then nginx; round 2: nginx then edge.
	l.Add("edge", 1000, map[string]time.Duration{"edge": 50 * ms, "postgres": 10 * ms})
	l.Add("nginx", 1000, map[string]time.Duration{"edge": 1 * ms, "postgres": 90 * ms})
	l.Add("nginx", 1000, map[string]time.Duration{"edge": 1 * ms, "postgres": 110 * ms})
	l.Add("edge", 3000, map[string]time.Duration{"edge": 150 * ms, "postgres": 30 * ms})
	total, by, ok := l.Target("edge")
	if !ok || total != 60 || by["edge"] != 50 || by["postgres"] != 10 {
		t.Fatalf("edge: %v %v %v; want 60 {edge 50, postgres 10}", total, by, ok)
	}
	total, by, _ = l.Target("nginx")
	if total != 101 || by["edge"] != 1 || by["postgres"] != 100 {
		t.Fatalf("nginx: %v %v; want 101 {edge 1, postgres 100}", total, by)
	}
	// edge: 202ms over 6000 requests; postgres: 240ms over 6000.
	if g := l.Label("edge"); g != 33.67 {
		t.Fatalf("label edge = %v, want 33.67", g)
	}
	if g := l.Label("postgres"); g != 40 {
		t.Fatalf("label postgres = %v, want 40", g)
	}
	if _, _, ok := l.Target("none"); ok {
		t.Fatal("a target that never ran has a figure")
	}
	if g := NewLedger(nil).Label("x"); g != 0 {
		t.Fatalf("no requests: %v", g)
	}
}

func TestDeltaExitedProcess(t *testing.T) {
	before := Reading{{name: "a", pid: 1}: 5, {name: "a", pid: 2}: 9, {name: "b", pid: 3}: 9, {name: "c", pid: 4}: 1}
	// pid 2 exited, pid 3 reads lower (a reused id), pid 5 is new.
	after := Reading{{name: "a", pid: 1}: 7, {name: "b", pid: 3}: 3, {name: "c", pid: 4}: 4, {name: "c", pid: 5}: 50}
	d := Delta(before, after)
	if d["a"] != 2 || d["b"] != 0 || d["c"] != 3 {
		t.Fatalf("Delta = %v", d)
	}
}

// A process that exits between two samples is left out, not an error.
func TestSampleSkipsExitedProcess(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	m := &Meter{Sources: []Source{{Name: "x", PIDs: []int{os.Getpid(), cmd.Process.Pid}}}}
	r, err := m.Sample()
	if err != nil || len(r) != 1 {
		t.Fatalf("Sample = %v, %v; want only the live process", r, err)
	}
	if err := m.Check(); err == nil {
		t.Fatal("Check accepted an exited process")
	}
}
