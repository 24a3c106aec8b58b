package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/novashop/edge/internal/stack"
)

// Chromium returns the path of Debian's chromium, installing the package
// when it is missing (the project never downloads a browser of its own).
func Chromium(t testing.TB) string {
	t.Helper()
	bins, err := stack.Ensure(os.Stderr, "chromium")
	if err != nil {
		t.Fatalf("testenv: chromium: %v", err)
	}
	return bins["chromium"]
}

// ChromiumArgs are the flags a headless Chromium needs here: no sandbox
// (tests run as root), and no background networking, which this machine's
// closed network would refuse many times a second.
func ChromiumArgs(userDataDir string) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir=" + userDataDir}
}

// Screenshot renders url with headless Chromium into a PNG file in dir and
// returns its path: for tests and for looking at a page as a person would.
func Screenshot(t testing.TB, url, dir string) string {
	t.Helper()
	bin := Chromium(t)
	out := filepath.Join(dir, "screenshot.png")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append(ChromiumArgs(t.TempDir()), "--window-size=1280,900", "--screenshot="+out, url)
	if b, err := exec.CommandContext(ctx, bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("testenv: chromium screenshot: %v: %s", err, b)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(fmt.Errorf("testenv: chromium wrote no screenshot: %w", err))
	}
	return out
}
