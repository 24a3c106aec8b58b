package proxy

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"
)

var testSecret = []byte("novashop-edge-test-secret-0123456789")

func token(t *testing.T, sub, role string, exp time.Duration, secret []byte) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": sub, "role": role, "iss": "novashop", "aud": "novashop-api",
		"iat": now.Unix(), "exp": now.Add(exp).Unix(),
	})
	s, err := tok.SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestJWTAtTheEdge(t *testing.T) {
	o := newOrigin(t, "o1", nil)
	e := startEdge(t, testConfig(o), Options{JWTSecret: testSecret})
	shopper := "Authorization: Bearer " + token(t, "42", "shopper", time.Minute, testSecret)
	staff := "Authorization: Bearer " + token(t, "1", "staff", time.Minute, testSecret)
	expired := "Authorization: Bearer " + token(t, "42", "shopper", -time.Hour, testSecret)
	forged := "Authorization: Bearer " + token(t, "1", "staff", time.Minute, []byte("another-secret-that-is-long-enough-00"))
	cookie := "Cookie: novashop_access=" + token(t, "42", "shopper", time.Minute, testSecret)

	tests := []struct {
		name     string
		method   string
		path     string
		headers  []string
		status   int
		userID   string // X-User-ID the origin must see ("" = none)
		location string
	}{
		{"public without token", "GET", "/api/products/", nil, 200, "", ""},
		{"public ignores token", "GET", "/api/products/", []string{shopper}, 200, "", ""},
		{"me without token", "GET", "/api/me/", nil, 401, "", ""},
		{"me with garbage", "GET", "/api/me/", []string{"Authorization: Bearer garbage"}, 401, "", ""},
		{"me expired", "GET", "/api/me/", []string{expired}, 401, "", ""},
		{"me forged", "GET", "/api/me/", []string{forged}, 401, "", ""},
		{"me with token", "GET", "/api/me/", []string{shopper}, 200, "42", ""},
		{"spoofed identity replaced", "GET", "/api/cart/", []string{shopper, "X-User-ID: 1", "X-User-Role: staff"}, 200, "42", ""},
		{"connection cannot drop verified identity", "GET", "/api/me/", []string{shopper, "Connection: X-User-ID"}, 200, "42", ""},
		{"spoofed identity alone", "GET", "/api/cart/", []string{"X-User-ID: 1"}, 401, "", ""},
		{"staff route as shopper", "POST", "/api/products/", []string{shopper}, 403, "", ""},
		{"staff route as staff", "PATCH", "/api/products/3/", []string{staff}, 200, "1", ""},
		{"page via cookie", "GET", "/orders/", []string{cookie}, 200, "42", ""},
		{"page without token", "GET", "/orders/12/", nil, 303, "", "/login/?next=" + url.QueryEscape("/orders/12/")},
		{"review form without token", "POST", "/products/7/reviews/add/", nil, 303, "", "/login/?next=" + url.QueryEscape("/products/7/reviews/add/")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := o.hits.Load()
			r := e.do(t, tt.method, tt.path, "", tt.headers...)
			if r.StatusCode() != tt.status {
				t.Fatalf("status %d, want %d (%s)", r.StatusCode(), tt.status, r.Body())
			}
			switch tt.status {
			case 401:
				wantJSONError(t, r, 401)
				if !strings.HasPrefix(header(r, "WWW-Authenticate"), "Bearer") {
					t.Fatalf("WWW-Authenticate = %q", header(r, "WWW-Authenticate"))
				}
			case 403:
				wantJSONError(t, r, 403)
			case 303:
				if header(r, "Location") != tt.location {
					t.Fatalf("Location = %q, want %q", header(r, "Location"), tt.location)
				}
			}
			if tt.status != 200 {
				if o.hits.Load() != before {
					t.Fatal("the origin saw a rejected request")
				}
				return
			}
			if got := header(r, "X-Echo-X-User-Id"); got != tt.userID {
				t.Fatalf("origin saw X-User-ID %q, want %q", got, tt.userID)
			}
		})
	}
	if e.s.metrics.jwtMissing.Get() == 0 || e.s.metrics.jwtInvalid.Get() == 0 || e.s.metrics.jwtForbidden.Get() == 0 {
		t.Fatal("JWT rejections not counted")
	}
}

func TestRateLimits(t *testing.T) {
	o := newOrigin(t, "o1", nil)
	cfg := testConfig(o)
	cfg.RateLimits = nil
	cfg.RateLimits = append(cfg.RateLimits, rateRule("login", "/api/login/", []string{"POST"}, 0.5, 2, 0, 0))
	cfg.RateLimits = append(cfg.RateLimits, rateRule("cart", "/api/cart/", nil, 0, 0, 0.5, 1))
	e := startEdge(t, cfg, Options{JWTSecret: testSecret})

	for i := range 2 {
		if r := e.do(t, "POST", "/api/login/", "{}"); r.StatusCode() != 200 {
			t.Fatalf("login %d: %d", i, r.StatusCode())
		}
	}
	r := e.do(t, "POST", "/api/login/", "{}")
	wantJSONError(t, r, 429)
	if ra := header(r, "Retry-After"); ra != "2" {
		t.Fatalf("Retry-After = %q, want 2 (rate 0.5/s)", ra)
	}
	if r := e.do(t, "GET", "/api/login/", ""); r.StatusCode() != 200 {
		t.Fatalf("GET matched a POST-only rule: %d", r.StatusCode())
	}

	alice := "Authorization: Bearer " + token(t, "alice", "shopper", time.Minute, testSecret)
	bob := "Authorization: Bearer " + token(t, "bob", "shopper", time.Minute, testSecret)
	if r := e.do(t, "GET", "/api/cart/", "", alice); r.StatusCode() != 200 {
		t.Fatalf("alice first: %d", r.StatusCode())
	}
	wantJSONError(t, e.do(t, "GET", "/api/cart/", "", alice), 429)
	if r := e.do(t, "GET", "/api/cart/", "", bob); r.StatusCode() != 200 {
		t.Fatalf("bob limited by alice's bucket: %d", r.StatusCode())
	}
}

func TestReloadSwitchesUpstreams(t *testing.T) {
	o1, o2 := newOrigin(t, "o1", nil), newOrigin(t, "o2", nil)
	e := startEdge(t, testConfig(o1), Options{})
	u1 := e.s.rt.Load().pool.Get("o1")
	if header(e.do(t, "GET", "/", ""), "X-Served-By") != "o1" {
		t.Fatal("before reload")
	}
	cfg := testConfig(o1, o2)
	cfg.Balancer.Policy = "least-conn"
	if err := e.s.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if e.s.rt.Load().pool.Get("o1") != u1 {
		t.Fatal("unchanged upstream was rebuilt")
	}
	if e.s.Policy() != "least-conn" {
		t.Fatalf("policy = %s", e.s.Policy())
	}
	seen := map[string]bool{}
	for range 20 {
		seen[header(e.do(t, "GET", "/", ""), "X-Served-By")] = true
	}
	if !seen["o2"] {
		t.Fatalf("new upstream unused: %v", seen)
	}
	bad := testConfig()
	if err := e.s.Reload(bad); err == nil {
		t.Fatal("reload accepted a config without upstreams")
	}
	if e.s.Policy() != "least-conn" || len(e.s.rt.Load().pool.All()) != 2 {
		t.Fatal("a rejected reload changed the running config")
	}
}

// TestPolicySwitchUnderLoad switches the policy through every name while requests
// run; none may fail.
func TestPolicySwitchUnderLoad(t *testing.T) {
	o1, o2 := newOrigin(t, "o1", nil), newOrigin(t, "o2", nil)
	e := startEdge(t, testConfig(o1, o2), Options{})
	done := make(chan int)
	go func() {
		failed := 0
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		for range 400 {
			req.SetRequestURI("http://" + e.addr + "/")
			if err := e.client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				failed++
			}
		}
		done <- failed
	}()
	names := []string{"weighted", "least-conn", "p2c-ewma", "random", "hash", "round-robin"}
	for i := range 30 {
		if err := e.s.SetPolicy(names[i%len(names)], ""); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	if failed := <-done; failed != 0 {
		t.Fatalf("%d requests failed during policy switches", failed)
	}
}

// TestNoKeyFailsClosed: an edge with no token key cannot vouch for any
// token, so routes that need a user answer 401 (pages: 303 to login) and
// never reach the origin, unless jwt.disabled says to leave the check to the
// origin.
func TestNoKeyFailsClosed(t *testing.T) {
	o := newOrigin(t, "o1", nil)
	e := startEdge(t, testConfig(o), Options{})
	bearer := "Authorization: Bearer " + token(t, "42", "shopper", time.Minute, testSecret)
	wantJSONError(t, e.do(t, "GET", "/api/me/", "", bearer), 401)
	if r := e.do(t, "GET", "/orders/", "", "Cookie: novashop_access=x"); r.StatusCode() != 303 {
		t.Fatalf("storefront page without a key: status %d, want 303", r.StatusCode())
	}
	if n := o.hits.Load(); n != 0 {
		t.Fatalf("origin saw %d protected requests from an edge without a key", n)
	}
	if r := e.do(t, "GET", "/api/products/", ""); r.StatusCode() != 200 {
		t.Fatalf("public route without a key: status %d, want 200", r.StatusCode())
	}

	cfg := testConfig(o)
	cfg.JWT.Disabled = true
	open := startEdge(t, cfg, Options{})
	r := open.do(t, "GET", "/api/me/", "", bearer, "X-User-ID: 1")
	if r.StatusCode() != 200 {
		t.Fatalf("jwt.disabled: status %d, want the origin's 200", r.StatusCode())
	}
}
