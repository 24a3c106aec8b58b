package users

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"go.uber.org/zap"
)

// SweepBatch bounds the rows one DELETE removes, so a sweep never holds
// many row locks or one long transaction, even after weeks of backlog.
const SweepBatch = 1000

// DefaultSweepEvery is the period of RunSweeper when none is given.
const DefaultSweepEvery = 10 * time.Minute

// SweepExpired deletes refresh tokens whose expiry has passed and returns
// how many it deleted. They are dead weight: an expired refresh token fails
// its own exp check before the database is asked, so its row (revoked or
// not) can no longer take part in rotation or reuse detection. Several
// origins may sweep at once: SKIP LOCKED lets them share the work instead
// of waiting on each other.
func (s *Service) SweepExpired(ctx context.Context) (int64, error) {
	var total int64
	for {
		tag, err := s.Pool.Exec(ctx, `DELETE FROM refresh_tokens WHERE jti IN (
			SELECT jti FROM refresh_tokens WHERE expires_at <= now()
			LIMIT $1 FOR UPDATE SKIP LOCKED)`, SweepBatch)
		if err != nil {
			return total, fmt.Errorf("users: sweep refresh tokens: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < SweepBatch {
			return total, nil
		}
	}
}

// RunSweeper sweeps expired refresh tokens at once and then every period
// (DefaultSweepEvery when 0) until ctx ends. It never panics out: a panic
// is logged with its stack and the loop goes on at the next tick.
func (s *Service) RunSweeper(ctx context.Context, every time.Duration, log *zap.Logger) {
	if every <= 0 {
		every = DefaultSweepEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.sweepOnce(ctx, log)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Service) sweepOnce(ctx context.Context, log *zap.Logger) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("refresh token sweep panicked", zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
		}
	}()
	c, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	n, err := s.SweepExpired(c)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("refresh token sweep failed", zap.Error(err))
		}
		return
	}
	if n > 0 {
		if ce := log.Check(zap.InfoLevel, "expired refresh tokens deleted"); ce != nil {
			ce.Write(zap.Int64("rows", n))
		}
	}
}
