package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Handler applies one message inside the transaction that also records it
// as processed. It returns skipped when there was nothing to do (the effect
// is already there), and an error to roll everything back: wrap
// ErrBadPayload or ErrOrderNotFound when no retry can help.
type Handler func(ctx context.Context, tx pgx.Tx, m Message) (skipped bool, err error)

// NotificationOrderConfirmed is notifications.kind for the confirmation.
const NotificationOrderConfirmed = "order_confirmed"

// DefaultHandlers maps each outbox topic to its handler.
func DefaultHandlers() map[string]Handler {
	return map[string]Handler{TopicOrderCreated: ConfirmOrder}
}

// ConfirmOrder moves the order from pending to confirmed and records the
// confirmation notification. An order that is no longer pending (already
// confirmed, or cancelled) is left alone: the status only ever moves
// forward, so a late duplicate cannot undo a cancellation.
func ConfirmOrder(ctx context.Context, tx pgx.Tx, m Message) (bool, error) {
	p, err := ParseOrderCreated(m.Payload)
	if err != nil {
		return false, err
	}
	var userID int64
	err = tx.QueryRow(ctx, `UPDATE orders SET status = 'confirmed', updated_at = now()
		WHERE id = $1 AND status = 'pending' RETURNING user_id`, p.OrderID).Scan(&userID)
	if errors.Is(err, pgx.ErrNoRows) {
		var status string
		err = tx.QueryRow(ctx, `SELECT status FROM orders WHERE id = $1`, p.OrderID).Scan(&status)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, fmt.Errorf("%w: order %d (outbox %d)", ErrOrderNotFound, p.OrderID, m.OutboxID)
		}
		if err != nil {
			return false, fmt.Errorf("pipeline: confirm order %d: %w", p.OrderID, err)
		}
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("pipeline: confirm order %d: %w", p.OrderID, err)
	}
	// The unique (order_id, kind) constraint is a second guard: even a
	// processing path that skipped the idempotency record could not notify
	// twice.
	_, err = tx.Exec(ctx, `INSERT INTO notifications (order_id, user_id, kind, recipient, subject, body)
		SELECT o.id, o.user_id, $2, u.email,
		       'Your Novashop order #' || o.id || ' is confirmed',
		       'Hello ' || COALESCE(NULLIF(u.first_name, ''), u.username) ||
		       ', your order #' || o.id || ' (total ' || o.total || ') is confirmed.'
		FROM orders o JOIN users u ON u.id = o.user_id
		WHERE o.id = $1
		ON CONFLICT (order_id, kind) DO NOTHING`, p.OrderID, NotificationOrderConfirmed)
	if err != nil {
		return false, fmt.Errorf("pipeline: notify order %d: %w", p.OrderID, err)
	}
	return false, nil
}
