package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/fasthttp/router"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/novashop/edge/origin/api"
	"github.com/novashop/edge/origin/db"
	"github.com/novashop/edge/origin/server"
	"github.com/novashop/edge/origin/tokens"
	"github.com/novashop/edge/origin/web"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const summary = "Runs the shop's HTTP server (JSON API, storefront, /healthz, /readyz, /metrics).\n" +
		"The JWT key is JWT_SECRET (HS256, 32+ bytes) or --jwt-private-key (Ed25519 PEM, EdDSA)."
	fs := newFlagSet("serve")
	listen := fs.String("listen", env("ORIGIN_LISTEN", "127.0.0.1:8001"), "address to listen on [ORIGIN_LISTEN]")
	name := fs.String("name", env("ORIGIN_NAME", "origin-1"), "instance name sent as X-Served-By [ORIGIN_NAME]")
	dbURL := fs.String("database-url", env("DATABASE_URL", ""), "PostgreSQL URL [DATABASE_URL]")
	replicaURL := fs.String("replica-url", env("REPLICA_URL", ""),
		"PostgreSQL read replica for catalog reads; empty: the primary serves them [REPLICA_URL]")
	redisURL := fs.String("redis-url", env("REDIS_URL", ""), "Redis URL for cache-tag bumps; empty: none [REDIS_URL]")
	keyFile := fs.String("jwt-private-key", "", "Ed25519 private key (PKCS#8 PEM) for EdDSA tokens; default HS256 with JWT_SECRET")
	latency := fs.Duration("inject-latency", 0, "lab knob: delay every answer (not /healthz, /readyz, /metrics) by this much")
	errRate := fs.Float64("inject-error-rate", 0, "lab knob: answer this fraction (0..1) of requests with 503")
	accessLog := fs.Bool("access-log", true, "log one line per request")
	maxConns := fs.Int("db-max-conns", 16, "PostgreSQL pool size (0: pgx default, max(4, CPUs))")
	grace := fs.Duration("shutdown-grace", 30*time.Second, "how long SIGTERM waits for in-flight requests")
	if done, err := parse(fs, summary, args, stdout); done || err != nil {
		return err
	}
	switch {
	case *dbURL == "":
		return usagef("serve: --database-url (or DATABASE_URL) is required")
	case *errRate < 0 || *errRate > 1:
		return usagef("serve: --inject-error-rate must be within 0..1")
	case *latency < 0:
		return usagef("serve: --inject-latency must not be negative")
	case *name == "":
		return usagef("serve: --name must not be empty")
	}
	keys, err := loadKeys(*keyFile)
	if err != nil {
		return err
	}
	log := newLogger(stderr).With(zap.String("origin", *name))
	defer func() { _ = log.Sync() }()

	pool, err := db.Open(ctx, *dbURL, db.Options{MaxConns: int32(*maxConns), Warm: true})
	if err != nil {
		return err
	}
	defer pool.Close()
	var replica *pgxpool.Pool
	if *replicaURL != "" {
		replica, err = db.Open(ctx, *replicaURL, db.Options{MaxConns: int32(*maxConns), Warm: true})
		if err != nil {
			return fmt.Errorf("replica: %w", err)
		}
		defer replica.Close()
	}
	var rdb rueidis.Client
	if *redisURL != "" {
		opt, err := rueidis.ParseURL(*redisURL)
		if err != nil {
			return usagef("serve: bad --redis-url: %v", err)
		}
		opt.DisableCache = true // the origin only INCRs tag versions
		rdb, err = rueidis.NewClient(opt)
		if err != nil {
			return fmt.Errorf("redis unreachable at %s: %v", opt.InitAddress, err)
		}
		defer rdb.Close()
	}
	srv, err := server.New(server.Deps{
		Name: *name, Pool: pool, Replica: replica, Redis: rdb, Keys: keys, Log: log, AccessLog: *accessLog,
		InjectLatency: *latency, InjectErrorRate: *errRate,
		// The server-rendered storefront shares the API's domain packages.
		Mount: []func(*router.Router, *api.Env){web.Mount},
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("serve: cannot listen on %s: %v", *listen, err)
	}
	log.Info("origin listening", zap.String("addr", ln.Addr().String()), zap.String("jwt_alg", keys.Algorithm()),
		zap.Bool("redis", rdb != nil), zap.Bool("replica", replica != nil), zap.Duration("inject_latency", *latency), zap.Float64("inject_error_rate", *errRate))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", zap.Duration("grace", *grace))
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("serve: shutdown: %v", err)
	}
	<-errc
	log.Info("stopped")
	return nil
}

func loadKeys(keyFile string) (*tokens.Keys, error) {
	if keyFile != "" {
		priv, err := tokens.LoadEd25519(keyFile)
		if err != nil {
			return nil, err
		}
		return tokens.NewEdDSA(priv)
	}
	secret := os.Getenv("JWT_SECRET")
	if secret == "" {
		return nil, usagef("serve: set JWT_SECRET (32+ bytes, HS256) or --jwt-private-key FILE (Ed25519, EdDSA)")
	}
	k, err := tokens.NewHS256([]byte(secret))
	if errors.Is(err, tokens.ErrWeakSecret) {
		return nil, usagef("serve: JWT_SECRET is %s bytes; it must be at least 32", strconv.Itoa(len(secret)))
	}
	return k, err
}

func newLogger(w io.Writer) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), zap.InfoLevel)
	return zap.New(core)
}
