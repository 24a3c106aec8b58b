package db

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
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
	return pool, nil
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
