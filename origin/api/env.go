package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/novashop/edge/origin/loginguard"
	"github.com/novashop/edge/origin/tagbump"
	"github.com/novashop/edge/origin/tokens"
)

// Env is what every domain's handlers need.
type Env struct {
	// Pool is the primary: every write, and every read that must see the
	// caller's own writes (cart, orders, me, checkout, login).
	Pool *pgxpool.Pool
	// Replica, when set, serves the shared catalog reads (categories,
	// product lists and pages, review lists): those answers are cached by
	// the edge and invalidated by tags anyway, so a replica's lag of a few
	// seconds is no worse than the cache's. Nil means the primary.
	Replica *pgxpool.Pool
	Keys    *tokens.Keys
	Bumps   *tagbump.Bumper
	Log     *zap.Logger
	// BcryptCost hashes new passwords (0: bcrypt.DefaultCost); the API and
	// the storefront both read it, so every account gets the same cost.
	BcryptCost int
	// Logins throttles failed logins per username; the API and the
	// storefront share it, so neither is a way around the other. Nil
	// means no origin-side throttle.
	Logins *loginguard.Guard
}

// CatalogPool is where shared catalog reads go: the replica when there is
// one, else the primary.
func (e *Env) CatalogPool() *pgxpool.Pool {
	if e.Replica != nil {
		return e.Replica
	}
	return e.Pool
}

// RequestTimeout bounds the database work of one request.
const RequestTimeout = 10 * time.Second

// Context returns a context for one request's database work. It is not the
// fasthttp.RequestCtx itself: that one is cancelled when the server starts
// shutting down, and graceful shutdown must let in-flight queries finish.
func Context() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), RequestTimeout)
}

// Write runs fn in one transaction, stages the tags fn returns in the same
// transaction, commits, then bumps the tags in Redis before returning, and
// stamps Cache-Invalidate on the answer. When Redis does not acknowledge,
// the write still succeeds (it committed; failing it would invite a
// duplicate retry) and the staged row is retried in the background.
func (e *Env) Write(ctx *fasthttp.RequestCtx, c context.Context, fn func(tx pgx.Tx) ([]string, error)) error {
	tx, err := e.Pool.Begin(c)
	if err != nil {
		return fmt.Errorf("api: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	tags, err := fn(tx)
	if err != nil {
		return err
	}
	pending, err := e.Bumps.Stage(c, tx, tags...)
	if err != nil {
		return err
	}
	if err := tx.Commit(c); err != nil {
		return MapPgError(fmt.Errorf("api: commit: %w", err))
	}
	_ = e.Bumps.Apply(c, pending)
	Invalidated(ctx, pending.Tags)
	return nil
}

// Respond runs fn with the query context and answers status with its
// result as JSON: the tail of every read-or-update handler whose store call
// returns what the client gets.
func Respond[T any](ctx *fasthttp.RequestCtx, status int, fn func(c context.Context) (T, error)) error {
	c, cancel := Context()
	defer cancel()
	v, err := fn(c)
	if err != nil {
		return err
	}
	WriteJSON(ctx, status, v)
	return nil
}

// WriteTx is Write for the common handler: it takes the query context
// itself, and fn returns the value it wrote with the tags to bump, so a
// handler reads "decode, WriteTx, answer" instead of repeating the
// transaction plumbing.
func WriteTx[T any](e *Env, ctx *fasthttp.RequestCtx, fn func(c context.Context, tx pgx.Tx) (T, []string, error)) (T, error) {
	c, cancel := Context()
	defer cancel()
	var out T
	err := e.Write(ctx, c, func(tx pgx.Tx) (tags []string, err error) {
		out, tags, err = fn(c, tx)
		return tags, err
	})
	return out, err
}

// MapPgError turns constraint violations that bad input can cause into
// client errors, so they are never answered 500.
func MapPgError(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case "23505": // unique_violation
		return Errorf(ErrConflict, "already exists")
	case "23503": // foreign_key_violation
		return Errorf(ErrInvalid, "refers to something that does not exist")
	case "23514": // check_violation
		return Errorf(ErrConflict, "violates a constraint (%s)", pe.ConstraintName)
	case "22003": // numeric_value_out_of_range
		return Errorf(ErrInvalid, "a number is out of range")
	case "40001", "40P01": // serialization_failure, deadlock_detected
		return Errorf(ErrUnavailable, "busy, retry")
	}
	return err
}

// IsNoRows reports whether err is pgx's no-rows error.
func IsNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

// HandlerFunc is a handler that returns its error instead of writing it.
type HandlerFunc func(ctx *fasthttp.RequestCtx) error

// Handle adapts h: a returned error is answered by WriteError.
func (e *Env) Handle(h HandlerFunc) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if err := h(ctx); err != nil {
			ctx.Response.Header.Del(fasthttp.HeaderContentEncoding)
			ctx.ResetBody()
			WriteError(ctx, e.Log, err)
		}
	}
}
