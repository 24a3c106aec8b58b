// Package pipeline is the asynchronous order pipeline behind `origin worker`:
// a relay that moves transactional-outbox rows to a Redis Stream, and a
// consumer-group worker that confirms each order and records the
// notification it would send.
//
// Delivery is at least once and processing is idempotent: the effect of a
// message (order pending -> confirmed, one notification) and the record that
// its outbox row was processed commit in one PostgreSQL transaction, and a
// message whose record already exists changes nothing. Messages left pending
// by a dead worker are reclaimed with XAUTOCLAIM; a message delivered more
// than MaxDeliveries times, or one that can never succeed, is moved to the
// dead-letter table and stream with its reason. PostgreSQL, not Redis, is the
// source of truth: an outbox row stays unsent until XADD succeeded, and a
// relayed row whose stream entry vanished (Redis restarted without
// persistence) is relayed again.
//
// It must never change an order other than pending -> confirmed, never
// acknowledge a message before its effect committed, and never hold the only
// copy of an order in Redis.
package pipeline
