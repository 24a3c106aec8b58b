// Package balancer chooses which origin host takes a request.
//
// Every policy implements Policy: Pick reads an immutable upstream.Set (the hosts that
// may take traffic, published by upstream.Pool) plus, for hash, the request, and
// returns one host. Policies keep their own state in atomics so concurrent picks take
// no lock, and structures derived from a Set (the smooth weighted round-robin
// schedule, the hash ring) are rebuilt only when the Set pointer changes, so a pick
// allocates nothing.
//
// Randomness is injected (Options.Rand) so tests are deterministic.
//
// A policy must never write host state (health owns it), never block, never retain the
// fasthttp.RequestCtx after Pick returns, and never panic on an empty Set: it returns nil
// and the server answers 503.
package balancer
