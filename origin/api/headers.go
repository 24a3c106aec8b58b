package api

import (
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/cachekeys"
)

// Cache-Control values (RFC 9111 §5.2.2, RFC 5861 §3).
//
// Catalog reads are the same bytes for every visitor, so shared caches may
// keep them: max-age=0 makes browsers revalidate (a shopper sees a price
// change on the next load), s-maxage=60 lets the edge and nginx serve them
// for a minute — the edge drops them earlier when a write bumps their tags —
// and stale-while-revalidate=30 lets a cache answer at once while it
// refetches in the background. Personal answers must never be stored.
//
// CacheControlEdge goes to the edge alone (cachekeys.HeaderEdgeCacheControl):
// every write bumps the tags of what it changed and the edge stops serving
// those entries within milliseconds, on every edge, so the edge may keep a
// catalog page for an hour instead of refetching it every minute. The hour
// only bounds the damage of a tag bump that never happened.
const (
	CacheControlPublic  = "public, max-age=0, s-maxage=60, stale-while-revalidate=30"
	CacheControlEdge    = "public, max-age=3600, stale-while-revalidate=60"
	CacheControlPrivate = "private, no-store"
)

// Public marks a response as a shared catalog read depending on tags,
// with the hour-long edge lifetime. Handlers call Env.Public, which leaves
// that out when catalog reads come from a replica.
func Public(ctx *fasthttp.RequestCtx, tags ...string) {
	shared(ctx, tags)
	ctx.Response.Header.Set(cachekeys.HeaderEdgeCacheControl, CacheControlEdge)
}

// shared sets what every shared catalog read carries.
func shared(ctx *fasthttp.RequestCtx, tags []string) {
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, CacheControlPublic)
	ctx.Response.Header.Set(cachekeys.HeaderCacheTag, cachekeys.JoinTags(tags...))
}

// Public marks a catalog read as shared, depending on tags. The edge gets
// its hour (CacheControlEdge) only when the read came from the primary:
// with a replica, the edge's refetch right after a tag bump may read the
// replica before it replayed the write and store that old answer under the
// new tag version, and then it must expire with s-maxage (60 s), not after
// an hour (see docs/origin.md, "Read replica").
func (e *Env) Public(ctx *fasthttp.RequestCtx, tags ...string) {
	if e.Replica != nil {
		shared(ctx, tags)
		return
	}
	Public(ctx, tags...)
}

// Private marks a response as personal.
func Private(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, CacheControlPrivate)
}

// Invalidated stamps a write's answer with the tags it bumped, so the edge
// that relayed it can bump them too.
func Invalidated(ctx *fasthttp.RequestCtx, tags []string) {
	if len(tags) == 0 {
		return
	}
	ctx.Response.Header.Set(cachekeys.HeaderInvalidate, strings.Join(tags, ","))
}
