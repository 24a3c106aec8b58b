package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/novashop/edge/proxy"
	"github.com/novashop/edge/proxy/cache"
	"github.com/novashop/edge/proxy/config"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// errUsage marks a bad command line or configuration: exit status 2.
var errUsage = errors.New("usage")

type usageError struct{ err error }

func (e usageError) Error() string   { return e.err.Error() }
func (e usageError) Unwrap() []error { return []error{e.err, errUsage} }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exitCode is 2 for usage and configuration errors, 1 for everything else.
func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

// upstreamList is the repeatable --upstream flag.
type upstreamList []string

func (u *upstreamList) String() string { return strings.Join(*u, ",") }
func (u *upstreamList) Set(v string) error {
	*u = append(*u, v)
	return nil
}

// flags holds the command line; set records which flags were given, so an
// explicitly empty --redis-url can turn a configured cache off.
type flags struct {
	config, listen, adminListen, balancer, redisURL, jwtPublicKey, jwksURL, io, ioLoops string
	upstreams                                                                           upstreamList
	tlsListen                                                                           string
	ioBatchWait                                                                         string
	tlsCerts, tlsKeys                                                                   upstreamList
	set                                                                                 map[string]bool
}

const usageText = `Usage: edge --config FILE [flags]

The Novashop edge: reverse proxy, balancer, JWT check, rate limits and cache in
front of the shop's origins. Flags override the file; environment variables
(in brackets) override the file and are overridden by flags.

Flags:
  --config FILE          YAML configuration (see configs/edge.yaml)
  --listen ADDR          public listener [EDGE_LISTEN]
  --admin-listen ADDR    admin API, /metrics, pprof [EDGE_ADMIN_LISTEN]
  --upstream URL         origin, repeatable, name=URL allowed [EDGE_UPSTREAMS, comma-separated]
  --balancer POLICY      round-robin, weighted, least-conn, p2c-ewma, random, hash [EDGE_BALANCER]
  --io CORE              eventloop (default) or goroutine: the public listener's I/O core [EDGE_IO]
  --io-loops N           event loops of the eventloop core; 0 = one per GOMAXPROCS [EDGE_IO_LOOPS]
  --io-batch-wait D      eventloop wake-up coalescing, 0..2ms; 0 = off [EDGE_IO_BATCH_WAIT]
  --redis-url URL        shared cache; empty means no cache [REDIS_URL]
  --jwt-public-key FILE  Ed25519 or RSA public key PEM for token checks
  --jwks-url URL         JWKS endpoint for token checks
  --tls-listen ADDR      HTTPS listener [EDGE_TLS_LISTEN]
  --tls-cert FILE        PEM certificate chain, repeatable, paired in order with --tls-key
  --tls-key FILE         PEM private key, repeatable; the first pair is the default certificate
  The HS256 secret comes from JWT_SECRET (jwt.secret_env in the file).
  EDGE_ACCESS_LOG=off|on overrides access_log.enabled.
  GOMEMLIMIT (Go runtime) bounds the heap: budget ~1.7x cache.max_memory_bytes.

Signals: SIGTERM/SIGINT drain and stop; SIGHUP reloads the file (upstreams,
balancer, health, retries, rate limits, forwarded, TLS certificates, and some
timeouts and limits); changed keys it cannot apply are named in a warning.
`

// newFlagSet defines the command line into f. The usage text is written by hand
// (usageText); TestUsageListsEveryFlag keeps the two in step.
func newFlagSet(f *flags) *flag.FlagSet {
	fs := flag.NewFlagSet("edge", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.config, "config", "", "")
	fs.StringVar(&f.listen, "listen", "", "")
	fs.StringVar(&f.adminListen, "admin-listen", "", "")
	fs.Var(&f.upstreams, "upstream", "")
	fs.StringVar(&f.balancer, "balancer", "", "")
	fs.StringVar(&f.io, "io", "", "")
	fs.StringVar(&f.ioLoops, "io-loops", "", "")
	fs.StringVar(&f.ioBatchWait, "io-batch-wait", "", "")
	fs.StringVar(&f.redisURL, "redis-url", "", "")
	fs.StringVar(&f.jwtPublicKey, "jwt-public-key", "", "")
	fs.StringVar(&f.jwksURL, "jwks-url", "", "")
	fs.StringVar(&f.tlsListen, "tls-listen", "", "")
	fs.Var(&f.tlsCerts, "tls-cert", "")
	fs.Var(&f.tlsKeys, "tls-key", "")
	return fs
}

func parseFlags(args []string, stdout io.Writer) (*flags, error) {
	f := &flags{set: map[string]bool{}}
	fs := newFlagSet(f)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			_, _ = io.WriteString(stdout, usageText)
			return nil, flag.ErrHelp
		}
		return nil, usagef("%v (see edge --help)", err)
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected argument %q (see edge --help)", fs.Arg(0))
	}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	return f, nil
}

// loadConfig builds the configuration: defaults, then the file, then environment
// variables, then flags; the result is validated.
func loadConfig(f *flags, getenv func(string) string) (config.Config, error) {
	cfg := config.Default()
	if f.config != "" {
		var err error
		if cfg, err = config.Read(f.config); err != nil {
			return cfg, usageError{err}
		}
	}
	pick := func(dst *string, env, flagName, flagVal string) {
		if v := getenv(env); v != "" {
			*dst = v
		}
		if f.set[flagName] {
			*dst = flagVal
		}
	}
	pick(&cfg.Listen, "EDGE_LISTEN", "listen", f.listen)
	pick(&cfg.AdminListen, "EDGE_ADMIN_LISTEN", "admin-listen", f.adminListen)
	pick(&cfg.Balancer.Policy, "EDGE_BALANCER", "balancer", f.balancer)
	pick(&cfg.TLS.Listen, "EDGE_TLS_LISTEN", "tls-listen", f.tlsListen)
	if len(f.tlsCerts) != len(f.tlsKeys) {
		return cfg, usagef("--tls-cert and --tls-key come in pairs: %d certificates, %d keys", len(f.tlsCerts), len(f.tlsKeys))
	}
	if len(f.tlsCerts) > 0 {
		cfg.TLS.Certificates = nil
		for i := range f.tlsCerts {
			cfg.TLS.Certificates = append(cfg.TLS.Certificates, config.Certificate{CertFile: f.tlsCerts[i], KeyFile: f.tlsKeys[i]})
		}
	}
	pick(&cfg.IO, "EDGE_IO", "io", f.io)
	// io_loops is an int in the file; the environment and the flag arrive as
	// text through the same precedence, then are parsed once here.
	loops := ""
	pick(&loops, "EDGE_IO_LOOPS", "io-loops", f.ioLoops)
	if loops != "" {
		n, err := strconv.Atoi(strings.TrimSpace(loops))
		if err != nil {
			return cfg, usagef("io loops %q (--io-loops, EDGE_IO_LOOPS) is not a whole number", loops)
		}
		cfg.IOLoops = n
	}
	batch := ""
	pick(&batch, "EDGE_IO_BATCH_WAIT", "io-batch-wait", f.ioBatchWait)
	if batch != "" {
		d, err := time.ParseDuration(strings.TrimSpace(batch))
		if err != nil {
			return cfg, usagef("io batch wait %q (--io-batch-wait, EDGE_IO_BATCH_WAIT) is not a duration (500us, 1ms)", batch)
		}
		cfg.IOBatchWait = d
	}
	if getenv("REDIS_URL") != "" || f.set["redis-url"] {
		// A Redis URL from the environment or the command line turns the cache on;
		// an explicitly empty --redis-url turns it off.
		pick(&cfg.Cache.RedisURL, "REDIS_URL", "redis-url", f.redisURL)
		cfg.Cache.Enabled = cfg.Cache.RedisURL != ""
	}
	switch v := strings.ToLower(getenv("EDGE_ACCESS_LOG")); v {
	case "":
	case "off", "false", "0":
		cfg.AccessLog.Enabled = false
	case "on", "true", "1":
		cfg.AccessLog.Enabled = true
	default:
		return cfg, usagef("EDGE_ACCESS_LOG=%q must be on or off", v)
	}
	if f.set["jwt-public-key"] {
		cfg.JWT.PublicKeyFile, cfg.JWT.JWKSURL = f.jwtPublicKey, ""
	}
	if f.set["jwks-url"] {
		cfg.JWT.JWKSURL = f.jwksURL
		if !f.set["jwt-public-key"] {
			cfg.JWT.PublicKeyFile = ""
		}
	}

	var ups []string
	if v := getenv("EDGE_UPSTREAMS"); v != "" {
		ups = strings.Split(v, ",")
	}
	if len(f.upstreams) > 0 {
		ups = f.upstreams
	}
	if ups != nil {
		cfg.Upstreams = nil
		for _, spec := range ups {
			spec = strings.TrimSpace(spec)
			if spec == "" {
				continue
			}
			u := config.Upstream{URL: spec, Weight: 1}
			if name, url, ok := strings.Cut(spec, "="); ok {
				u.Name, u.URL = name, url
			}
			cfg.Upstreams = append(cfg.Upstreams, u)
		}
	}
	cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{err}
	}
	return cfg, nil
}

// newLogger is the edge's zap logger over w, which must serialise its own
// writes (run passes the locked stderr it shares with the access log).
func newLogger(w zapcore.WriteSyncer) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), w, zap.InfoLevel)
	return zap.New(core)
}

// run is the whole command: tests call it directly with their own context, args
// and writers. It returns when ctx ends (after draining) or on a fatal error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	cfg, err := loadConfig(f, os.Getenv)
	if err != nil {
		return err
	}
	// One lock around stderr for zap's lines and the access log's buffers (each
	// Write holds whole lines), so lines never interleave.
	out := zapcore.Lock(zapcore.AddSync(stderr))
	log := newLogger(out)
	defer func() { _ = log.Sync() }()

	opt := proxy.Options{Logger: log, AccessLog: out, AdminToken: os.Getenv(cfg.Admin.TokenEnv)}
	if err := checkAdminGuard(cfg.AdminListen, cfg.Admin, opt.AdminToken); err != nil {
		return usageError{err}
	}
	if cfg.JWT.PublicKeyFile == "" && cfg.JWT.JWKSURL == "" {
		opt.JWTSecret = []byte(os.Getenv(cfg.JWT.SecretEnv))
	}
	if cfg.Cache.Enabled {
		c, err := cache.New(cfg.Cache.CacheConfig(), log)
		if err != nil {
			return fmt.Errorf("cache: %w", err)
		}
		opt.Cache = c
	}
	srv, err := proxy.New(cfg, opt)
	if err != nil {
		if opt.Cache != nil {
			opt.Cache.Close()
		}
		return usageError{err}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		srv.Close()
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	aln, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		_ = ln.Close()
		srv.Close()
		return fmt.Errorf("admin listen %s: %w", cfg.AdminListen, err)
	}
	// Listen for SIGHUP before announcing readiness, so a reload sent right after
	// the announcement cannot hit the default action (exit).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	fmt.Fprintf(stdout, "edge: serving on %s (admin %s), %d upstreams, balancer %s\n",
		ln.Addr(), aln.Addr(), len(cfg.Upstreams), cfg.Balancer.Policy)

	errc := make(chan error, 3)
	if cfg.TLS.Listen != "" {
		tln, err := net.Listen("tcp", cfg.TLS.Listen)
		if err != nil {
			_, _ = ln.Close(), aln.Close()
			srv.Close()
			return fmt.Errorf("tls listen %s: %w", cfg.TLS.Listen, err)
		}
		fmt.Fprintf(stdout, "edge: https on %s, %d certificates\n", tln.Addr(), len(cfg.TLS.Certificates))
		go func() { errc <- srv.ServeTLS(tln) }()
		if cfg.TLS.HTTP3 {
			pc, err := net.ListenPacket("udp", tln.Addr().String())
			if err != nil {
				_, _, _ = ln.Close(), aln.Close(), tln.Close()
				srv.Close()
				return fmt.Errorf("http3 listen udp %s: %w", tln.Addr(), err)
			}
			go func() { errc <- srv.ServeHTTP3(pc) }()
		}
	}
	go func() { errc <- srv.Serve(ln) }()
	go func() { errc <- srv.ServeAdmin(aln) }()

	for {
		select {
		case <-hup:
			next, err := loadConfig(f, os.Getenv)
			if err == nil {
				err = srv.Reload(next)
			}
			if err != nil {
				log.Error("edge: reload rejected, keeping the running configuration", zap.Error(err))
				_ = srv.ReloadCertificates(nil) // the files in force; errors are logged there
				continue
			}
			_ = srv.ReloadCertificates(next.TLS.Certificates)
			// cfg is the configuration the process started with: the keys
			// a reload cannot apply still have its values.
			if keys := config.RestartOnly(cfg, next); len(keys) > 0 {
				log.Warn("edge: changed settings that take effect only on restart (origins added by this reload get the new connection settings)", zap.Strings("keys", keys))
			}
			log.Info("edge: reloaded", zap.String("config", f.config))
		case err := <-errc:
			srv.Close()
			return fmt.Errorf("serve: %w", err)
		case <-ctx.Done():
			// Readiness false and Connection: close at once; keep serving until
			// timeouts.drain has passed since draining began (a preStop hook may
			// have started it already), so the balancer in front stops sending
			// before the listener closes.
			since := srv.Drain()
			if wait := cfg.Timeouts.Drain - time.Since(since); wait > 0 {
				log.Info("edge: draining before shutdown", zap.Duration("left", wait))
				select {
				case <-time.After(wait):
				case err := <-errc:
					srv.Close()
					return fmt.Errorf("serve: %w", err)
				}
			}
			log.Info("edge: shutting down, draining connections", zap.Duration("timeout", cfg.Timeouts.Shutdown))
			sctx, cancel := context.WithTimeout(context.Background(), cfg.Timeouts.Shutdown)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("shutdown: %w", err)
			}
			return nil
		}
	}
}

// checkAdminGuard refuses an admin API anyone on the network could pull
// (purge, drain, balancer switch): off loopback it needs a token unless
// the configuration says admin.insecure: true.
func checkAdminGuard(listen string, a config.Admin, token string) error {
	if token != "" || a.Insecure {
		return nil
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("admin_listen %q: %v", listen, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("admin_listen %s is reachable beyond this host and %s is not set: set it to a secret token (mutating admin calls then need Authorization: Bearer TOKEN), listen on 127.0.0.1, or set admin.insecure: true", listen, a.TokenEnv)
}
