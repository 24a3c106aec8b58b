package db

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

//go:embed migrations/*.sql
var migrations embed.FS

// ErrUnreachable means the database did not answer a ping in time; check the
// URL, that the server runs, and that it accepts connections from this host.
var ErrUnreachable = errors.New("db: database unreachable")

// ErrBadURL means the database URL could not be parsed.
var ErrBadURL = errors.New("db: bad database URL")

// Options tunes the pool. Zero values mean pgx defaults.
type Options struct {
	// MaxConns bounds the pool; the default (0) lets pgx pick
	// max(4, NumCPU), which suits a small origin.
	MaxConns int32
	// PingTimeout bounds the first ping; default 5 s.
	PingTimeout time.Duration
	// Warm opens every connection of the pool at start (within PingTimeout)
	// instead of one per concurrent request on first use: a cold origin's first
	// second otherwise pays a connection set-up (and its TLS and auth) on the
	// requests that arrive together, which made the first second's p99 of a
	// freshly started shop reach hundreds of milliseconds behind any proxy.
	Warm bool
}

// Open connects a pool and pings it once, so an unreachable database is
// reported at start-up rather than on the first request.
func Open(ctx context.Context, url string, o Options) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadURL, redactErr(err))
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	timeout := o.PingTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	if o.Warm {
		warm(pctx, pool, cfg.MaxConns)
	}
	return pool, nil
}

// warm acquires n connections at once and gives them back, so the pool holds n
// open connections. A failure is not an error: the database answered the ping,
// and the pool opens what is missing on demand as before.
func warm(ctx context.Context, pool *pgxpool.Pool, n int32) {
	conns := make(chan *pgxpool.Conn, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c, err := pool.Acquire(ctx); err == nil {
				conns <- c
			}
		}()
	}
	wg.Wait()
	close(conns)
	for c := range conns {
		c.Release()
	}
}

// redactErr replaces pgx's parse error, which quotes the whole URL with its
// password, by a fixed hint.
func redactErr(error) string {
	return "cannot parse the connection string (expected postgres://user:pass@host:port/db)"
}

// Migrate applies every pending migration through goose over pgx's
// database/sql driver. Running it again is a no-op.
func Migrate(ctx context.Context, url string) error {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadURL, redactErr(err))
	}
	sqldb := stdlib.OpenDB(*cfg.ConnConfig)
	defer sqldb.Close()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := sqldb.PingContext(pctx); err != nil {
		return fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	return migrate(ctx, sqldb)
}

func migrate(ctx context.Context, sqldb *sql.DB) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("db: migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqldb, sub)
	if err != nil {
		return fmt.Errorf("db: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("db: migrate: %w", err)
	}
	return nil
}
