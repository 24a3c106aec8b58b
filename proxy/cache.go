package proxy

import (
	"context"
	"io"

	"github.com/novashop/edge/proxy/cache"
	"github.com/valyala/fasthttp"
)

// Cache is the edge's HTTP cache; nil means no caching.
//
// Without a cache the edge sends no Cache-Status header (like nginx without
// proxy_cache) and still removes Cache-Tag from every response.
type Cache interface {
	// Serve answers ctx from the cache when it can; otherwise it calls fetch (which forwards the
	// request through the balancer with retries and fills resp), stores the answer if allowed,
	// and writes the answer into ctx.Response. It also invalidates on unsafe methods.
	//
	// When fetch returns an error it has already filled resp with the edge's JSON
	// error answer (502, 503 or 504), so Serve may serve a stale entry instead or copy
	// resp as is. The request fetch receives has had its hop-by-hop headers removed
	// and X-Forwarded-*, X-Request-ID and (after a verified token) X-User-ID /
	// X-User-Role set. Serve must not keep ctx, req or resp after it returns.
	Serve(ctx *fasthttp.RequestCtx, fetch func(req *fasthttp.Request, resp *fasthttp.Response) error)
	// Purge removes entries by exact key, by tag or by key prefix; soft marks them
	// stale instead of deleting them. It returns how many entries it purged.
	Purge(ctx context.Context, keys, tags []string, prefix string, soft bool) (int, error)
	// Close releases the cache's connections; Server.Close calls it.
	Close()
}

// SplitServer is a Cache that takes the fetch for the request in hand apart
// from the one a background revalidation keeps (proxy/cache's ServeSplit):
// fetch runs only before ServeSplit returns, so the edge's fetch may note the
// origin and tries in the pooled exchange for the access log; background may
// run later and notes nothing. A Cache without it is called through Serve and
// its misses log no upstream.
type SplitServer interface {
	ServeSplit(ctx *fasthttp.RequestCtx, fetch, background func(req *fasthttp.Request, resp *fasthttp.Response) error)
}

// PrometheusWriter is implemented by a Cache that has its own series
// (proxy/cache's edge_cache_*); the admin /metrics answer appends them after the
// edge's own, so one scrape sees both.
type PrometheusWriter interface {
	WritePrometheus(w io.Writer)
}

// Interface guards: the real cache is what cmd/edge passes as Options.Cache.
var (
	_ Cache            = (*cache.Cache)(nil)
	_ PrometheusWriter = (*cache.Cache)(nil)
	_ SplitServer      = (*cache.Cache)(nil)
)
