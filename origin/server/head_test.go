package server_test

import (
	"net/http"
	"testing"

	"github.com/fasthttp/router"

	"github.com/novashop/edge/origin/api"
	"github.com/novashop/edge/origin/origintest"
	"github.com/novashop/edge/origin/server"
	"github.com/novashop/edge/origin/web"
)

// TestHeadMirrorsGet pins RFC 9110 §9.3.2 on every GET route, API and
// storefront: HEAD answers the same status and headers as GET (ETag and
// Content-Length included) with no body.
func TestHeadMirrorsGet(t *testing.T) {
	_, pool := origintest.DB(t)
	origintest.Seed(t, pool, 3, 30, 2)
	base, _ := origintest.Start(t, server.Deps{Name: "origin-head", Pool: pool,
		Mount: []func(*router.Router, *api.Env){web.Mount}})
	c := origintest.NewClient(base)
	access, _ := c.Login(t, "user1", "shopper123")

	tests := []struct {
		path   string
		auth   bool
		status int
	}{
		{"/healthz", false, 200},
		{"/readyz", false, 200},
		{"/metrics", false, 200},
		{"/api/categories/", false, 200},
		{"/api/categories/1/", false, 200},
		{"/api/categories/999/", false, 404},
		{"/api/products/?ordering=price&limit=5", false, 200},
		{"/api/products/7/", false, 200},
		{"/api/products/7/reviews/", false, 200},
		{"/api/products/abc/", false, 404},
		{"/api/me/", true, 200},
		{"/api/me/", false, 401},
		{"/api/cart/", true, 200},
		{"/api/orders/", true, 200},
		{"/", false, 200},
		{"/1/", false, 200},
		{"/products/", false, 200},
		{"/products/7/", false, 200},
		{"/products/9999/", false, 404},
		{"/login/", false, 200},
		{"/register/", false, 200},
		{"/logout/", false, 200},
		{"/cart/", false, 303},
		{"/orders/", false, 303},
	}
	// Headers that must match; Date and per-request cookies may differ.
	same := []string{"Content-Type", "Content-Length", "Cache-Control", "Cache-Tag", "ETag", "X-Served-By",
		"Location", "WWW-Authenticate", "Content-Security-Policy"}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			do := func(method string) origintest.Response {
				req, err := http.NewRequest(method, base+tt.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tt.auth {
					req.Header.Set("Authorization", "Bearer "+access)
				}
				cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
				return (&origintest.Client{HTTP: cl}).Send(t, req)
			}
			get, head := do("GET"), do("HEAD")
			if get.Status != tt.status {
				t.Fatalf("GET status %d, want %d", get.Status, tt.status)
			}
			if head.Status != get.Status {
				t.Fatalf("HEAD status %d, GET %d", head.Status, get.Status)
			}
			if len(head.Body) != 0 {
				t.Fatalf("HEAD has a %d-byte body", len(head.Body))
			}
			if head.Header.Get("Allow") != "" {
				t.Fatalf("HEAD answered with Allow: %s", head.Header.Get("Allow"))
			}
			for _, h := range same {
				if h == "Content-Length" && (tt.path == "/metrics" || len(get.Body) == 0) {
					// The metrics change between the two requests; an
					// empty body's "0" is optional on HEAD (RFC 9110 §8.6).
					continue
				}
				if g, hd := get.Header.Get(h), head.Header.Get(h); g != hd {
					t.Errorf("%s: GET %q, HEAD %q", h, g, hd)
				}
			}
			if get.Status == 200 && len(get.Body) > 0 && head.Header.Get("Content-Length") == "" {
				t.Error("HEAD has no Content-Length")
			}
		})
	}

	// A POST-only route still refuses HEAD, and says what it allows.
	req, _ := http.NewRequest("HEAD", base+"/api/login/", nil)
	r := c.Send(t, req)
	if r.Status != 405 || r.Header.Get("Allow") == "" {
		t.Fatalf("HEAD on a POST-only route: %d, Allow %q", r.Status, r.Header.Get("Allow"))
	}
}
