-- +goose Up
-- Wake the order relay (origin/pipeline) when an outbox row becomes unsent:
-- a new order's row, or one an operator requeued (sent_at back to NULL).
-- The relay LISTENs on novashop_outbox instead of polling the table ten
-- times a second; NOTIFY is delivered at commit, so the row is visible when
-- the relay looks, and PostgreSQL folds identical notifications of one
-- transaction into one. The relay's own UPDATE (sent_at = now()) does not
-- fire it.
-- +goose StatementBegin
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('novashop_outbox', '');
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER outbox_notify
    AFTER INSERT OR UPDATE OF sent_at ON outbox
    FOR EACH ROW WHEN (NEW.sent_at IS NULL)
    EXECUTE FUNCTION outbox_notify();

-- +goose Down
DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION outbox_notify();
