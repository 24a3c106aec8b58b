package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/novashop/edge/loadgen/attack"
	"github.com/novashop/edge/loadgen/metrics"
	"github.com/novashop/edge/loadgen/report"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func runAttack(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("attack", "--campaign FILE --target NAME=URL [--rate R] [--duration D] [--output FILE] [--format gob|json|csv]", stdout)
	var cf campaignFlags
	cf.register(fs)
	var targets stringList
	fs.Var(&targets, "target", "the system under test, `NAME=URL` (NAME labels the results for report)")
	output := fs.String("output", "-", "results `FILE` in vegeta's format (- for stdout)")
	format := fs.String("format", "gob", "results encoding: gob (vegeta's default), json or csv")
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
	if len(ts) != 1 {
		return usageErr("attack takes exactly one --target; use compare for several")
	}
	var out io.Writer = stdout
	if *output != "-" {
		f, err := os.Create(*output)
		if err != nil {
			return fmt.Errorf("--output: %w", err)
		}
		defer f.Close()
		out = f
	} else if isTerminal(stdout) {
		return usageErr("results are binary: give --output FILE or redirect stdout")
	}
	bw := bufio.NewWriterSize(out, 1<<16)
	var enc vegeta.Encoder
	switch *format {
	case "gob":
		enc = vegeta.NewEncoder(bw)
	case "json":
		enc = vegeta.NewJSONEncoder(bw)
	case "csv":
		enc = vegeta.NewCSVEncoder(bw)
	default:
		return usageErr(fmt.Sprintf("--format %q is not gob, json or csv", *format))
	}
	res, err := attack.Run(ctx, c, attack.Options{
		Name: ts[0].Name, URL: ts[0].URL, Rate: cf.rate, Duration: cf.duration,
		Progress: progressFor(stdout, stderr), Log: cf.logger(stderr),
		OnResult: func(r *vegeta.Result) error { return enc.Encode(r) },
	})
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("--output: %w", err)
	}
	// The summary goes to stderr: stdout may carry the results.
	d := &report.Document{Campaign: c.Name, Started: res.Metrics.First.UTC().Format("2006-01-02T15:04:05Z07:00"), Rounds: 1,
		Targets: []metrics.Summary{res.Metrics.Summary()}, Ratios: map[string]map[string]report.Spread{}, Note: attack.Note,
		Profile: res.Profile, Interrupted: res.Interrupted, MaxSendLagMs: float64(res.MaxSendLag.Microseconds()) / 1000}
	if err := report.WriteText(stderr, d); err != nil {
		return err
	}
	if res.Interrupted {
		return errInterrupted
	}
	return nil
}
