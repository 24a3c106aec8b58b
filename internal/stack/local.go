package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// LocalOptions describe the local stack that `make up`, `make demo` and
// `make bench` run: PostgreSQL, Redis, N origins, the order worker, the edge
// and nginx, all on 127.0.0.1 from local binaries.
type LocalOptions struct {
	// BinDir holds the origin, edge and loadgen binaries (make build's bin/).
	BinDir string
	// Origins is how many origin servers to run (default 2).
	Origins int
	// Categories, Products and Users size the seeded catalog.
	Categories, Products, Users int
	// Balancer is the edge's balancing policy (default p2c-ewma).
	Balancer string
	// NoCache runs the edge without Redis (pure proxying).
	NoCache bool
	// OriginArgs are extra flags for every origin serve command.
	OriginArgs []string
	// EdgeEnv is extra environment for the edge, e.g. EDGE_ACCESS_LOG=off
	// for benchmarks (nginx runs with access_log off).
	EdgeEnv []string
	// HTTPS gives the edge a TLS listener (HTTP/1.1, HTTP/2 and HTTP/3) with
	// a certificate from a throwaway local CA (LocalCA) made in the stack's
	// directory.
	HTTPS bool
	// NginxConf writes nginx.conf into dir for the given upstreams
	// (host:port) and returns its path and the addresses it listens on
	// (plain round-robin first, proxy_cache second). Nil: no nginx.
	NginxConf func(dir string, upstreams []string) (conf string, addrs []string, err error)
	// Log receives one line per step.
	Log io.Writer
}

// Local is a running local stack. Stop ends everything it started.
type Local struct {
	Dir         string
	PG          *Postgres
	DatabaseURL string
	Redis       *Redis
	Origins     []*Server
	Worker      *Server
	Edge        *Server
	EdgeURL     string
	AdminURL    string
	// EdgeHTTPSURL is the edge's TLS listener (https://127.0.0.1:PORT) and
	// CA the local CA that signed its certificate; empty and nil without
	// LocalOptions.HTTPS.
	EdgeHTTPSURL string
	CA           *LocalCA
	Nginx        *Nginx
	NginxURLs    []string
	JWTSecret    string
	stops        []func()
}

// StartLocal starts the stack step by step; on any failure it stops what
// it started and returns the error.
func StartLocal(ctx context.Context, o LocalOptions) (l *Local, err error) {
	if o.Origins <= 0 {
		o.Origins = 2
	}
	if o.Balancer == "" {
		o.Balancer = "p2c-ewma"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	dir, err := os.MkdirTemp("", "novashop-stack-")
	if err != nil {
		return nil, err
	}
	l = &Local{Dir: dir, JWTSecret: randomSecret()}
	l.stops = append(l.stops, func() { os.RemoveAll(dir) })
	defer func() {
		if err != nil {
			l.Stop()
			l = nil
		}
	}()
	step := func(format string, a ...any) { fmt.Fprintf(o.Log, "stack: "+format+"\n", a...) }

	if l.PG, err = StartPostgres(ctx, o.Log); err != nil {
		return l, err
	}
	l.stops = append(l.stops, l.PG.Stop)
	step("PostgreSQL on 127.0.0.1:%d", l.PG.Port)
	if l.Redis, err = StartRedis(ctx, o.Log); err != nil {
		return l, err
	}
	l.stops = append(l.stops, l.Redis.Stop)
	step("Redis on %s", l.Redis.Addr)

	origin := filepath.Join(o.BinDir, "origin")
	l.DatabaseURL = l.PG.URL
	if err := runStep(ctx, origin, "migrate", "--database-url", l.DatabaseURL); err != nil {
		return l, err
	}
	t0 := time.Now()
	if err := runStep(ctx, origin, "seed", "--database-url", l.DatabaseURL,
		"--categories", strconv.Itoa(o.Categories), "--products", strconv.Itoa(o.Products),
		"--users", strconv.Itoa(o.Users)); err != nil {
		return l, err
	}
	step("seeded %d categories, %d products, %d users in %s", o.Categories, o.Products, o.Users, time.Since(t0).Round(time.Millisecond))

	env := []string{"JWT_SECRET=" + l.JWTSecret}
	var upstreams []string
	var hostports []string
	for i := 1; i <= o.Origins; i++ {
		port, err := FreePort()
		if err != nil {
			return l, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		name := "origin-" + strconv.Itoa(i)
		args := append([]string{"serve", "--listen", addr, "--name", name,
			"--database-url", l.DatabaseURL, "--redis-url", l.Redis.URL}, o.OriginArgs...)
		s, err := StartServer(ctx, name, origin, args, env, addr)
		if err != nil {
			return l, err
		}
		l.Origins = append(l.Origins, s)
		l.stops = append(l.stops, s.Stop)
		upstreams = append(upstreams, name+"=http://"+addr)
		hostports = append(hostports, addr)
		step("%s on http://%s", name, addr)
	}
	if wantsWorker(origin) {
		w, err := StartServer(ctx, "worker", origin, []string{"worker", "--database-url", l.DatabaseURL, "--redis-url", l.Redis.URL}, env, "")
		if err != nil {
			return l, err
		}
		l.Worker = w
		l.stops = append(l.stops, w.Stop)
		step("order worker running")
	}

	edgePort, err := FreePort()
	if err != nil {
		return l, err
	}
	adminPort, err := FreePort()
	if err != nil {
		return l, err
	}
	edgeAddr := "127.0.0.1:" + strconv.Itoa(edgePort)
	adminAddr := "127.0.0.1:" + strconv.Itoa(adminPort)
	args := []string{"--listen", edgeAddr, "--admin-listen", adminAddr, "--balancer", o.Balancer}
	if cfg := filepath.Join(filepath.Dir(o.BinDir), "configs", "edge.yaml"); fileExists(cfg) {
		args = append([]string{"--config", cfg}, args...)
	}
	for _, u := range upstreams {
		args = append(args, "--upstream", u)
	}
	redisURL := l.Redis.URL
	if o.NoCache {
		redisURL = ""
	}
	args = append(args, "--redis-url", redisURL)
	var tlsAddr string
	if o.HTTPS {
		tdir := filepath.Join(dir, "tls")
		if err := os.MkdirAll(tdir, 0o755); err != nil {
			return l, err
		}
		if l.CA, err = NewLocalCA(tdir); err != nil {
			return l, err
		}
		tlsPort, err := FreePort()
		if err != nil {
			return l, err
		}
		tlsAddr = "127.0.0.1:" + strconv.Itoa(tlsPort)
		args = append(args, "--tls-listen", tlsAddr, "--tls-cert", l.CA.CertFile, "--tls-key", l.CA.KeyFile)
	}
	edgeEnv := append(append([]string(nil), env...), o.EdgeEnv...)
	if l.Edge, err = StartServer(ctx, "edge", filepath.Join(o.BinDir, "edge"), args, edgeEnv, edgeAddr); err != nil {
		return l, err
	}
	l.stops = append(l.stops, l.Edge.Stop)
	l.EdgeURL = "http://" + edgeAddr
	l.AdminURL = "http://" + adminAddr
	step("edge on %s (admin %s, balancer %s, cache %v)", l.EdgeURL, l.AdminURL, o.Balancer, !o.NoCache)
	if tlsAddr != "" {
		if err := waitTCP(ctx, tlsAddr, 30*time.Second); err != nil {
			return l, fmt.Errorf("stack: edge TLS listener: %w", err)
		}
		l.EdgeHTTPSURL = "https://" + tlsAddr
		step("edge HTTPS on %s (local CA %s)", l.EdgeHTTPSURL, l.CA.CAFile)
	}

	if o.NginxConf != nil {
		ndir := filepath.Join(dir, "nginx")
		if err := os.MkdirAll(ndir, 0o755); err != nil {
			return l, err
		}
		conf, addrs, err := o.NginxConf(ndir, hostports)
		if err != nil {
			return l, err
		}
		if l.Nginx, err = StartNginx(ctx, o.Log, conf, addrs...); err != nil {
			return l, err
		}
		l.stops = append(l.stops, l.Nginx.Stop)
		for _, a := range addrs {
			l.NginxURLs = append(l.NginxURLs, "http://"+a)
		}
		step("nginx on %v", l.NginxURLs)
	}
	return l, nil
}

// Stop ends everything in reverse order of start.
func (l *Local) Stop() {
	if l == nil {
		return
	}
	for i := len(l.stops) - 1; i >= 0; i-- {
		l.stops[i]()
	}
	l.stops = nil
}

func runStep(ctx context.Context, bin string, args ...string) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("stack: %s %s: %w: %s", filepath.Base(bin), args[0], err, tail(out))
	}
	return nil
}

// wantsWorker reports whether the origin binary has the worker subcommand.
func wantsWorker(origin string) bool {
	return exec.Command(origin, "worker", "--help").Run() == nil
}

// waitTCP waits until addr accepts a connection, for at most d.
func waitTCP(ctx context.Context, addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
