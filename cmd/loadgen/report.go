package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/novashop/edge/loadgen/attack"
	"github.com/novashop/edge/loadgen/metrics"
	"github.com/novashop/edge/loadgen/report"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report", "[--json FILE] [--html FILE] [--campaign-name NAME] FILE...", stdout)
	jsonPath := fs.String("json", "", "write the JSON report to `FILE` (- for stdout instead of the table)")
	htmlPath := fs.String("html", "", "write the self-contained HTML report to `FILE`")
	name := fs.String("campaign-name", "report", "campaign name to print in the report")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	files := fs.Args()
	if len(files) == 0 {
		return usageErr("give one or more results files (from loadgen attack or vegeta attack)")
	}
	shardNote, err := checkShards(files)
	if err != nil {
		return err
	}
	ms, starts, err := mergeFiles(ctx, files)
	if err != nil {
		return err
	}
	d := &report.Document{Campaign: *name, Rounds: 1, Note: attack.Note, Ratios: map[string]map[string]report.Spread{}}
	var names []string
	var row []metrics.Summary
	for _, m := range ms {
		s := m.Summary()
		names = append(names, m.Name)
		row = append(row, s)
		d.Targets = append(d.Targets, s)
		if d.Started == "" || m.First.UTC().Format(time.RFC3339) < d.Started {
			d.Started = m.First.UTC().Format(time.RFC3339)
		}
	}
	d.Ratios = report.Ratios(names, [][]metrics.Summary{row})
	if shardNote != "" {
		lo, hi := starts[0], starts[0]
		for _, t := range starts {
			if t.Before(lo) {
				lo = t
			}
			if t.After(hi) {
				hi = t
			}
		}
		d.Shards = &report.Shards{Files: len(files), Note: shardNote, StartSpreadMs: float64(hi.Sub(lo).Microseconds()) / 1000}
	}
	return emit(stdout, stderr, d, ms, *jsonPath, *htmlPath)
}

// mergeFiles reads every result of every file, grouped by attack name,
// into one Metrics per name. Results from several machines that attacked
// at the same time merge exactly: each Metrics sees every raw result, and
// its Elapsed is the window from the earliest send to the latest answer.
//
// starts holds each file's first intended send time (shards' start spread).
func mergeFiles(ctx context.Context, files []string) (ms []*metrics.Metrics, starts []time.Time, err error) {
	// Pass 1 finds each attack's first send, so the per-second series of
	// every file line up on one clock.
	first := map[string]time.Time{}
	starts = make([]time.Time, len(files))
	err = eachResult(ctx, files, func(i int, r *vegeta.Result) {
		if t, ok := first[r.Attack]; !ok || r.Timestamp.Before(t) {
			first[r.Attack] = r.Timestamp
		}
		if starts[i].IsZero() || r.Timestamp.Before(starts[i]) {
			starts[i] = r.Timestamp
		}
	})
	if err != nil {
		return nil, nil, err
	}
	by := map[string]*metrics.Metrics{}
	err = eachResult(ctx, files, func(_ int, r *vegeta.Result) {
		m := by[r.Attack]
		if m == nil {
			name := r.Attack
			if name == "" {
				name = "target"
			}
			m = metrics.New(name, baseURL(r.URL), first[r.Attack])
			by[r.Attack] = m
		}
		m.Add(r)
	})
	if err != nil {
		return nil, nil, err
	}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*metrics.Metrics, 0, len(keys))
	for _, k := range keys {
		by[k].Close()
		out = append(out, by[k])
	}
	return out, starts, nil
}

func eachResult(ctx context.Context, files []string, fn func(int, *vegeta.Result)) error {
	for i, path := range files {
		if err := ctx.Err(); err != nil {
			return errInterrupted
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		dec := vegeta.DecoderFor(bufio.NewReaderSize(f, 1<<16))
		if dec == nil {
			f.Close()
			return fmt.Errorf("%s: no results, or not vegeta's gob, JSON or CSV format", path)
		}
		for n := 1; ; n++ {
			var r vegeta.Result
			err := dec.Decode(&r)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				f.Close()
				return fmt.Errorf("%s: result %d: %v", path, n, err)
			}
			fn(i, &r)
		}
		f.Close()
	}
	return nil
}

// baseURL keeps scheme and host of a result's URL for the report.
func baseURL(u string) string {
	for i, slashes := 0, 0; i < len(u); i++ {
		if u[i] == '/' {
			slashes++
			if slashes == 3 {
				return u[:i]
			}
		}
	}
	return u
}
