package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// errUsage marks command-line mistakes (exit status 2).
var errUsage = errors.New("usage")

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }
func (e *usageError) Unwrap() error { return errUsage }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

const topUsage = `usage: origin <command> [flags]

The Novashop shop origin.

commands:
  migrate   apply the database schema (safe to run twice)
  seed      fill an empty database with deterministic demo data
  serve     run the shop's HTTP server
  worker    run the asynchronous order pipeline

Run "origin <command> --help" for a command's flags.
`

// run is the whole program; main only maps its error to an exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("missing command: migrate, seed, serve or worker (see origin --help)")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, topUsage)
		return nil
	case "migrate":
		return runMigrate(ctx, args[1:], stdout)
	case "seed":
		return runSeed(ctx, args[1:], stdout)
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "worker":
		return runWorkerCommand(ctx, args[1:], stdout, stderr)
	}
	return usagef("unknown command %q (want migrate, seed, serve or worker; see origin --help)", args[0])
}

// newFlagSet makes a flag set that prints nothing by itself: parse errors
// become one line, and --help prints the usage to stdout.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parse parses args; on --help it prints the usage to stdout and returns
// done=true.
func parse(fs *flag.FlagSet, summary string, args []string, stdout io.Writer) (done bool, err error) {
	err = fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stdout, "usage: origin %s [flags]\n\n%s\n\nflags:\n", fs.Name(), summary)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		return true, nil
	}
	if err != nil {
		return false, usagef("%s: %v (see origin %s --help)", fs.Name(), err, fs.Name())
	}
	if fs.NArg() > 0 {
		return false, usagef("%s: unexpected argument %q (see origin %s --help)", fs.Name(), fs.Arg(0), fs.Name())
	}
	return false, nil
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && strings.TrimSpace(v) != "" {
		return v
	}
	return def
}
