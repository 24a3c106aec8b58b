package main

import (
	"context"
	"io"

	"github.com/novashop/edge/loadgen/compare"
)

func runCompare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("compare", "--campaign FILE --target NAME=URL ... [--rate R] [--duration D] [--rounds N] [--warmup D] [--cpu NAME=PID,...] [--cgroup NAME=PATH] [--settle D] [--json FILE] [--html FILE]", stdout)
	var cf campaignFlags
	cf.register(fs)
	var cpuf cpuFlags
	cpuf.register(fs)
	var targets stringList
	fs.Var(&targets, "target", "a system under test, `NAME=URL` (repeatable; ratios read first/second, e.g. edge/nginx)")
	rounds := fs.Int("rounds", compare.DefaultRounds, "interleaved rounds: each round runs every target in turn, and round r (from 0) starts with target r mod N, so no target always runs first")
	warmup := fs.Duration("warmup", 0, "`DURATION` of an uncounted warm-up run of each target before round 1, so caches, connections and the stack's start-up are behind every target alike (0: none)")
	jsonPath := fs.String("json", "", "write the JSON report to `FILE` (- for stdout instead of the table)")
	htmlPath := fs.String("html", "", "write the self-contained HTML report to `FILE`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := cf.load()
	if err != nil {
		return err
	}
	ts, err := parseTargets(targets)
	if err != nil {
		return err
	}
	meter, err := cpuf.meter()
	if err != nil {
		return err
	}
	settle, err := cpuf.settleBound()
	if err != nil {
		return err
	}
	if *rounds < 1 {
		return usageErr("--rounds must be at least 1")
	}
	res, err := compare.Run(ctx, c, ts, compare.Options{
		Rounds: *rounds, Rate: cf.rate, Duration: cf.duration, Warmup: *warmup,
		Progress: progressFor(stderr, cf.quiet), Log: cf.logger(stderr), CPU: meter,
		Settle: settle,
	})
	if err != nil {
		return err
	}
	if err := emit(stdout, stderr, res.Doc, res.Metrics, *jsonPath, *htmlPath); err != nil {
		return err
	}
	if res.Doc.Interrupted {
		return errInterrupted
	}
	return nil
}
