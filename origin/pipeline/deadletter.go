package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// maxReasonLen bounds a stored reason; errors quoting payloads could be long.
const maxReasonLen = 1000

func clipReason(s string) string {
	if len(s) <= maxReasonLen {
		return s
	}
	return s[:maxReasonLen] + "..."
}

// deadLetter gives up on a message: it records the dead letter (and the
// outbox row as processed, so a later duplicate is not retried) in one
// transaction, copies it to the dead-letter stream, and acknowledges it.
// Until the transaction commits the message stays pending, so a dead letter
// is never lost either.
func (c *Consumer) deadLetter(ctx context.Context, msg Message, fields map[string]string, reason string, deliveries int64) {
	reason = clipReason(reason)
	dup, err := c.recordDeadLetter(ctx, msg, fields, reason, deliveries)
	if err != nil {
		c.m.Retried.Inc()
		c.log.Warn("pipeline: could not record a dead letter; it stays pending",
			zap.String("id", msg.StreamID), zap.Error(err))
		return
	}
	if !dup {
		// The table is the durable record; the stream copy is for operators
		// watching Redis, so its failure is only logged.
		cmd := c.rdb.B().Xadd().Key(c.cfg.DeadLetterStream).Id("*").FieldValue().
			FieldValue("stream_id", msg.StreamID).
			FieldValue(FieldOutboxID, strconv.FormatInt(msg.OutboxID, 10)).
			FieldValue(FieldTopic, fields[FieldTopic]).
			FieldValue(FieldPayload, fields[FieldPayload]).
			FieldValue("reason", reason).
			FieldValue("deliveries", strconv.FormatInt(deliveries, 10)).Build()
		if err := c.rdb.Do(ctx, cmd).Error(); err != nil {
			c.log.Warn("pipeline: dead-letter stream copy failed", zap.Error(err))
		}
		c.m.DeadLettered.Inc()
		c.log.Error("pipeline: message dead-lettered", zap.String("id", msg.StreamID),
			zap.Int64("outbox_id", msg.OutboxID), zap.String("reason", reason), zap.Int64("deliveries", deliveries))
	} else {
		c.m.Duplicates.Inc()
	}
	if err := ack(ctx, c.rdb, c.cfg, msg.StreamID); err != nil {
		c.log.Warn("pipeline: ack of a dead letter failed", zap.String("id", msg.StreamID), zap.Error(err))
	}
}

// recordDeadLetter writes the dead letter. dup reports that the outbox row
// was processed already, in which case nothing is written.
func (c *Consumer) recordDeadLetter(ctx context.Context, msg Message, fields map[string]string, reason string, deliveries int64) (dup bool, err error) {
	tx, err := c.db.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("pipeline: dead letter: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var outboxID *int64
	if msg.OutboxID > 0 {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM outbox WHERE id = $1)`, msg.OutboxID).Scan(&exists); err != nil {
			return false, fmt.Errorf("pipeline: dead letter: %w", err)
		}
		if exists {
			outboxID = &msg.OutboxID
			tag, err := tx.Exec(ctx, `INSERT INTO pipeline_processed (outbox_id, stream_id, consumer, outcome)
				VALUES ($1, $2, $3, 'dead-lettered') ON CONFLICT (outbox_id) DO NOTHING`,
				msg.OutboxID, msg.StreamID, c.cfg.Consumer)
			if err != nil {
				return false, fmt.Errorf("pipeline: dead letter: %w", err)
			}
			if tag.RowsAffected() == 0 {
				return true, nil
			}
			if err := c.forget(ctx, tx, msg.OutboxID); err != nil {
				return false, err
			}
		}
	}
	_, err = tx.Exec(ctx, `INSERT INTO pipeline_dead_letters
		(outbox_id, stream_id, topic, payload, reason, deliveries, consumer)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (outbox_id) DO UPDATE SET stream_id = excluded.stream_id, reason = excluded.reason,
		deliveries = excluded.deliveries, consumer = excluded.consumer, failed_at = now()`,
		outboxID, msg.StreamID, clip(fields[FieldTopic]), clipReason(fields[FieldPayload]), reason, deliveries, c.cfg.Consumer)
	if err != nil {
		return false, fmt.Errorf("pipeline: dead letter: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("pipeline: dead letter: commit: %w", err)
	}
	return false, nil
}

// DeadLetter is one message the worker gave up on.
type DeadLetter struct {
	ID         int64     `json:"id"`
	OutboxID   *int64    `json:"outbox_id"`
	StreamID   string    `json:"stream_id"`
	Topic      string    `json:"topic"`
	Payload    string    `json:"payload"`
	Reason     string    `json:"reason"`
	Deliveries int       `json:"deliveries"`
	Consumer   string    `json:"consumer"`
	FailedAt   time.Time `json:"failed_at"`
}

// ListDeadLetters returns up to limit dead letters, newest first.
func ListDeadLetters(ctx context.Context, db *pgxpool.Pool, limit int) ([]DeadLetter, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := db.Query(ctx, `SELECT id, outbox_id, stream_id, topic, payload, reason, deliveries, consumer, failed_at
		FROM pipeline_dead_letters ORDER BY failed_at DESC, id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("pipeline: list dead letters: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeadLetter, error) {
		var d DeadLetter
		return d, r.Scan(&d.ID, &d.OutboxID, &d.StreamID, &d.Topic, &d.Payload, &d.Reason, &d.Deliveries, &d.Consumer, &d.FailedAt)
	})
	if err != nil {
		return nil, fmt.Errorf("pipeline: list dead letters: %w", err)
	}
	return out, nil
}

// Requeue puts a dead letter back: its outbox row is marked unsent and its
// processed record removed, so the relay sends it again once the cause is
// fixed. A dead letter without an outbox row cannot be requeued.
func Requeue(ctx context.Context, db *pgxpool.Pool, id int64) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pipeline: requeue: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var outboxID *int64
	err = tx.QueryRow(ctx, `DELETE FROM pipeline_dead_letters WHERE id = $1 RETURNING outbox_id`, id).Scan(&outboxID)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %d", ErrNotFound, id)
	}
	if err != nil {
		return fmt.Errorf("pipeline: requeue: %w", err)
	}
	if outboxID == nil {
		return fmt.Errorf("%w: dead letter %d names no outbox row, so there is nothing to send again", ErrBadMessage, id)
	}
	for _, q := range []string{
		`DELETE FROM pipeline_processed WHERE outbox_id = $1 AND outcome = 'dead-lettered'`,
		`DELETE FROM pipeline_failures WHERE outbox_id = $1`,
		`UPDATE outbox SET sent_at = NULL WHERE id = $1`,
	} {
		if _, err := tx.Exec(ctx, q, *outboxID); err != nil {
			return fmt.Errorf("pipeline: requeue: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pipeline: requeue: %w", err)
	}
	return nil
}
