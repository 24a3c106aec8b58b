package cache

import (
	"bytes"
	"testing"

	"github.com/novashop/edge/internal/testenv"
	"github.com/valyala/fasthttp"
)

// tryLocal runs TryServeLocal on a fresh request context.
func tryLocal(c *Cache, method, uri string, fields ...string) (bool, *fasthttp.Response) {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(uri)
	ctx.Request.Header.SetHost("shop.test")
	for i := 0; i+1 < len(fields); i += 2 {
		ctx.Request.Header.Add(fields[i], fields[i+1])
	}
	ok := c.TryServeLocal(&ctx)
	out := &fasthttp.Response{}
	ctx.Response.CopyTo(out)
	return ok, out
}

// TryServeLocal answers exactly the fresh local hits Serve would answer, with the
// same bytes, and declines (writing nothing) whatever needs Redis, the origin or
// a revalidation.
func TestTryServeLocal(t *testing.T) {
	c := newTestCache(t, testenv.Redis(t), randName(t), nil)
	o := newOrigin(static(200, "product", "Cache-Control", "public, s-maxage=60", "Cache-Tag", "product:1"))
	if ok, r := tryLocal(c, "GET", "/p/1"); ok || r.StatusCode() != 200 || len(r.Body()) != 0 {
		t.Fatalf("cold: served=%v %d %q", ok, r.StatusCode(), r.Body())
	}
	do(c, o, "GET", "/p/1") // miss, stored
	want := do(c, o, "GET", "/p/1")
	if !isHit(want) {
		t.Fatalf("second Serve is not a hit: %s", cacheStatus(want))
	}
	tests := []struct {
		name   string
		method string
		fields []string
		served bool
	}{
		{"fresh GET", "GET", nil, true},
		{"fresh HEAD", "HEAD", nil, true},
		{"no-cache asks for revalidation", "GET", []string{"Cache-Control", "no-cache"}, false},
		{"max-age=0 asks for revalidation", "GET", []string{"Cache-Control", "max-age=0"}, false},
		{"read-your-writes token goes to Redis", "GET", []string{HeaderReadYourWrites, "99999999999999"}, false},
		{"POST is never local", "POST", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, r := tryLocal(c, tt.method, "/p/1", tt.fields...)
			if ok != tt.served {
				t.Fatalf("served = %v, want %v", ok, tt.served)
			}
			if !ok {
				if len(r.Body()) != 0 || len(r.Header.Peek(HeaderCacheStatus)) != 0 {
					t.Fatal("a declined request must get nothing written")
				}
				return
			}
			if tt.method == "GET" && !bytes.Equal(r.Body(), want.Body()) {
				t.Fatalf("body %q, want %q", r.Body(), want.Body())
			}
			if cacheStatus(r) != cacheStatus(want) {
				t.Fatalf("Cache-Status %q, want %q", cacheStatus(r), cacheStatus(want))
			}
		})
	}
	// A purge by tag makes the local copy unservable at once.
	if _, err := c.Purge(t.Context(), nil, []string{"product:1"}, "", false); err != nil {
		t.Fatal(err)
	}
	if ok, _ := tryLocal(c, "GET", "/p/1"); ok {
		t.Fatal("served a purged entry locally")
	}
	if o.calls.Load() != 1 {
		t.Fatalf("origin saw %d requests, want 1", o.calls.Load())
	}
}
