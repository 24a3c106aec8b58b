package web_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestShopFlow: add to cart, update, check out, see the order; another
// shopper gets a 404 for it.
func TestShopFlow(t *testing.T) {
	base, pool := shop(t)
	pid, pname, stock := inStock(t, pool, 3)
	u := newBrowser(t, base)
	u.login(t, "user1", "shopper123")

	r := u.post(t, fmt.Sprintf("/cart/add/%d/", pid), url.Values{"quantity": {"1"}}, true)
	wantStatus(t, r, 303, "add")
	if loc := r.Header.Get("Location"); loc != fmt.Sprintf("/cart/?added=%d", pid) {
		t.Fatalf("add Location %q", loc)
	}
	wantStatus(t, u.post(t, fmt.Sprintf("/cart/update/%d/", pid), url.Values{"quantity": {"2"}}, true), 303, "update")
	r = u.get(t, "/cart/")
	wantStatus(t, r, 200, "cart")
	wantBody(t, r, "cart", pname, `value="2"`, `action="/cart/checkout/"`)

	r = u.post(t, "/cart/checkout/", nil, true)
	wantStatus(t, r, 303, "checkout")
	m := regexp.MustCompile(`^/orders/(\d+)/\?placed=1$`).FindStringSubmatch(r.Header.Get("Location"))
	if m == nil {
		t.Fatalf("checkout Location %q", r.Header.Get("Location"))
	}
	if inv := r.Header.Get("Cache-Invalidate"); !strings.Contains(inv, fmt.Sprintf("product:%d", pid)) {
		t.Fatalf("checkout Cache-Invalidate %q", inv)
	}
	var left int
	if err := pool.QueryRow(context.Background(), `SELECT stock FROM products WHERE id = $1`, pid).Scan(&left); err != nil || left != stock-2 {
		t.Fatalf("stock %d, want %d (%v)", left, stock-2, err)
	}
	r = u.get(t, r.Header.Get("Location"))
	wantStatus(t, r, 200, "order page")
	wantBody(t, r, "order page", "Thank you", "Order #"+m[1], pname, "pending")
	if cc := r.Header.Get("Cache-Control"); cc != "private, no-store" {
		t.Fatalf("order Cache-Control %q", cc)
	}
	r = u.get(t, "/orders/")
	wantBody(t, r, "orders", "Order #"+m[1], "status-pending")
	wantBody(t, u.get(t, "/cart/"), "cart after checkout", "Your cart is empty")

	other := newBrowser(t, base)
	other.login(t, "user2", "shopper123")
	r = other.get(t, "/orders/"+m[1]+"/")
	wantStatus(t, r, 404, "another's order")
	wantBody(t, r, "another's order", "order not found")
	if strings.Contains(other.get(t, "/orders/").Body, "Order #"+m[1]) {
		t.Fatal("user2 lists user1's order")
	}

	// Remove: a line that is there, then one already gone.
	wantStatus(t, u.post(t, fmt.Sprintf("/cart/add/%d/", pid), nil, true), 303, "add again")
	wantStatus(t, u.post(t, fmt.Sprintf("/cart/remove/%d/", pid), nil, true), 303, "remove")
	wantStatus(t, u.post(t, fmt.Sprintf("/cart/remove/%d/", pid), nil, true), 303, "remove twice")
	wantBody(t, u.get(t, "/cart/"), "cart after remove", "Your cart is empty")
}

// TestCheckoutProblems: stock gone since it went into the cart is a 409 on
// the cart page with a friendly message; an empty cart a 422.
func TestCheckoutProblems(t *testing.T) {
	base, pool := shop(t)
	pid, pname, _ := inStock(t, pool, 3)
	u := newBrowser(t, base)
	u.login(t, "user1", "shopper123")
	r := u.post(t, "/cart/checkout/", nil, true)
	wantStatus(t, r, 422, "empty checkout")
	wantBody(t, r, "empty checkout", "Your cart is empty")

	wantStatus(t, u.post(t, fmt.Sprintf("/cart/add/%d/", pid), url.Values{"quantity": {"3"}}, true), 303, "add")
	if _, err := pool.Exec(context.Background(), `UPDATE products SET stock = 1 WHERE id = $1`, pid); err != nil {
		t.Fatal(err)
	}
	r = u.post(t, "/cart/checkout/", nil, true)
	wantStatus(t, r, 409, "short checkout")
	wantBody(t, r, "short checkout", "Sorry, not enough stock for", pname, "1 left", `class="cart-line"`)
	if cc := r.Header.Get("Cache-Control"); cc != "private, no-store" {
		t.Fatalf("409 Cache-Control %q", cc)
	}
	r = u.post(t, fmt.Sprintf("/cart/add/%d/", pid), url.Values{"quantity": {"5"}}, true)
	wantStatus(t, r, 409, "add beyond stock")
	wantBody(t, r, "add beyond stock", "not enough stock")
}

// TestCSRF: every state-changing form is refused without the double-submit
// token, with a mismatched one, or with a pair the server did not sign.
func TestCSRFForms(t *testing.T) {
	base, pool := shop(t)
	pid, _, _ := inStock(t, pool, 1)
	u := newBrowser(t, base)
	u.login(t, "user1", "shopper123")
	good := u.cookie("novashop_csrf")
	add := fmt.Sprintf("/cart/add/%d/", pid)
	forged := "AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	for _, tt := range []struct {
		name, cookie, field string
	}{
		{"no token", good, ""},
		{"wrong token", good, good[:len(good)-2] + "xx"},
		{"forged pair", forged, forged},
		{"no cookie", "", good},
	} {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"quantity": {"1"}}
			if tt.field != "" {
				form.Set("csrf", tt.field)
			}
			req, _ := http.NewRequest("POST", base+add, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(&http.Cookie{Name: "novashop_access", Value: u.cookie("novashop_access")})
			if tt.cookie != "" {
				req.AddCookie(&http.Cookie{Name: "novashop_csrf", Value: tt.cookie})
			}
			r := newBrowser(t, base).do(t, req)
			wantStatus(t, r, 403, tt.name)
			wantBody(t, r, tt.name, "CSRF check failed")
		})
	}
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM cart_items`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("a refused form changed the cart: %d rows (%v)", n, err)
	}
	// The header works as well as the field (for fetch-based forms).
	req, _ := http.NewRequest("POST", base+add, strings.NewReader("quantity=1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-CSRF-Token", good)
	wantStatus(t, u.do(t, req), 303, "header token")
	// Login and logout are protected too.
	anon := newBrowser(t, base)
	wantStatus(t, anon.post(t, "/login/", url.Values{"username": {"user1"}, "password": {"shopper123"}}, false), 403, "login without token")
	wantStatus(t, u.post(t, "/logout/", nil, false), 403, "logout without token")
}

// TestLoginCookieAndNext: the access cookie's attributes, and next kept
// only when it is a local path.
func TestLoginCookieAndNext(t *testing.T) {
	base, _ := shop(t)
	for _, tt := range []struct{ next, want string }{
		{"/cart/", "/cart/"},
		{"/products/?search=lamp", "/products/?search=lamp"},
		{"//evil.example/", "/"},
		{"https://evil.example/", "/"},
		{"/\\evil.example", "/"},
		{"\\\\evil.example", "/"},
		{"", "/"},
	} {
		b := newBrowser(t, base)
		b.get(t, "/login/")
		r := b.post(t, "/login/", url.Values{"username": {"user1"}, "password": {"shopper123"}, "next": {tt.next}}, true)
		wantStatus(t, r, 303, "login next="+tt.next)
		if loc := r.Header.Get("Location"); loc != tt.want {
			t.Errorf("next=%q: Location %q, want %q", tt.next, loc, tt.want)
		}
	}

	b := newBrowser(t, base)
	b.get(t, "/login/")
	form := url.Values{"username": {"user1"}, "password": {"shopper123"}, "csrf": {b.cookie("novashop_csrf")}}
	req, _ := http.NewRequest("POST", base+"/login/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-Proto", "https")
	r := b.do(t, req)
	// Cookie attribute names are case-insensitive (RFC 6265 §5.2).
	sc := strings.ToLower(strings.Join(r.Header.Values("Set-Cookie"), "\n"))
	for _, want := range []string{"novashop_access=", "httponly", "samesite=lax", "path=/", "secure", "max-age=900"} {
		if !strings.Contains(sc, want) {
			t.Fatalf("Set-Cookie lacks %s: %s", want, sc)
		}
	}
	// Over plain HTTP the cookie is not Secure (the browser would drop it).
	c := newBrowser(t, base)
	c.get(t, "/login/")
	r = c.post(t, "/login/", url.Values{"username": {"user1"}, "password": {"shopper123"}}, true)
	if strings.Contains(strings.ToLower(strings.Join(r.Header.Values("Set-Cookie"), "\n")), "secure") {
		t.Fatal("Secure cookie over plain HTTP")
	}
	csrfCookie := ""
	for _, v := range r.Header.Values("Set-Cookie") {
		if strings.HasPrefix(v, "novashop_csrf=") {
			csrfCookie = v
		}
	}
	if csrfCookie != "" && strings.Contains(strings.ToLower(csrfCookie), "httponly") {
		t.Fatal("the CSRF cookie must be readable by the page's script")
	}

	// Wrong password: 401, the same message as an unknown user.
	r = c.post(t, "/login/", url.Values{"username": {"user1"}, "password": {"nope-nope"}}, true)
	wantStatus(t, r, 401, "wrong password")
	wantBody(t, r, "wrong password", "invalid username or password")
	r2 := c.post(t, "/login/", url.Values{"username": {"nobody-here"}, "password": {"nope-nope"}}, true)
	wantStatus(t, r2, 401, "unknown user")
	wantBody(t, r2, "unknown user", "invalid username or password")
	r = c.post(t, "/login/", url.Values{"username": {"user1"}}, true)
	wantStatus(t, r, 422, "missing password")
	wantBody(t, r, "missing password", "password: is required", `aria-invalid="true"`)

	// GET /logout/ only offers the button; POST logs out.
	r = c.get(t, "/logout/")
	wantStatus(t, r, 200, "logout page")
	wantBody(t, r, "logout page", `action="/logout/"`, c.cookie("novashop_csrf"))
	if c.cookie("novashop_access") == "" {
		t.Fatal("GET /logout/ logged out")
	}

	// Logout clears the cookie; personal pages then redirect.
	r = c.post(t, "/logout/", nil, true)
	wantStatus(t, r, 303, "logout")
	if c.cookie("novashop_access") != "" {
		t.Fatal("access cookie survives logout")
	}
	wantStatus(t, c.get(t, "/cart/"), 303, "cart after logout")
}

// TestRegisterAndReview: register through the form, then review a product.
func TestRegisterAndReview(t *testing.T) {
	base, pool := shop(t)
	pid, _, _ := inStock(t, pool, 1)
	b := newBrowser(t, base)
	b.get(t, "/register/")
	reg := url.Values{"username": {"erin"}, "email": {"erin@example.com"}, "password": {"erin-pass-1"}, "password2": {"erin-pass-1"},
		"next": {fmt.Sprintf("/products/%d/", pid)}}
	r := b.post(t, "/register/", reg, true)
	wantStatus(t, r, 303, "register")
	if loc := r.Header.Get("Location"); loc != fmt.Sprintf("/login/?next=%%2Fproducts%%2F%d%%2F&registered=1", pid) {
		t.Fatalf("register Location %q", loc)
	}
	r = b.post(t, "/register/", reg, true)
	wantStatus(t, r, 409, "duplicate")
	wantBody(t, r, "duplicate", "already taken", `value="erin@example.com"`)
	if strings.Contains(r.Body, "erin-pass-1") {
		t.Fatal("the form echoes the password")
	}
	bad := url.Values{"username": {"frank"}, "email": {"not-an-email"}, "password": {"frank-pass-1"}}
	r = b.post(t, "/register/", bad, true)
	wantStatus(t, r, 422, "bad email")
	wantBody(t, r, "bad email", "email: must be an email address", `id="email" name="email" type="email" autocomplete="email" required value="not-an-email" aria-invalid="true"`)

	b.login(t, "erin", "erin-pass-1")
	rp := fmt.Sprintf("/products/%d/reviews/add/", pid)
	r = b.post(t, rp, url.Values{"rating": {"4"}, "text": {"Solid <b>build</b>"}}, true)
	wantStatus(t, r, 303, "review")
	if inv := r.Header.Get("Cache-Invalidate"); !strings.Contains(inv, fmt.Sprintf("reviews:%d", pid)) {
		t.Fatalf("review Cache-Invalidate %q", inv)
	}
	page := b.get(t, fmt.Sprintf("/products/%d/", pid))
	wantBody(t, page, "product page", "erin", "Solid &lt;b&gt;build&lt;/b&gt;", "1 review")
	r = b.post(t, rp, url.Values{"rating": {"5"}}, true)
	wantStatus(t, r, 409, "second review")
	wantBody(t, r, "second review", "already reviewed")
	r = b.post(t, rp, url.Values{"rating": {"9"}}, true)
	wantStatus(t, r, 422, "bad rating")
	wantBody(t, r, "bad rating", "rating: must be a whole number from 1 to 5")
}

// TestBadInput: unknown ids are 404 pages, malformed values 4xx pages
// naming the field, never a 500.
func TestBadInput(t *testing.T) {
	base, pool := shop(t)
	pid, _, _ := inStock(t, pool, 1)
	u := newBrowser(t, base)
	u.login(t, "user1", "shopper123")
	big := bytes.Repeat([]byte("a"), 1<<20+100)
	if st := rawPost(t, base, "/login/", "application/x-www-form-urlencoded", big[:1000]).Status; st != 403 {
		t.Fatalf("small raw form without CSRF: %d, want 403", st)
	}
	tests := []struct {
		name, method, path string
		form               url.Values
		status             int
		has                string
	}{
		{"unknown category", "GET", "/9999/", nil, 404, "category not found"},
		{"word category", "GET", "/shoes/", nil, 404, "page not found"},
		{"huge category", "GET", "/99999999999999999999/", nil, 404, "not found"},
		{"unknown product", "GET", "/products/424242/", nil, 404, "product not found"},
		{"word product", "GET", "/products/abc/", nil, 404, "product not found"},
		{"negative product", "GET", "/products/-1/", nil, 404, "product not found"},
		{"bad min_price", "GET", "/products/?min_price=abc", nil, 422, "min_price"},
		{"min over max", "GET", "/products/?min_price=10&max_price=1", nil, 422, "min_price"},
		{"bad ordering", "GET", "/products/?ordering=evil", nil, 422, "ordering"},
		{"bad cursor", "GET", "/products/?cursor=%25%25", nil, 422, "cursor"},
		{"bad category filter", "GET", "/products/?category=x", nil, 422, "category"},
		{"symbols search", "GET", "/products/?search=%26%7C", nil, 422, "search"},
		{"category bad in_stock", "GET", "/1/?in_stock=maybe", nil, 422, "in_stock"},
		{"unknown order", "GET", "/orders/999999/", nil, 404, "order not found"},
		{"unknown page", "GET", "/no/such/page", nil, 404, "page not found"},
		{"word order", "GET", "/orders/abc/", nil, 404, "order not found"},
		{"quantity word", "POST", fmt.Sprintf("/cart/add/%d/", pid), url.Values{"quantity": {"lots"}}, 422, "quantity"},
		{"quantity zero", "POST", fmt.Sprintf("/cart/add/%d/", pid), url.Values{"quantity": {"0"}}, 422, "quantity"},
		{"quantity huge", "POST", fmt.Sprintf("/cart/add/%d/", pid), url.Values{"quantity": {"99999999999999999999"}}, 422, "quantity"},
		{"add unknown product", "POST", "/cart/add/424242/", nil, 404, "product not found"},
		{"add word product", "POST", "/cart/add/abc/", nil, 404, "product not found"},
		{"update not in cart", "POST", fmt.Sprintf("/cart/update/%d/", pid), url.Values{"quantity": {"1"}}, 404, "cart item not found"},
		{"update no quantity", "POST", fmt.Sprintf("/cart/update/%d/", pid), nil, 422, "quantity"},
		{"review unknown product", "POST", "/products/424242/reviews/add/", url.Values{"rating": {"3"}}, 404, "product not found"},
		{"review no rating", "POST", fmt.Sprintf("/products/%d/reviews/add/", pid), nil, 422, "rating"},
		{"review text bad utf8", "POST", fmt.Sprintf("/products/%d/reviews/add/", pid), url.Values{"rating": {"3"}, "text": {"\xff"}}, 422, "text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r resp
			if tt.method == "GET" {
				r = u.get(t, tt.path)
			} else {
				r = u.post(t, tt.path, tt.form, true)
			}
			wantStatus(t, r, tt.status, tt.name)
			wantBody(t, r, tt.name, tt.has, "<!doctype html>")
			if ct := r.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Fatalf("Content-Type %q", ct)
			}
			if cc := r.Header.Get("Cache-Control"); cc != "private, no-store" {
				t.Fatalf("error page Cache-Control %q", cc)
			}
		})
	}

	// The JSON API keeps its JSON 404.
	r := u.get(t, "/api/nope/")
	wantStatus(t, r, 404, "api 404")
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("api 404 Content-Type %q", r.Header.Get("Content-Type"))
	}

	// Wrong media type and oversized bodies.
	req, _ := http.NewRequest("POST", base+fmt.Sprintf("/cart/add/%d/", pid), strings.NewReader(`{"quantity":1}`))
	req.Header.Set("Content-Type", "application/json")
	r = u.do(t, req)
	wantStatus(t, r, 415, "json body")
	wantBody(t, r, "json body", "application/x-www-form-urlencoded")
	if st := oversized(t, base, "/login/", len(big)); st != 413 {
		t.Fatalf("body over 1 MiB: status %d, want 413", st)
	}
}

// TestStaticAssets: the layout links content-hashed assets served with a
// year-long immutable cache; unknown names are 404.
func TestStaticAssets(t *testing.T) {
	base, _ := shop(t)
	b := newBrowser(t, base)
	home := b.get(t, "/").Body
	for _, re := range []string{`href="(/static/app\.[0-9a-f]{12}\.css)"`, `src="(/static/app\.[0-9a-f]{12}\.js)"`} {
		m := regexp.MustCompile(re).FindStringSubmatch(home)
		if m == nil {
			t.Fatalf("home page links no asset matching %s", re)
		}
		r := b.get(t, m[1])
		wantStatus(t, r, 200, m[1])
		if cc := r.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Fatalf("%s Cache-Control %q", m[1], cc)
		}
		if len(r.Body) < 500 {
			t.Fatalf("%s is %d bytes", m[1], len(r.Body))
		}
	}
	wantStatus(t, b.get(t, "/static/app.css"), 404, "unhashed asset name")
	wantStatus(t, b.get(t, "/static/nope.000000000000.js"), 404, "unknown asset")
	// The fallback CSRF route gives a browser its cookie, privately.
	r := b.get(t, "/csrf/")
	wantStatus(t, r, 204, "csrf cookie route")
	if b.cookie("novashop_csrf") == "" || r.Header.Get("Cache-Control") != "private, no-store" {
		t.Fatalf("csrf route: cookie %q, Cache-Control %q", b.cookie("novashop_csrf"), r.Header.Get("Cache-Control"))
	}
}
