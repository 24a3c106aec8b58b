package proxy

import (
	"net"
	"testing"

	"github.com/novashop/edge/proxy/config"
	"github.com/valyala/fasthttp"
)

// FuzzAdminBodies sends arbitrary JSON bodies to the admin routes that parse them:
// the answer is always 200 or a 4xx JSON error, never a 500 or a panic.
func FuzzAdminBodies(f *testing.F) {
	for _, s := range []string{`{"policy":"hash","hash_key":"cookie:a"}`, `{"keys":["a"],"soft":true}`, `{}`, `[`, `{"prefix":1}`, "null", `{"tags":[null]}`} {
		f.Add(s)
	}
	cfg := config.Default()
	cfg.Upstreams = []config.Upstream{{Name: "o1", URL: "http://127.0.0.1:1", Weight: 1}}
	cfg.Health.Active = false
	s, err := New(cfg, Options{Cache: &fakeCache{}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.Close)
	h := s.adminHandler()
	f.Fuzz(func(t *testing.T, body string) {
		for _, route := range []struct{ method, path string }{{"PUT", "/admin/balancer"}, {"POST", "/admin/purge"}} {
			var ctx fasthttp.RequestCtx
			ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, nil)
			ctx.Request.Header.SetMethod(route.method)
			ctx.Request.SetRequestURI(route.path)
			ctx.Request.SetBodyString(body)
			h(&ctx)
			code := ctx.Response.StatusCode()
			if code != 200 && (code < 400 || code > 499) {
				t.Fatalf("%s %s %q: status %d %s", route.method, route.path, body, code, ctx.Response.Body())
			}
		}
	})
}

// FuzzPublicRequest sends arbitrary methods, targets and headers to the public
// handler of an edge whose only host is drained: every answer is a JSON error or a
// redirect from the edge itself, never a 500 or a panic.
func FuzzPublicRequest(f *testing.F) {
	f.Add("GET", "/api/me/", "Authorization", "Bearer x")
	f.Add("POST", "/cart/add/1/", "Cookie", "novashop_access=abc")
	f.Add("PATCH", "/api/products/1/", "Connection", "X-User-ID, close")
	f.Add("GET", "/%zz?%", "X-Request-ID", "\x00")
	cfg := config.Default()
	cfg.Upstreams = []config.Upstream{{Name: "o1", URL: "http://127.0.0.1:1", Weight: 1}}
	cfg.Health.Active = false
	cfg.AccessLog.Enabled = false
	s, err := New(cfg, Options{JWTSecret: testSecret})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.Close)
	if err := s.rt.Load().pool.Drain("o1"); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, target, name, value string) {
		var ctx fasthttp.RequestCtx
		ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1)}, nil)
		ctx.Request.Header.SetMethod(method)
		ctx.Request.SetRequestURI(target)
		ctx.Request.Header.Set(name, value)
		s.handle(&ctx)
		switch code := ctx.Response.StatusCode(); code {
		case 303, 401, 403, 414, 429, 503:
		default:
			t.Fatalf("%s %q (%s: %q): status %d %s", method, target, name, value, code, ctx.Response.Body())
		}
	})
}
