package tagbump

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/novashop/edge/cachekeys"
)

// ErrRedis means Redis did not acknowledge a bump; the row stays and Run
// retries it.
var ErrRedis = errors.New("tagbump: redis did not acknowledge the bump")

// Pending is a staged bump: the tag_bumps row and its tags.
type Pending struct {
	ID   int64
	Tags []string
}

// Bumper stages and applies tag bumps. The zero value is not usable; call New.
type Bumper struct {
	pool *pgxpool.Pool
	rdb  rueidis.Client
	log  *zap.Logger
	// Timeout bounds one Apply's wait for Redis, so a write never hangs on a
	// dead Redis: the row is retried later instead. Default 1 s.
	Timeout time.Duration
	// MinAge is how old a row must be before Run retries it, so Run does not
	// race the request that is applying it right now. Default 2 s.
	MinAge time.Duration
}

// New makes a Bumper. rdb may be nil (no Redis configured): then nothing is
// staged or sent, and writes still report their tags in Cache-Invalidate.
func New(pool *pgxpool.Pool, rdb rueidis.Client, log *zap.Logger) *Bumper {
	if log == nil {
		log = zap.NewNop()
	}
	return &Bumper{pool: pool, rdb: rdb, log: log, Timeout: time.Second, MinAge: 2 * time.Second}
}

// Stage records tags in the write's transaction.
func (b *Bumper) Stage(ctx context.Context, tx pgx.Tx, tags ...string) (Pending, error) {
	p := Pending{Tags: dedupe(tags)}
	if b.rdb == nil || len(p.Tags) == 0 {
		return p, nil
	}
	err := tx.QueryRow(ctx, `INSERT INTO tag_bumps (tags) VALUES ($1) RETURNING id`, p.Tags).Scan(&p.ID)
	if err != nil {
		return p, fmt.Errorf("tagbump: stage: %w", err)
	}
	return p, nil
}

// Apply bumps the staged tags in Redis and deletes the row. Call it after the
// transaction committed. On error the row stays for Run.
func (b *Bumper) Apply(ctx context.Context, p Pending) error {
	if b.rdb == nil || p.ID == 0 {
		return nil
	}
	if err := b.incr(ctx, p.Tags); err != nil {
		if c := b.log.Check(zap.WarnLevel, "tag bump deferred: redis unavailable"); c != nil {
			c.Write(zap.Int64("bump_id", p.ID), zap.Strings("tags", p.Tags), zap.Error(err))
		}
		return err
	}
	if _, err := b.pool.Exec(ctx, `DELETE FROM tag_bumps WHERE id = $1`, p.ID); err != nil {
		// Redis has the bump; a leftover row only causes one more harmless INCR.
		return fmt.Errorf("tagbump: delete row: %w", err)
	}
	return nil
}

func (b *Bumper) incr(ctx context.Context, tags []string) error {
	ctx, cancel := context.WithTimeout(ctx, b.Timeout)
	defer cancel()
	cmds := make(rueidis.Commands, 0, len(tags))
	for _, t := range tags {
		cmds = append(cmds, b.rdb.B().Incr().Key(cachekeys.TagVersionKey(t)).Build())
	}
	for _, r := range b.rdb.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return fmt.Errorf("%w: %v", ErrRedis, err)
		}
	}
	return nil
}

// RetryOnce applies up to 100 leftover rows older than MinAge and returns how
// many it applied. Rows are locked with SKIP LOCKED so several origins can
// retry side by side without applying the same row twice.
func (b *Bumper) RetryOnce(ctx context.Context) (int, error) {
	if b.rdb == nil {
		return 0, nil
	}
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("tagbump: retry: %w", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	rows, err := tx.Query(ctx, `SELECT id, tags FROM tag_bumps
		WHERE created_at < now() - make_interval(secs => $1) ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED`,
		b.MinAge.Seconds())
	if err != nil {
		return 0, fmt.Errorf("tagbump: retry: %w", err)
	}
	var ids []int64
	var tags []string
	for rows.Next() {
		var id int64
		var t []string
		if err := rows.Scan(&id, &t); err != nil {
			rows.Close()
			return 0, fmt.Errorf("tagbump: retry: %w", err)
		}
		ids = append(ids, id)
		tags = append(tags, t...)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("tagbump: retry: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	if err := b.incr(ctx, dedupe(tags)); err != nil {
		_, _ = tx.Exec(ctx, `UPDATE tag_bumps SET attempts = attempts + 1 WHERE id = ANY($1)`, ids)
		_ = tx.Commit(ctx)
		return 0, err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM tag_bumps WHERE id = ANY($1)`, ids); err != nil {
		return 0, fmt.Errorf("tagbump: retry: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("tagbump: retry: %w", err)
	}
	return len(ids), nil
}

// Run retries leftover rows every interval until ctx ends. It recovers from
// panics so a bug here never takes the server down.
func (b *Bumper) Run(ctx context.Context, every time.Duration) {
	if b.rdb == nil {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b.retrySafe(ctx)
	}
}

func (b *Bumper) retrySafe(ctx context.Context) {
	defer func() {
		if r := recover(); r != nil {
			b.log.Error("tag bump retry panicked", zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
		}
	}()
	n, err := b.RetryOnce(ctx)
	if err != nil && ctx.Err() == nil {
		b.log.Warn("tag bump retry failed", zap.Error(err))
		return
	}
	if n > 0 {
		b.log.Info("tag bumps retried", zap.Int("rows", n))
	}
}

func dedupe(tags []string) []string {
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		dup := false
		for _, o := range out {
			if o == t {
				dup = true
				break
			}
		}
		if !dup && t != "" {
			out = append(out, t)
		}
	}
	return out
}
