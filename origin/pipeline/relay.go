package pipeline

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"
	"go.uber.org/zap"
)

// Relay moves outbox rows to the stream. Several relays may run at once
// (one per worker process): each batch locks its rows with FOR NO KEY UPDATE SKIP
// LOCKED, so two relays never send the same row in the same round, and a
// row is marked sent only in the transaction that follows a successful
// XADD. A crash between XADD and commit sends the row again later; the
// consumer recognises the duplicate by its outbox id.
type Relay struct {
	cfg Config
	db  *pgxpool.Pool
	rdb rueidis.Client
	log *zap.Logger
	m   *Metrics
}

// NewRelay checks cfg and makes a Relay. m and log may be nil.
func NewRelay(cfg Config, db *pgxpool.Pool, rdb rueidis.Client, log *zap.Logger, m *Metrics) (*Relay, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	if m == nil {
		m = NewMetrics()
	}
	return &Relay{cfg: cfg.withDefaults(), db: db, rdb: rdb, log: log, m: m}, nil
}

type outboxRow struct {
	id      int64
	topic   string
	payload string
}

// RelayOnce sends one batch of unsent outbox rows and reports how many it
// marked sent. Rows whose XADD failed stay unsent for the next round.
func (r *Relay) RelayOnce(ctx context.Context) (int, error) {
	tx, err := r.db.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("pipeline: relay: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	rows, err := tx.Query(ctx, `SELECT id, topic, payload::text FROM outbox
		WHERE sent_at IS NULL ORDER BY id LIMIT $1 FOR NO KEY UPDATE SKIP LOCKED`, r.cfg.BatchSize)
	if err != nil {
		return 0, fmt.Errorf("pipeline: relay: select: %w", err)
	}
	batch, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (outboxRow, error) {
		var o outboxRow
		return o, row.Scan(&o.id, &o.topic, &o.payload)
	})
	if err != nil {
		return 0, fmt.Errorf("pipeline: relay: select: %w", err)
	}
	if len(batch) == 0 {
		return 0, nil
	}
	ids, streamIDs, sendErr := r.send(ctx, batch)
	if len(ids) == 0 {
		return 0, sendErr
	}
	if _, err := tx.Exec(ctx, `UPDATE outbox SET sent_at = now() WHERE id = ANY($1)`, ids); err != nil {
		return 0, fmt.Errorf("pipeline: relay: mark sent: %w", err)
	}
	if err := recordInflight(ctx, tx, ids, streamIDs); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("pipeline: relay: commit: %w", err)
	}
	r.m.Relayed.Add(len(ids))
	return len(ids), sendErr
}

// send XADDs the batch in one pipeline and returns the outbox ids that made
// it with their stream ids, plus the first error.
func (r *Relay) send(ctx context.Context, batch []outboxRow) ([]int64, []string, error) {
	cmds := make(rueidis.Commands, len(batch))
	for i, o := range batch {
		m := Message{OutboxID: o.id, Topic: o.topic, Payload: []byte(o.payload)}
		cmds[i] = xadd(r.rdb, r.cfg.Stream, r.cfg.MaxLen, m.Fields())
	}
	ids := make([]int64, 0, len(batch))
	streamIDs := make([]string, 0, len(batch))
	var errs []error
	for i, res := range r.rdb.DoMulti(ctx, cmds...) {
		sid, err := res.ToString()
		if err != nil {
			errs = append(errs, redisErr("XADD", err))
			continue
		}
		ids = append(ids, batch[i].id)
		streamIDs = append(streamIDs, sid)
	}
	return ids, streamIDs, errJoin(errs)
}

// recordInflight notes relayed rows so the sweeper can find any whose entry
// Redis loses before a worker processed it.
func recordInflight(ctx context.Context, tx pgx.Tx, ids []int64, streamIDs []string) error {
	_, err := tx.Exec(ctx, `INSERT INTO pipeline_inflight (outbox_id, stream_id)
		SELECT * FROM unnest($1::bigint[], $2::text[])
		ON CONFLICT (outbox_id) DO UPDATE
		SET stream_id = excluded.stream_id, relayed_at = now(), relays = pipeline_inflight.relays + 1`,
		ids, streamIDs)
	if err != nil {
		return fmt.Errorf("pipeline: relay: record in-flight: %w", err)
	}
	return nil
}

// SweepOnce relays again the in-flight rows older than RedeliverAfter whose
// stream entry no longer exists (Redis restarted without persistence, or
// MAXLEN trimmed an unprocessed entry), and forgets rows that were processed
// meanwhile. Entries that still exist are left alone: they are either
// waiting in the group or pending, and XAUTOCLAIM deals with those.
func (r *Relay) SweepOnce(ctx context.Context) (int, error) {
	// A consumer may have committed before the relay recorded the row as in
	// flight; such leftovers are removed here.
	if _, err := r.db.Exec(ctx, `DELETE FROM pipeline_inflight i USING pipeline_processed p
		WHERE p.outbox_id = i.outbox_id`); err != nil {
		return 0, fmt.Errorf("pipeline: sweep: %w", err)
	}
	tx, err := r.db.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("pipeline: sweep: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	rows, err := tx.Query(ctx, `SELECT i.outbox_id, i.stream_id, o.topic, o.payload::text
		FROM pipeline_inflight i JOIN outbox o ON o.id = i.outbox_id
		WHERE i.relayed_at < now() - $1 * interval '1 millisecond'
		ORDER BY i.relayed_at LIMIT $2 FOR UPDATE OF i SKIP LOCKED`,
		r.cfg.RedeliverAfter.Milliseconds(), r.cfg.BatchSize)
	if err != nil {
		return 0, fmt.Errorf("pipeline: sweep: select: %w", err)
	}
	type stale struct {
		row      outboxRow
		streamID string
	}
	cands, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (stale, error) {
		var s stale
		return s, row.Scan(&s.row.id, &s.streamID, &s.row.topic, &s.row.payload)
	})
	if err != nil {
		return 0, fmt.Errorf("pipeline: sweep: select: %w", err)
	}
	if len(cands) == 0 {
		return 0, nil
	}
	sids := make([]string, len(cands))
	for i, c := range cands {
		sids[i] = c.streamID
	}
	exist, err := entriesExist(ctx, r.rdb, r.cfg.Stream, sids)
	if err != nil {
		return 0, err
	}
	var lost []outboxRow
	var kept []int64
	for i, c := range cands {
		if exist[i] {
			kept = append(kept, c.row.id)
		} else {
			lost = append(lost, c.row)
		}
	}
	// Entries still in the stream are only slow; touching relayed_at keeps
	// the sweeper from checking them again on every round.
	if len(kept) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE pipeline_inflight SET relayed_at = now() WHERE outbox_id = ANY($1)`, kept); err != nil {
			return 0, fmt.Errorf("pipeline: sweep: touch: %w", err)
		}
	}
	var n int
	var sendErr error
	if len(lost) > 0 {
		var ids []int64
		var newSIDs []string
		ids, newSIDs, sendErr = r.send(ctx, lost)
		if len(ids) > 0 {
			if err := recordInflight(ctx, tx, ids, newSIDs); err != nil {
				return 0, err
			}
		}
		n = len(ids)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("pipeline: sweep: commit: %w", err)
	}
	if n > 0 {
		r.m.Redelivered.Add(n)
		r.log.Warn("pipeline: relayed again entries missing from the stream",
			zap.Int("count", n), zap.String("stream", r.cfg.Stream))
	}
	return n, sendErr
}

// ListenChannel is the PostgreSQL channel that the outbox trigger
// (migration 00300_outbox_notify.sql) notifies when a row becomes unsent.
const ListenChannel = "novashop_outbox"

// Run relays until ctx is done: immediately again after a full batch or a
// notification on ListenChannel, after ListenPollInterval otherwise while it
// listens (PollInterval while its notification connection is down), and with
// a capped backoff while Redis or PostgreSQL fail. It sweeps every
// RedeliverAfter/2.
func (r *Relay) Run(ctx context.Context) (err error) {
	defer recoverLog(r.log, "relay", &err)
	wake := make(chan struct{}, 1)
	var listening atomic.Bool
	lctx, stopListen := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.listen(lctx, wake, &listening) }()
	defer func() { stopListen(); <-done }()

	sweepEvery := max(r.cfg.RedeliverAfter/2, 10*time.Millisecond)
	nextSweep := time.Now().Add(sweepEvery)
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		n, err := r.round(ctx, r.RelayOnce)
		if err == nil && !time.Now().Before(nextSweep) {
			_, err = r.round(ctx, r.SweepOnce)
			nextSweep = time.Now().Add(sweepEvery)
		}
		wait := r.cfg.PollInterval
		if listening.Load() {
			wait = r.cfg.ListenPollInterval
		}
		switch {
		case err != nil && ctx.Err() == nil:
			r.m.RelayErrors.Inc()
			backoff = min(max(2*backoff, r.cfg.PollInterval), 5*time.Second)
			wait = backoff
			r.log.Warn("pipeline: relay failed; outbox rows stay unsent and are retried",
				zap.Error(err), zap.Duration("retry_in", wait))
		case n >= r.cfg.BatchSize:
			backoff = 0
			continue
		default:
			backoff = 0
			// The sweep keeps its own schedule however long the wait.
			wait = max(min(wait, time.Until(nextSweep)), 0)
		}
		if !sleepOrWake(ctx, wait, wake) {
			return nil
		}
	}
	return nil
}

// listen holds a connection of its own (not one of the pool's, which it
// would keep forever) LISTENing on ListenChannel and turns every
// notification into a wake-up; it reconnects with a capped backoff, and
// while it is not listening the relay falls back to PollInterval.
func (r *Relay) listen(ctx context.Context, wake chan<- struct{}, listening *atomic.Bool) {
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		err := r.listenOnce(ctx, wake, listening)
		listening.Store(false)
		if ctx.Err() != nil {
			return
		}
		backoff = min(max(2*backoff, r.cfg.PollInterval), 5*time.Second)
		r.log.Warn("pipeline: cannot LISTEN for new outbox rows; polling every poll interval meanwhile",
			zap.Error(err), zap.Duration("poll_interval", r.cfg.PollInterval), zap.Duration("retry_in", backoff))
		if !sleep(ctx, backoff) {
			return
		}
	}
}

func (r *Relay) listenOnce(ctx context.Context, wake chan<- struct{}, listening *atomic.Bool) error {
	cctx, cancel := context.WithTimeout(ctx, r.cfg.ProcessTimeout)
	conn, err := pgx.ConnectConfig(cctx, r.db.Config().ConnConfig.Copy())
	if err == nil {
		_, err = conn.Exec(cctx, "LISTEN "+ListenChannel)
	}
	cancel()
	if conn != nil {
		defer conn.Close(context.WithoutCancel(ctx))
	}
	if err != nil {
		return fmt.Errorf("pipeline: listen: %w", err)
	}
	listening.Store(true)
	// Rows committed while nobody listened sent no notification we saw.
	signal(wake)
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return fmt.Errorf("pipeline: listen: %w", err)
		}
		signal(wake)
	}
}

// signal leaves one wake-up in ch unless one is already waiting.
func signal(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// sleepOrWake waits d, or until a wake-up arrives or ctx is done; it
// reports whether ctx is still live.
func sleepOrWake(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-wake:
		return true
	case <-t.C:
		return true
	}
}

// round runs one batch on a context that shutdown does not cancel (bounded
// by ProcessTimeout), so SIGTERM never abandons a batch between XADD and
// the commit that marks it sent.
func (r *Relay) round(ctx context.Context, batch func(context.Context) (int, error)) (int, error) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.ProcessTimeout)
	defer cancel()
	return batch(bctx)
}

// sleep waits d or until ctx is done, reporting whether it slept fully.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
