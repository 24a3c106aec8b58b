package testenv

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/novashop/edge/internal/stack"
)

// Promtool returns the path of Debian's promtool (package prometheus),
// installing the package when it is missing, like every other server the
// tests need: a missing promtool fails the test, it never skips it.
func Promtool(t testing.TB) string {
	t.Helper()
	bins, err := stack.Ensure(os.Stderr, "promtool")
	if err != nil {
		t.Fatalf("testenv: promtool: %v", err)
	}
	return bins["promtool"]
}

// CheckMetrics runs `promtool check metrics` on a /metrics body and fails
// the test with promtool's report when it finds a problem: a syntax error,
// a missing or empty HELP, a wrong TYPE, a counter without _total. The
// install happens before the check's own one-minute deadline starts.
func CheckMetrics(t testing.TB, name string, body []byte) {
	t.Helper()
	promtool := Promtool(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics on %s: %v\n%s", name, err, out)
	}
}
