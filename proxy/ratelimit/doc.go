// Package ratelimit holds the edge's token-bucket rate limiter: one bucket per
// key (a client IP or a verified user id), kept in sharded maps so that two
// cores do not fight over one lock, and bounded to MaxKeys buckets so that a
// flood of distinct keys costs a fixed amount of memory.
//
// The clock is passed in (the now argument of Allow) so that tests are
// deterministic and the hot path never reads the time twice.
//
// This package must never block on I/O, start goroutines, read the clock
// itself, or allocate when it sees a key it already tracks. It knows nothing
// of HTTP: turning a refusal into a 429 with Retry-After is the server's job.
package ratelimit
