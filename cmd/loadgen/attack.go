package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/novashop/edge/loadgen/attack"
	"github.com/novashop/edge/loadgen/metrics"
	"github.com/novashop/edge/loadgen/report"
	"github.com/novashop/edge/loadgen/targeter"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func runAttack(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("attack", "--campaign FILE --target NAME=URL [--rate R] [--duration D] [--output FILE] [--format gob|json|csv] [--shard I/N --start-at RFC3339 [--clock-url URL]]", stdout)
	var cf campaignFlags
	cf.register(fs)
	var targets stringList
	fs.Var(&targets, "target", "the system under test, `NAME=URL` (NAME labels the results for report)")
	output := fs.String("output", "-", "results `FILE` in vegeta's format (- for stdout)")
	format := fs.String("format", "gob", "results encoding: gob (vegeta's default), json or csv")
	shardSpec := fs.String("shard", "", "run shard `I/N` of a campaign run from N machines: every N-th request of the rate profile (with --rate R the N shards together send R) and a disjoint share of the range and users feeders; needs --start-at and --output FILE")
	startAtS := fs.String("start-at", "", "start at this `RFC3339` instant (e.g. 2026-12-06T06:30:00Z), the same for every shard; refused once past")
	clockURL := fs.String("clock-url", "", "before waiting for --start-at, compare the local clock with this `URL`'s Date header and warn when they differ by more than 10ms")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	shard, shards := 1, 1
	if *shardSpec != "" {
		var err error
		if shard, shards, err = parseShard(*shardSpec); err != nil {
			return err
		}
		if *startAtS == "" {
			return usageErr("--shard needs --start-at: every shard starts at the same instant")
		}
		if *output == "-" {
			return usageErr("--shard needs --output FILE: report reads the shard's metadata from FILE.shard.json")
		}
	}
	var startAt time.Time
	if *startAtS != "" {
		t, err := time.Parse(time.RFC3339Nano, *startAtS)
		if err != nil {
			return usageErr(fmt.Sprintf("--start-at %q is not an RFC 3339 time (e.g. 2026-12-06T06:30:00Z)", *startAtS))
		}
		if ago := time.Since(t); ago >= 0 {
			return usageErr(fmt.Sprintf("--start-at %s has already passed (%s ago): give a later instant", *startAtS, ago.Round(time.Millisecond)))
		}
		startAt = t
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
	// The feeders' shares are checked now, before any file is written.
	if _, err := targeter.NewShard(c, ts[0].URL, shard-1, shards); err != nil {
		return err
	}
	id, err := campaignID(c, cf.rate, cf.duration, shards, startAt)
	if err != nil {
		return err
	}
	if *clockURL != "" {
		off, unc, err := clockOffset(ctx, *clockURL)
		if err != nil {
			return err
		}
		if off > 10*time.Millisecond || off < -10*time.Millisecond {
			fmt.Fprintf(stderr, "loadgen: warning: %s's clock minus the local clock is %s (± %s, estimated from the midpoint of the request whose Date header first showed a new second); shards will not start together\n",
				*clockURL, off.Round(time.Millisecond), unc.Round(time.Millisecond))
		}
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
		Progress: progressFor(stderr, cf.quiet), Log: cf.logger(stderr),
		OnResult: func(r *vegeta.Result) error { return enc.Encode(r) },
		Shard:    shard, Shards: shards, StartAt: startAt,
	})
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("--output: %w", err)
	}
	if *shardSpec != "" {
		m := shardMeta{Campaign: c.Name, ID: id, Shard: shard, Shards: shards, StartAt: startAt.UTC().Format(time.RFC3339Nano), Target: ts[0].Name}
		if err := writeMeta(metaPath(*output), m); err != nil {
			return fmt.Errorf("--output: %w", err)
		}
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
