-- +goose Up
-- The asynchronous order pipeline (origin/pipeline). The outbox itself is in
-- 00001; these tables let the worker process each outbox row exactly once in
-- effect although Redis delivers it at least once.

-- One row per outbox row whose processing finished, written in the same
-- transaction as its effect (the order confirmation), so a redelivered
-- message finds its row and changes nothing.
CREATE TABLE pipeline_processed (
    outbox_id    bigint      PRIMARY KEY REFERENCES outbox(id) ON DELETE CASCADE,
    stream_id    text        NOT NULL,
    consumer     text        NOT NULL,
    -- done: the handler's effect committed (order.created: pending ->
    -- confirmed); skipped: nothing to do (the order was no longer pending);
    -- dead-lettered: given up, see pipeline_dead_letters.
    outcome      text        NOT NULL CHECK (outcome IN ('done', 'skipped', 'dead-lettered')),
    processed_at timestamptz NOT NULL DEFAULT now()
);

-- Outbox rows relayed to the stream and not yet processed. The relay inserts
-- in the transaction that marks the outbox row sent; processing deletes. A
-- row whose stream entry vanished (Redis restarted without persistence, or
-- the stream was trimmed) is relayed again, so Redis never holds the only
-- copy of an unprocessed order.
CREATE TABLE pipeline_inflight (
    outbox_id  bigint      PRIMARY KEY REFERENCES outbox(id) ON DELETE CASCADE,
    stream_id  text        NOT NULL,
    relayed_at timestamptz NOT NULL DEFAULT now(),
    relays     integer     NOT NULL DEFAULT 1
);
CREATE INDEX pipeline_inflight_relayed ON pipeline_inflight (relayed_at);

-- The last processing error of a message still being retried; its reason is
-- copied into the dead letter when the retries run out.
CREATE TABLE pipeline_failures (
    outbox_id  bigint      PRIMARY KEY REFERENCES outbox(id) ON DELETE CASCADE,
    attempts   integer     NOT NULL DEFAULT 1,
    last_error text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Messages the worker gave up on, with the reason; listed by
-- `origin worker --dead-letters` and put back by `--requeue ID`.
-- outbox_id is NULL for a stream entry that named no valid outbox row.
CREATE TABLE pipeline_dead_letters (
    id          bigserial   PRIMARY KEY,
    outbox_id   bigint      UNIQUE REFERENCES outbox(id) ON DELETE CASCADE,
    stream_id   text        NOT NULL,
    topic       text        NOT NULL DEFAULT '',
    payload     text        NOT NULL DEFAULT '',
    reason      text        NOT NULL,
    deliveries  integer     NOT NULL DEFAULT 0,
    consumer    text        NOT NULL DEFAULT '',
    failed_at   timestamptz NOT NULL DEFAULT now()
);

-- The notifications the worker would send (e-mail is out of scope); one per
-- order and kind, which the unique constraint enforces even if the
-- idempotency record above were bypassed.
CREATE TABLE notifications (
    id         bigserial   PRIMARY KEY,
    order_id   bigint      NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    user_id    bigint      NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind       text        NOT NULL,
    recipient  text        NOT NULL,
    subject    text        NOT NULL,
    body       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_id, kind)
);
CREATE INDEX notifications_user ON notifications (user_id, created_at DESC);

-- +goose Down
DROP TABLE notifications, pipeline_dead_letters, pipeline_failures,
    pipeline_inflight, pipeline_processed;
