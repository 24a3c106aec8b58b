package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/novashop/edge/loadgen/attack"
	"github.com/novashop/edge/loadgen/campaign"
	"github.com/novashop/edge/loadgen/compare"
	"github.com/novashop/edge/loadgen/cpu"
	"github.com/novashop/edge/loadgen/metrics"
	"github.com/novashop/edge/loadgen/report"
	"go.uber.org/zap"
)

var (
	// errUsage marks bad flags or arguments (exit status 2).
	errUsage = errors.New("usage")
	// errInterrupted marks a run cut short by Ctrl-C whose report was
	// still written (exit status 130).
	errInterrupted = errors.New("interrupted")
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// flagSet is a command's FlagSet with its help printer.
type flagSet struct {
	*flag.FlagSet
	help func()
}

// newFlagSet returns a FlagSet that reports errors through parseFlags'
// error only (one line), and prints --help to stdout.
func newFlagSet(name, synopsis string, stdout io.Writer) *flagSet {
	fs := flag.NewFlagSet("loadgen "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	// Parse calls Usage on every error; printing is left to parseFlags,
	// which prints the help only when it was asked for.
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, help: func() {
		fmt.Fprintf(stdout, "usage: loadgen %s %s\n\nflags:\n", name, synopsis)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}}
}

// parseFlags parses args; --help prints usage and returns flag.ErrHelp,
// any other problem becomes one errUsage line.
func parseFlags(fs *flagSet, args []string) error {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.help()
		return flag.ErrHelp
	case err != nil:
		return fmt.Errorf("%w: %s: %v (see --help)", errUsage, fs.Name(), err)
	case fs.NArg() > 0 && fs.Name() != "loadgen report":
		return fmt.Errorf("%w: %s: unexpected argument %q (see --help)", errUsage, fs.Name(), fs.Arg(0))
	}
	return nil
}

// campaignFlags are shared by the commands that run a campaign.
type campaignFlags struct {
	file     string
	rate     float64
	duration time.Duration
	ranges   stringList
	users    int
	verbose  bool
	quiet    bool
}

func (c *campaignFlags) register(fs *flagSet) {
	fs.StringVar(&c.file, "campaign", "", "campaign `FILE` (YAML, see configs/campaigns/)")
	fs.Float64Var(&c.rate, "rate", 0, "constant rate in requests/s replacing the campaign's profile (0: the campaign's)")
	fs.DurationVar(&c.duration, "duration", 0, "attack duration per run replacing the campaign's (0: the campaign's)")
	fs.Var(&c.ranges, "range", "override a range feeder, `NAME=MIN-MAX` (repeatable), e.g. product=1-5000; NOVASHOP_PRODUCTS=N and NOVASHOP_CATEGORIES=N set product and category to 1-N")
	fs.IntVar(&c.users, "users", 0, "override the count of every users feeder (the seed's --users); also NOVASHOP_USERS")
	fs.BoolVar(&c.verbose, "verbose", false, "log debug events to stderr")
	fs.BoolVar(&c.quiet, "quiet", false, "no progress on stderr (by default a line redrawn in place on a terminal, else one line every 10s)")
}

// load reads the campaign and applies the overrides.
func (c *campaignFlags) load() (*campaign.Campaign, error) {
	if c.file == "" {
		return nil, fmt.Errorf("%w: --campaign FILE is required", errUsage)
	}
	if c.rate < 0 || c.duration < 0 {
		return nil, fmt.Errorf("%w: --rate and --duration must be positive", errUsage)
	}
	cp, err := campaign.Load(c.file)
	if err != nil {
		return nil, err
	}
	if err := applyCatalogEnv(cp, os.Getenv); err != nil {
		return nil, err
	}
	for _, r := range c.ranges {
		name, span, ok := strings.Cut(r, "=")
		lo, hi, ok2 := strings.Cut(span, "-")
		min, err1 := strconv.Atoi(lo)
		max, err2 := strconv.Atoi(hi)
		if !ok || !ok2 || err1 != nil || err2 != nil || min > max {
			return nil, fmt.Errorf("%w: --range %q is not NAME=MIN-MAX with MIN <= MAX", errUsage, r)
		}
		f, ok := cp.Feeders[name]
		if !ok || f.Range == nil {
			return nil, fmt.Errorf("%w: --range %q: campaign %s has no range feeder %q", errUsage, r, cp.Name, name)
		}
		f.Range = []int{min, max}
		cp.Feeders[name] = f
	}
	if c.users < 0 {
		return nil, fmt.Errorf("%w: --users must be positive", errUsage)
	}
	if c.users > 0 {
		for name, f := range cp.Feeders {
			if f.Users != nil {
				u := *f.Users
				u.Count = c.users
				f.Users = &u
				cp.Feeders[name] = f
			}
		}
	}
	return cp, nil
}

// Catalog sizes from the environment, as the local stack launcher passes
// them: the seeded catalog's ids run 1..N. Flags (--range, --users) win.
var catalogEnv = []struct{ env, feeder string }{
	{"NOVASHOP_CATEGORIES", "category"},
	{"NOVASHOP_PRODUCTS", "product"},
	{"NOVASHOP_USERS", ""}, // every users feeder
}

// applyCatalogEnv resizes the campaign's category and product range
// feeders and its users feeders to the seeded catalog named by the
// environment; feeders the campaign lacks are left alone.
func applyCatalogEnv(cp *campaign.Campaign, getenv func(string) string) error {
	for _, ce := range catalogEnv {
		v := getenv(ce.env)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("%w: %s=%q must be a positive integer", errUsage, ce.env, v)
		}
		for name, f := range cp.Feeders {
			switch {
			case ce.feeder != "" && name == ce.feeder && f.Range != nil:
				f.Range = []int{1, n}
			case ce.feeder == "" && f.Users != nil:
				u := *f.Users
				u.Count = n
				f.Users = &u
			default:
				continue
			}
			cp.Feeders[name] = f
		}
	}
	return nil
}

func (c *campaignFlags) logger(stderr io.Writer) *zap.Logger {
	if !c.verbose {
		return zap.NewNop()
	}
	cfg := zap.NewDevelopmentConfig()
	l, err := cfg.Build(zap.ErrorOutput(zapWriter{stderr}))
	if err != nil {
		return zap.NewNop()
	}
	return l
}

type zapWriter struct{ io.Writer }

func (zapWriter) Sync() error { return nil }

func parseTargets(list stringList) ([]compare.Target, error) {
	var out []compare.Target
	for _, s := range list {
		t, err := compare.ParseTarget(s)
		if err != nil {
			return nil, fmt.Errorf("%w: --target: %v", errUsage, err)
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: give at least one --target NAME=URL", errUsage)
	}
	return out, nil
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressFor returns where the live progress goes: always stderr, so
// the tables and JSON on stdout stay clean; redrawn in place when stderr
// is a terminal, else one plain line every 10 s (attack.PlainWriter);
// nowhere with --quiet.
func progressFor(stderr io.Writer, quiet bool) io.Writer {
	switch {
	case quiet:
		return nil
	case isTerminal(stderr):
		return stderr
	default:
		return attack.PlainWriter{Writer: stderr}
	}
}

// writeFile writes with fn to path, "-" meaning w.
func writeFile(path string, w io.Writer, fn func(io.Writer) error) error {
	if path == "-" {
		return fn(w)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// emit writes the text table to stdout (unless --json -) and the JSON and
// HTML files asked for.
func emit(stdout, stderr io.Writer, d *report.Document, ms []*metrics.Metrics, jsonPath, htmlPath string) error {
	if jsonPath != "-" {
		if err := report.WriteText(stdout, d); err != nil {
			return err
		}
	}
	if jsonPath != "" {
		if err := writeFile(jsonPath, stdout, func(w io.Writer) error { return report.WriteJSON(w, d) }); err != nil {
			return fmt.Errorf("--json: %w", err)
		}
	}
	if htmlPath != "" {
		if err := writeFile(htmlPath, stdout, func(w io.Writer) error { return report.WriteHTML(w, d, ms) }); err != nil {
			return fmt.Errorf("--html: %w", err)
		}
		if htmlPath != "-" {
			fmt.Fprintf(stderr, "HTML report: %s\n", htmlPath)
		}
	}
	return nil
}

func usageErr(msg string) error { return fmt.Errorf("%w: %s", errUsage, msg) }

// cpuFlags are --cpu and --cgroup, shared by compare and capacity.
type cpuFlags struct {
	pids, cgroups stringList
	settle        string
}

func (c *cpuFlags) register(fs *flagSet) {
	fs.Var(&c.pids, "cpu", "measure these processes' CPU (children included) around every run, `NAME=PID[,PID...]` (repeatable; NAME a target's name or a label such as postgres); reported as CPU µs per request")
	fs.Var(&c.cgroups, "cgroup", "measure a cgroup v2's CPU (cpu.stat usage_usec) around every run, `NAME=PATH` (repeatable)")
	fs.StringVar(&c.settle, "settle", "auto", "pause between runs, at most this `DURATION`: with --cpu/--cgroup it ends once the measured processes go quiet and a run's CPU is read after it, so its leftover work is not charged to the next target (auto: 2s with --cpu/--cgroup, else 0)")
}

// settleBound parses --settle (see cpu.ParseSettle).
func (c *cpuFlags) settleBound() (time.Duration, error) {
	d, err := cpu.ParseSettle(c.settle, len(c.pids)+len(c.cgroups) > 0)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errUsage, err)
	}
	return d, nil
}

// meter parses the flags and reads every source once, so a bad PID or
// cgroup fails before anything runs; nil when none was given.
func (c *cpuFlags) meter() (*cpu.Meter, error) {
	if len(c.pids)+len(c.cgroups) == 0 {
		return nil, nil
	}
	m := &cpu.Meter{}
	for _, s := range c.pids {
		src, err := cpu.ParsePIDs(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		m.Sources = append(m.Sources, src)
	}
	for _, s := range c.cgroups {
		src, err := cpu.ParseCgroup(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		m.Sources = append(m.Sources, src)
	}
	if err := m.Check(); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return m, nil
}
