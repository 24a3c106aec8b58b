package api

import (
	"net/url"
	"strconv"

	"github.com/valyala/fasthttp"
)

// PathID reads a positive integer path parameter; anything else is a 404,
// since no resource has such an id.
func PathID(ctx *fasthttp.RequestCtx, name, what string) (int64, error) {
	s, _ := ctx.UserValue(name).(string)
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, NotFound(what)
	}
	return id, nil
}

// Query copies the query string into url.Values for the domain parsers,
// which stay independent of fasthttp (the storefront reuses them).
func Query(ctx *fasthttp.RequestCtx) url.Values {
	q := url.Values{}
	for k, v := range ctx.QueryArgs().All() {
		q.Add(string(k), string(v))
	}
	return q
}

// Args reads a fasthttp query string through the Get(name) string method
// the domain parsers take (url.Values has it too), without copying the
// whole query into a map as Query does.
type Args struct{ Args *fasthttp.Args }

// Get returns the first value of name, or "".
func (a Args) Get(name string) string { return string(a.Args.Peek(name)) }
