package web_test

import (
	"net"
	"testing"

	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"
	"golang.org/x/crypto/bcrypt"

	"github.com/novashop/edge/origin/api"
	"github.com/novashop/edge/origin/origintest"
	"github.com/novashop/edge/origin/server"
	"github.com/novashop/edge/origin/web"
)

// benchPage measures catalog pages in-process through the origin's full
// middleware chain (no network), on a seeded catalog of 1,000 products.
func benchPage(b *testing.B, uri string) {
	_, pool := origintest.DB(b)
	origintest.Seed(b, pool, 10, 1000, 1)
	mount, err := web.New(web.Options{BcryptCost: bcrypt.MinCost})
	if err != nil {
		b.Fatal(err)
	}
	_, srv := origintest.Start(b, server.Deps{Pool: pool, Mount: []func(*router.Router, *api.Env){mount}})
	h := srv.Handler()
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1234}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var req fasthttp.Request
		req.SetRequestURI(uri)
		var ctx fasthttp.RequestCtx
		for pb.Next() {
			ctx.Init(&req, addr, nil)
			h(&ctx)
			if ctx.Response.StatusCode() != 200 {
				// Errorf, not Fatalf: this runs on RunParallel's goroutines.
				b.Errorf("%s: %d %s", uri, ctx.Response.StatusCode(), ctx.Response.Body())
				return
			}
		}
	})
}

func BenchmarkProductPage(b *testing.B) { benchPage(b, "/products/42/") }

func BenchmarkProductList(b *testing.B) { benchPage(b, "/products/?ordering=price&in_stock=1") }

func BenchmarkHome(b *testing.B) { benchPage(b, "/") }
