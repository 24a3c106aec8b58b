// Package cache is the edge's shared HTTP cache (RFC 9111) in front of the
// origins: entries live in Redis and are read through rueidis with
// server-assisted client-side caching in broadcast mode, so a hit is answered
// from this process's memory (a decoded, byte-bounded table) and every edge
// drops an entry, or notices a bumped invalidation tag, as soon as Redis
// pushes the change.
//
// The edge server calls Cache.ServeSplit (Serve with one fetch for both
// uses) for every request with a fetch function that forwards through the
// balancer and notes the origin for its access log, and a second one, which
// notes nothing, for background revalidations that outlive the request; it
// answers from memory when it may,
// coalesces concurrent misses into one fetch, stores what a shared cache may
// store, revalidates, serves stale content where RFC 5861 allows it and, for
// Config.StaleOnError, when no origin can be reached (RFC 9111 section
// 4.2.4), and
// answers unsafe methods by invalidating what they touched. A successful
// write's answer carries a short-lived read-your-writes token (cookie
// novashop_rv, header Novashop-RV); any edge that gets it back checks the
// entry against Redis before serving it, so the writer reads its write
// through every edge. Cache.Purge backs the admin purge endpoint.
//
// This package must never store or serve a personal response (Set-Cookie,
// private, no-store, or an authenticated request without public/s-maxage),
// never serve an entry whose recorded tag versions are stale or unreadable as
// fresh, never let a Redis outage fail or slow a request beyond
// Config.RedisTimeout (it passes traffic straight through instead), never
// forward Cache-Tag or Cache-Invalidate to clients, and never let the
// read-your-writes token reach a cache key, a stored entry or the origin.
package cache
