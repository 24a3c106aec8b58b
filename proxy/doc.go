// Package proxy is the Novashop edge: a fasthttp reverse proxy in front of the shop's
// origins. A request goes accept → request id → per-IP rate limit → JWT check (on the
// routes that need a user) → per-user rate limit → cache (when configured) → balancer
// with safe retries → answer. A second listener serves the admin API, /metrics and
// pprof.
//
// The pieces it wires together live in their own packages: upstream (hosts and pool),
// balancer (policies), health (checks and ejection), config (the YAML file), auth
// (token verification), ratelimit (token buckets); the cache plugs in through the
// Cache interface.
//
// Large bodies stream (stream.go): a request body above limits.stream_request_bytes
// (or chunked) goes to one origin as it arrives, never retried, cut at
// max_body_bytes; a response body above limits.stream_response_bytes (with a
// cache: above the larger of it and cache.max_entry_bytes, and then not stored)
// or chunked goes to the client as the origin sends it, its origin connection
// released when fasthttp's writer has finished with it. Everything smaller is held
// whole, so retries, the cache and the allocation-free hot path are unchanged.
//
// It must never panic on bad input (a recover middleware turns a bug into a JSON 500),
// never keep a fasthttp.RequestCtx or anything taken from it after the handler
// returns, never forward client-sent X-User-ID / X-User-Role, and never retry a
// request that may have reached an origin unless its method is idempotent.
package proxy
