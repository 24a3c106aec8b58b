package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/novashop/edge/loadgen/coherence"
)

func runCoherence(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("coherence", "--writer NAME=URL --reader NAME=URL ... (--token T | --username U --password P) [--product ID] [--writes N] [--json FILE]", stdout)
	var writer string
	var readers stringList
	fs.StringVar(&writer, "writer", "", "the edge writes go through, `NAME=URL`")
	fs.Var(&readers, "reader", "an edge polled for the new value, `NAME=URL` (repeatable)")
	token := fs.String("token", "", "a staff access token (else --username/--password log in)")
	username := fs.String("username", "", "staff user name for POST /api/login/ (the seed's is admin)")
	password := fs.String("password", "", "staff password")
	product := fs.Int("product", coherence.DefaultProduct, "id of the product whose price is changed (restored at the end)")
	writes := fs.Int("writes", coherence.DefaultWrites, "number of writes to measure")
	interval := fs.Duration("interval", coherence.DefaultInterval, "pause between polls of one edge")
	timeout := fs.Duration("timeout", coherence.DefaultTimeout, "how long one write may take to show everywhere")
	pause := fs.Duration("pause", coherence.DefaultPause, "pause between writes")
	jsonPath := fs.String("json", "", "write the JSON result to `FILE` (- for stdout instead of the table)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if writer == "" {
		return usageErr("--writer NAME=URL is required")
	}
	w, err := parseTargets(stringList{writer})
	if err != nil {
		return err
	}
	rs, err := parseTargets(readers)
	if err != nil {
		return fmt.Errorf("%w (the readers)", err)
	}
	cfg := coherence.Config{
		Writer: coherence.Edge{Name: w[0].Name, URL: w[0].URL},
		Token:  *token, Username: *username, Password: *password,
		Product: *product, Writes: *writes, Interval: *interval, Timeout: *timeout, Pause: *pause,
	}
	for _, r := range rs {
		cfg.Readers = append(cfg.Readers, coherence.Edge{Name: r.Name, URL: r.URL})
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	res, err := coherence.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *jsonPath != "-" {
		if err := coherence.WriteText(stdout, res); err != nil {
			return err
		}
	}
	if *jsonPath != "" {
		err := writeFile(*jsonPath, stdout, func(w io.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(res)
		})
		if err != nil {
			return fmt.Errorf("--json: %w", err)
		}
	}
	if res.Interrupted {
		return errInterrupted
	}
	return nil
}
