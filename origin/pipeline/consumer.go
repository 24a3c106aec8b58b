package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"
	"go.uber.org/zap"
)

// errStopped is returned when a test hook stops a consumer as if its
// process had died between reading and acknowledging.
var errStopped = errors.New("pipeline: consumer stopped by hook")

// Consumer is one member of the consumer group. It reclaims messages idle
// for longer than ClaimTimeout (its own failures and those of dead
// workers), reads new ones, and processes each exactly once in effect.
type Consumer struct {
	cfg      Config
	db       *pgxpool.Pool
	rdb      rueidis.Client
	log      *zap.Logger
	m        *Metrics
	handlers map[string]Handler

	groupReady  bool
	claimCursor string
	nextClaim   time.Time

	// Test hooks. afterRead returning false stops the consumer at once
	// with the batch read and unacknowledged, as a crash would;
	// beforeCommit injects a processing failure.
	afterRead    func([]rueidis.XRangeEntry) bool
	beforeCommit func(Message) error
}

// NewConsumer checks cfg and makes a Consumer with DefaultHandlers. m and
// log may be nil.
func NewConsumer(cfg Config, db *pgxpool.Pool, rdb rueidis.Client, log *zap.Logger, m *Metrics) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	if m == nil {
		m = NewMetrics()
	}
	return &Consumer{cfg: cfg.withDefaults(), db: db, rdb: rdb, log: log, m: m,
		handlers: DefaultHandlers(), claimCursor: "0-0"}, nil
}

// Name is the consumer's name in the group.
func (c *Consumer) Name() string { return c.cfg.Consumer }

// ConsumeOnce reclaims idle messages when due, then reads and processes
// one batch of new ones, waiting up to Block. It returns how many messages
// it handled (processed, skipped as duplicates or dead-lettered).
func (c *Consumer) ConsumeOnce(ctx context.Context) (int, error) {
	if !c.groupReady {
		if err := ensureGroup(ctx, c.rdb, c.cfg.Stream, c.cfg.Group); err != nil {
			return 0, err
		}
		c.groupReady = true
	}
	n := 0
	if now := time.Now(); !now.Before(c.nextClaim) {
		k, err := c.reclaim(ctx)
		n += k
		if err != nil {
			return n, c.noteGroupLoss(err)
		}
		c.nextClaim = now.Add(c.claimEvery())
		if c.claimCursor != "0-0" {
			c.nextClaim = now // more of the pending list to scan: go on next round
		}
	}
	entries, err := readNew(ctx, c.rdb, c.cfg)
	if err != nil {
		return n, c.noteGroupLoss(err)
	}
	if len(entries) == 0 {
		return n, nil
	}
	if c.afterRead != nil && !c.afterRead(entries) {
		return n, errStopped
	}
	for _, e := range entries {
		if ctx.Err() != nil {
			// Shutting down: the rest stay pending and are reclaimed by
			// another worker (or by this one when it restarts).
			break
		}
		c.process(ctx, e, 1)
		n++
	}
	return n, nil
}

// claimEvery is how often the pending list is scanned: often enough that a
// message waits little more than ClaimTimeout, rarely enough to stay cheap.
func (c *Consumer) claimEvery() time.Duration {
	return min(max(c.cfg.ClaimTimeout/2, 10*time.Millisecond), 5*time.Second)
}

// noteGroupLoss makes the next round recreate the group after Redis lost
// it; the sweeper relays again what was in the lost stream.
func (c *Consumer) noteGroupLoss(err error) error {
	if isNoGroup(err) {
		c.groupReady = false
		c.claimCursor = "0-0"
		c.log.Warn("pipeline: consumer group missing (Redis restarted?); recreating it",
			zap.String("stream", c.cfg.Stream), zap.String("group", c.cfg.Group))
		return redisErr("consumer group lost", err)
	}
	return err
}

// reclaim takes over one batch of messages idle longer than ClaimTimeout
// and processes them, dead-lettering those delivered too often.
func (c *Consumer) reclaim(ctx context.Context) (int, error) {
	entries, next, err := autoclaim(ctx, c.rdb, c.cfg, c.claimCursor)
	if err != nil {
		return 0, err
	}
	c.claimCursor = next
	if len(entries) == 0 {
		return 0, nil
	}
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.ID
	}
	counts, err := deliveryCounts(ctx, c.rdb, c.cfg, ids)
	if err != nil {
		return 0, err
	}
	c.m.Reclaimed.Add(len(entries))
	if c.afterRead != nil && !c.afterRead(entries) {
		return 0, errStopped
	}
	n := 0
	for _, e := range entries {
		if ctx.Err() != nil {
			break
		}
		d, ok := counts[e.ID]
		if !ok {
			continue // acknowledged by someone else meanwhile
		}
		c.process(ctx, e, d)
		n++
	}
	return n, nil
}

// process handles one delivery. Its database work runs on a context that
// outlives shutdown by at most ProcessTimeout, so a SIGTERM does not
// abandon a half-done message.
func (c *Consumer) process(parent context.Context, e rueidis.XRangeEntry, deliveries int64) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), c.cfg.ProcessTimeout)
	defer cancel()
	msg, err := ParseEntry(e.ID, e.FieldValues)
	if err != nil {
		c.deadLetter(ctx, msg, e.FieldValues, err.Error(), deliveries)
		return
	}
	if deliveries > int64(c.cfg.MaxDeliveries) {
		c.deadLetter(ctx, msg, e.FieldValues, c.giveUpReason(ctx, msg, deliveries), deliveries)
		return
	}
	dup, err := c.safeApply(ctx, msg)
	switch {
	case err == nil:
		if err := ack(ctx, c.rdb, c.cfg, e.ID); err != nil {
			// The effect is committed; the entry is redelivered later
			// and found processed.
			c.log.Warn("pipeline: ack failed after commit", zap.String("id", e.ID), zap.Error(err))
		}
		if dup {
			c.m.Duplicates.Inc()
		} else {
			c.m.Processed.Inc()
		}
		c.m.ProcessSeconds.UpdateDuration(start)
	case permanent(err):
		c.deadLetter(ctx, msg, e.FieldValues, err.Error(), deliveries)
	default:
		c.m.Retried.Inc()
		c.recordFailure(ctx, msg, err)
		c.log.Warn("pipeline: processing failed; the message will be retried",
			zap.String("id", e.ID), zap.Int64("outbox_id", msg.OutboxID),
			zap.Int64("deliveries", deliveries), zap.Error(err))
	}
}

// safeApply turns a panicking handler into a retryable failure, so one
// poison message ends in the dead-letter table instead of a crash loop.
func (c *Consumer) safeApply(ctx context.Context, msg Message) (dup bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("pipeline: handler panicked", zap.Int64("outbox_id", msg.OutboxID),
				zap.Any("panic", v), zap.ByteString("stack", debug.Stack()))
			dup, err = false, fmt.Errorf("pipeline: handler for %q panicked: %v", msg.Topic, v)
		}
	}()
	return c.apply(ctx, msg)
}

// apply runs the topic's handler and records the message as processed in
// one transaction. dup reports a message processed before.
func (c *Consumer) apply(ctx context.Context, msg Message) (dup bool, err error) {
	h, ok := c.handlers[msg.Topic]
	if !ok {
		return false, fmt.Errorf("%w: %q", ErrUnknownTopic, msg.Topic)
	}
	tx, err := c.db.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("pipeline: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// Inserting the record first serialises concurrent duplicates: the
	// second waits on the unique index, then finds the row and stops.
	tag, err := tx.Exec(ctx, `INSERT INTO pipeline_processed (outbox_id, stream_id, consumer, outcome)
		VALUES ($1, $2, $3, 'done') ON CONFLICT (outbox_id) DO NOTHING`, msg.OutboxID, msg.StreamID, c.cfg.Consumer)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23503" {
			return false, fmt.Errorf("%w: outbox row %d does not exist", ErrBadMessage, msg.OutboxID)
		}
		return false, fmt.Errorf("pipeline: record processed: %w", err)
	}
	if tag.RowsAffected() == 0 {
		// Processed before: only drop leftover bookkeeping, in this
		// transaction (a second pool connection here could exhaust the pool).
		if err := c.forget(ctx, tx, msg.OutboxID); err != nil {
			return true, err
		}
		if err := tx.Commit(ctx); err != nil {
			return true, fmt.Errorf("pipeline: commit: %w", err)
		}
		return true, nil
	}
	skipped, err := h(ctx, tx, msg)
	if err != nil {
		return false, err
	}
	if skipped {
		if _, err := tx.Exec(ctx, `UPDATE pipeline_processed SET outcome = 'skipped' WHERE outbox_id = $1`, msg.OutboxID); err != nil {
			return false, fmt.Errorf("pipeline: record skipped: %w", err)
		}
	}
	if c.beforeCommit != nil {
		if err := c.beforeCommit(msg); err != nil {
			return false, err
		}
	}
	if err := c.forget(ctx, tx, msg.OutboxID); err != nil {
		return false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("pipeline: commit: %w", err)
	}
	return false, nil
}

// execer is what pgxpool.Pool and pgx.Tx share.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// forget drops the bookkeeping of a finished message.
func (c *Consumer) forget(ctx context.Context, db execer, outboxID int64) error {
	if _, err := db.Exec(ctx, `DELETE FROM pipeline_inflight WHERE outbox_id = $1`, outboxID); err != nil {
		return fmt.Errorf("pipeline: forget in-flight: %w", err)
	}
	if _, err := db.Exec(ctx, `DELETE FROM pipeline_failures WHERE outbox_id = $1`, outboxID); err != nil {
		return fmt.Errorf("pipeline: forget failures: %w", err)
	}
	return nil
}

// recordFailure keeps the last error so the dead letter can say why.
func (c *Consumer) recordFailure(ctx context.Context, msg Message, cause error) {
	_, err := c.db.Exec(ctx, `INSERT INTO pipeline_failures (outbox_id, last_error) VALUES ($1, $2)
		ON CONFLICT (outbox_id) DO UPDATE SET attempts = pipeline_failures.attempts + 1,
		last_error = excluded.last_error, updated_at = now()`, msg.OutboxID, clipReason(cause.Error()))
	if err != nil {
		c.log.Debug("pipeline: could not record the failure", zap.Int64("outbox_id", msg.OutboxID), zap.Error(err))
	}
}

// giveUpReason is the last recorded error, or a plain count when the
// worker died before it could record one (a message that crashes workers).
func (c *Consumer) giveUpReason(ctx context.Context, msg Message, deliveries int64) string {
	var last string
	err := c.db.QueryRow(ctx, `SELECT last_error FROM pipeline_failures WHERE outbox_id = $1`, msg.OutboxID).Scan(&last)
	if err == nil && last != "" {
		return fmt.Sprintf("delivered %d times (max %d); last error: %s", deliveries, c.cfg.MaxDeliveries, last)
	}
	return fmt.Sprintf("delivered %d times (max %d) without being acknowledged", deliveries, c.cfg.MaxDeliveries)
}

// Run consumes until ctx is done, backing off (capped) while Redis or
// PostgreSQL fail. It returns nil on shutdown.
func (c *Consumer) Run(ctx context.Context) (err error) {
	defer recoverLog(c.log, "consumer", &err)
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		_, err = c.ConsumeOnce(ctx)
		if errors.Is(err, errStopped) {
			return err
		}
		if err == nil || ctx.Err() != nil {
			backoff = 0
			continue
		}
		backoff = min(max(2*backoff, 50*time.Millisecond), 5*time.Second)
		c.log.Warn("pipeline: consumer round failed", zap.Error(err), zap.Duration("retry_in", backoff))
		if !sleep(ctx, backoff) {
			break
		}
	}
	return nil
}

// recoverLog keeps a panic in a background loop from killing the worker
// silently: it is logged with its stack and returned as the loop's error,
// so the process exits non-zero and its supervisor restarts it.
func recoverLog(log *zap.Logger, what string, errp *error) {
	if v := recover(); v != nil {
		log.Error("pipeline: panic in "+what, zap.Any("panic", v), zap.ByteString("stack", debug.Stack()))
		*errp = fmt.Errorf("pipeline: %s panicked: %v", what, v)
	}
}
