package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := startCPUProfile(os.Getenv("LOADGEN_CPUPROFILE"), os.Stderr)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stopProfile()
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode prints err as one line and maps it to the process status: 0
// for success and --help, 130 after Ctrl-C (the report was still
// written), 2 for usage errors, 1 otherwise.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errInterrupted):
		fmt.Fprintln(stderr, "loadgen: interrupted; the report covers what ran")
		return 130
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "loadgen:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "loadgen:", err)
		return 1
	}
}

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"compare", "run a campaign against several targets in interleaved rounds and compare them", runCompare},
	{"capacity", "find each target's highest rate within a p99 bound and a success floor", runCapacity},
	{"tune", "try every balancing policy of an edge through its admin API and recommend one", runTune},
	{"attack", "run a campaign against one target and write vegeta-format results", runAttack},
	{"report", "merge vegeta-format result files into one report (text, JSON, HTML)", runReport},
	{"coherence", "measure how fast a write through one edge shows on the others", runCoherence},
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: loadgen <command> [flags]   (loadgen <command> --help for its flags)")
	fmt.Fprintln(w, "commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
}

// run is main without the process: tests call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return fmt.Errorf("%w: no command given", errUsage)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return nil
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	usage(stderr)
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}

// startCPUProfile writes a pprof CPU profile of the whole run to path
// (LOADGEN_CPUPROFILE), so the generator's own cost can be profiled: on a
// small machine it shares the CPU with the system under test. An empty
// path does nothing; a profile that cannot start is reported, not fatal.
func startCPUProfile(path string, stderr io.Writer) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(stderr, "loadgen: cpu profile:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(stderr, "loadgen: cpu profile:", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
