package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/novashop/edge/internal/stack"
)

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	var f stackFlags
	f.register(fs, 20000)
	duration := fs.Duration("duration", 5*time.Second, "length of each target's run in a round (4 targets x 3 rounds: about a minute)")
	rounds := fs.Int("rounds", 3, "interleaved rounds (each starts with the next target, so none always runs first)")
	warmup := fs.Duration("warmup", 3*time.Second, "uncounted warm-up run of every target alike before round 1 (0: none)")
	rate := fs.Int("rate", 500, "requests per second of the open-model load")
	out := fs.String("out", "out", "directory for the JSON and HTML reports")
	if err := parse(fs, args); err != nil {
		return err
	}
	l, err := stack.StartLocal(ctx, f.options(stdout))
	if err != nil {
		return err
	}
	defer l.Stop()
	printURLs(stdout, l)
	if err := smoke(ctx, l, stdout); err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	jsonPath, _ := filepath.Abs(filepath.Join(*out, "demo.json"))
	htmlPath, _ := filepath.Abs(filepath.Join(*out, "demo.html"))
	largs := []string{"compare",
		"--campaign", filepath.Join(projectDir(), "configs", "campaigns", "browse.yaml"),
		"--target", "edge=" + l.EdgeURL,
	}
	if len(l.NginxURLs) > 0 {
		largs = append(largs, "--target", "nginx="+l.NginxURLs[0])
	}
	if len(l.NginxURLs) > 1 {
		largs = append(largs, "--target", "nginx-cache="+l.NginxURLs[1])
	}
	largs = append(largs, "--target", "origin-1=http://"+l.Origins[0].Addr,
		"--rate", strconv.Itoa(*rate), "--duration", duration.String(), "--rounds", strconv.Itoa(*rounds),
		"--warmup", warmup.String(), "--json", jsonPath, "--html", htmlPath)
	largs = append(largs, cpuArgs(l)...)
	fmt.Fprintf(stdout, "stack: loadgen %v\n", largs)
	cmd := exec.CommandContext(ctx, filepath.Join(binDir(), "loadgen"), largs...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Env = append(os.Environ(), "NOVASHOP_PRODUCTS="+strconv.Itoa(f.products), "NOVASHOP_CATEGORIES="+strconv.Itoa(f.categories))
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("loadgen compare: %w", err)
	}
	fmt.Fprintf(stdout, "\nstack: reports in %s and %s\n", jsonPath, htmlPath)
	return nil
}
