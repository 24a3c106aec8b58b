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

// cmdTune answers the operator's question "which balancing policy?" on the
// local stack: edge A balances over two healthy origins, edge B over the
// same two plus a third started with --inject-latency, and loadgen tune tries
// every policy on both through their admin APIs. Both edges run without the
// cache, which would otherwise answer most requests and hide the policies.
func cmdTune(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tune", stderr)
	var f stackFlags
	f.register(fs, 20000)
	slow := fs.Duration("slow-latency", 20*time.Millisecond, "latency injected into the slow origin")
	rate := fs.Int("rate", 300, "requests per second of each run")
	duration := fs.Duration("duration", 5*time.Second, "length of each run")
	rounds := fs.Int("rounds", 2, "interleaved rounds over the policies")
	out := fs.String("json", "out/tune.json", "where loadgen tune writes its JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	f.noCache, f.noNginx = true, true
	l, err := stack.StartLocal(ctx, f.options(stdout))
	if err != nil {
		return err
	}
	defer l.Stop()

	env := []string{"JWT_SECRET=" + l.JWTSecret}
	port, err := stack.FreePort()
	if err != nil {
		return err
	}
	slowAddr := "127.0.0.1:" + strconv.Itoa(port)
	so, err := stack.StartServer(ctx, "origin-slow", filepath.Join(binDir(), "origin"),
		[]string{"serve", "--listen", slowAddr, "--name", "origin-slow", "--database-url", l.DatabaseURL,
			"--redis-url", l.Redis.URL, "--inject-latency", slow.String()}, env, slowAddr)
	if err != nil {
		return err
	}
	defer so.Stop()
	ep, err := stack.FreePort()
	if err != nil {
		return err
	}
	ap, err := stack.FreePort()
	if err != nil {
		return err
	}
	edgeB := "127.0.0.1:" + strconv.Itoa(ep)
	adminB := "127.0.0.1:" + strconv.Itoa(ap)
	eargs := []string{"--config", filepath.Join(projectDir(), "configs", "edge.yaml"),
		"--listen", edgeB, "--admin-listen", adminB, "--balancer", f.balancer, "--redis-url", ""}
	for _, o := range l.Origins {
		eargs = append(eargs, "--upstream", o.Name+"=http://"+o.Addr)
	}
	eargs = append(eargs, "--upstream", "origin-slow=http://"+slowAddr)
	eb, err := stack.StartServer(ctx, "edge-slow", filepath.Join(binDir(), "edge"), eargs, append(env, "EDGE_ACCESS_LOG=off"), edgeB)
	if err != nil {
		return err
	}
	defer eb.Stop()
	fmt.Fprintf(stdout, "stack: edge %s balances origin-1, origin-2; edge %s adds origin-slow (+%s per request)\n", l.EdgeURL, "http://"+edgeB, slow)

	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	targs := []string{"tune", "--campaign", filepath.Join(projectDir(), "configs", "campaigns", "browse.yaml"),
		"--edge", l.EdgeURL, "--admin", l.AdminURL, "--slow-edge", "http://" + edgeB, "--slow-admin", "http://" + adminB,
		"--rate", strconv.Itoa(*rate), "--duration", duration.String(), "--rounds", strconv.Itoa(*rounds), "--json", *out}
	fmt.Fprintf(stdout, "stack: loadgen %v\n", targs)
	cmd := exec.CommandContext(ctx, filepath.Join(binDir(), "loadgen"), targs...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Env = append(os.Environ(), "NOVASHOP_PRODUCTS="+strconv.Itoa(f.products),
		"NOVASHOP_CATEGORIES="+strconv.Itoa(f.categories), "NOVASHOP_USERS="+strconv.Itoa(f.users))
	return cmd.Run()
}
