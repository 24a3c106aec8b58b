package compare

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/novashop/edge/loadgen/campaign"
	"github.com/novashop/edge/loadgen/cpu"
)

// childEnv makes the test binary run as a tail-burning target (see
// runTailChild) instead of running the tests.
const childEnv = "LOADGEN_COMPARE_TAIL_CHILD"

// tailBurn is the CPU the child burns after the last request of a run.
const tailBurn = 400 * time.Millisecond

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		runTailChild()
		return
	}
	os.Exit(m.Run())
}

// runTailChild serves HTTP on 127.0.0.1 and, 100 ms after the last
// request of a burst (each request restarts the timer), burns tailBurn of
// CPU: the leftover work a real target (nginx's queue, a background
// refresh) does after the load generator has stopped sending. It exits
// when its stdin closes, so it never outlives the test.
func runTailChild() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var mu sync.Mutex
	burn := time.AfterFunc(time.Hour, func() {
		start := selfCPU()
		for selfCPU()-start < tailBurn {
			for i := 0; i < 1e5; i++ {
				_ = i * i
			}
		}
	})
	burn.Stop()
	go func() {
		_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			burn.Reset(100 * time.Millisecond)
			mu.Unlock()
			_, _ = io.WriteString(w, "{}")
		}))
	}()
	fmt.Println(ln.Addr().String())
	_, _ = io.Copy(io.Discard, os.Stdin)
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startTailChild starts the test binary as runTailChild and returns its
// URL and PID.
func startTailChild(t *testing.T) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("tail child: %v", err)
	}
	return "http://" + strings.TrimSpace(line), cmd.Process.Pid
}

const tailCampaign = `
rate: [{profile: constant, rps: 50}]
requests:
  - {name: home, path: /}
`

// TestSettleKeepsLeftoverCPUOffTheNextTarget runs "busy" (a child process
// that burns 400 ms of CPU just after each run's last request) and then
// "idle" (a server that is not measured), measuring the child's CPU. With
// no settle the child's leftover work lands on idle's run; with a settle
// it is charged to busy, the run that caused it, and idle gets none.
func TestSettleKeepsLeftoverCPUOffTheNextTarget(t *testing.T) {
	c, err := campaign.Parse([]byte(tailCampaign), "tail")
	if err != nil {
		t.Fatal(err)
	}
	charged := func(settle time.Duration) (busy, idle time.Duration, res *Result) {
		t.Helper()
		url, pid := startTailChild(t)
		src, err := cpu.ParsePIDs(fmt.Sprintf("child=%d", pid))
		if err != nil {
			t.Fatal(err)
		}
		meter := &cpu.Meter{Sources: []cpu.Source{src}}
		res, err = Run(context.Background(), c, []Target{{"busy", url}, {"idle", serve(t, 0, "")}},
			Options{Rounds: 1, Duration: time.Second, CPU: meter, Settle: settle})
		if err != nil {
			t.Fatal(err)
		}
		us := func(i int) time.Duration {
			s := res.Doc.Targets[i]
			return time.Duration(s.CPUByLabel["child"]*float64(s.Requests)) * time.Microsecond
		}
		return us(0), us(1), res
	}

	t.Run("no settle", func(t *testing.T) {
		busy, idle, res := charged(0)
		t.Logf("child CPU charged: busy %s, idle %s", busy, idle)
		// The tail starts 100 ms into idle's 1 s run; a loaded machine may
		// slow it, so ask for a quarter of it.
		if idle < tailBurn/4 {
			t.Errorf("idle charged %s of the child's CPU; want its leftover work (~%s) to land there without a settle", idle, tailBurn)
		}
		if res.Doc.Settle != nil {
			t.Errorf("settle reported with --settle 0: %+v", res.Doc.Settle)
		}
	})
	t.Run("settle", func(t *testing.T) {
		busy, idle, res := charged(10 * time.Second)
		t.Logf("child CPU charged: busy %s, idle %s; %v", busy, idle, res.Doc.Settle)
		if idle > 30*time.Millisecond {
			t.Errorf("idle charged %s of the child's CPU after a settle; want about none (at most 3 ticks)", idle)
		}
		if busy < tailBurn*3/4 {
			t.Errorf("busy charged %s; want about its %s tail", busy, tailBurn)
		}
		s := res.Doc.Settle
		if s == nil || s.Waits != 3 || s.NotQuiet != 0 || s.QuietCores != cpu.QuietCores || s.MaxMs < float64(tailBurn.Milliseconds()) {
			t.Errorf("settle = %+v; want 3 quiet waits (before busy, after busy, after idle), the longest covering the %s tail", s, tailBurn)
		}
	})
}
