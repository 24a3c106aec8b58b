// Command stack runs the local Novashop stack from the binaries in bin/:
// `stack up` keeps it in the foreground, `stack demo` seeds a catalog and
// runs the comparison campaign, `stack bench` runs the long comparisons.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "stack:", err)
		var u usageError
		if errors.As(err, &u) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ error }

const usage = `usage: stack COMMAND [flags]

Commands:
  up      start PostgreSQL, Redis, origins, worker, edge and nginx; print URLs; run until Ctrl-C
  demo    the same, seed a catalog, run loadgen compare with the browse campaign, print the table
  bench   the long comparisons (uncached proxying, cache hits, browse capacity) for docs/benchmarks.md
  tune    recommend a balancing policy: loadgen tune on two edges, one with a slow origin

Run 'stack COMMAND --help' for the flags of a command.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{errors.New("missing command")}
	}
	switch args[0] {
	case "up":
		return cmdUp(ctx, args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(ctx, args[1:], stdout, stderr)
	case "bench":
		return cmdBench(ctx, args[1:], stdout, stderr)
	case "tune":
		return cmdTune(ctx, args[1:], stdout, stderr)
	case "fixed-origin":
		return cmdFixedOrigin(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Errorf("unknown command %q", args[0])}
}

// binDir is where the sibling binaries live: next to this executable.
func binDir() string {
	exe, err := os.Executable()
	if err != nil {
		return "bin"
	}
	return filepath.Dir(exe)
}

// projectDir is the checkout (bin/..), where configs/ lives.
func projectDir() string { return filepath.Dir(binDir()) }
