// Package browsertest starts headless Chromium for the browser tests, with
// testenv's flags and the two bounds docs/testing.md asks for: Chromium's first
// start (a cold disk, its profile and font caches, two busy cores) has a bound
// of its own, so the session's bound never includes it.
package browsertest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/novashop/edge/internal/testenv"
)

// Start launches Chromium (bin, from testenv.Chromium) with extra options and
// returns a browser context that is cancelled session after the launch, or
// when the test ends. It fails the test if Chromium does not start within
// three minutes.
func Start(t testing.TB, bin string, session time.Duration, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(bin), chromedp.WindowSize(1280, 900)}
	for _, a := range testenv.ChromiumArgs(t.TempDir()) {
		name, val, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if ok {
			opts = append(opts, chromedp.Flag(name, val))
		} else {
			opts = append(opts, chromedp.Flag(name, true))
		}
	}
	opts = append(opts, extra...)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(acancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	// chromedp wants no deadline on its first call, so timers cancel instead.
	launch := time.AfterFunc(3*time.Minute, cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	launch.Stop()
	watchdog := time.AfterFunc(session, cancel)
	t.Cleanup(func() { watchdog.Stop() })
	return ctx
}
