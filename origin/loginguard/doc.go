// Package loginguard throttles failed logins per username at the origin:
// after Max failures within Window, further attempts for that username are
// refused (429 with Retry-After) until the window ends, without spending a
// bcrypt comparison on them. It is defence in depth behind the edge's
// per-client rate limit: it slows password guessing against one account
// even when the guesses come from many addresses.
//
// Memory is bounded (MaxKeys usernames, sharded maps, expired entries swept
// as they are met). The package must never touch the database, log a
// password, or block a username that has not failed.
package loginguard
