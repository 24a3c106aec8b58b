-- +goose Up
-- The refresh-token sweeper (users.SweepExpired) deletes by expiry; without
-- this index each sweep would scan the whole table.
CREATE INDEX IF NOT EXISTS refresh_tokens_expires ON refresh_tokens (expires_at);

-- +goose Down
DROP INDEX IF EXISTS refresh_tokens_expires;
