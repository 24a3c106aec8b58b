package web_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/router"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"

	"github.com/novashop/edge/origin/api"
	"github.com/novashop/edge/origin/origintest"
	"github.com/novashop/edge/origin/server"
	"github.com/novashop/edge/origin/web"
)

// shop starts an origin with the storefront on a seeded database: 3
// categories, 30 products, users user1 and user2 (password shopper123).
func shop(t testing.TB) (string, *pgxpool.Pool) {
	t.Helper()
	_, pool := origintest.DB(t)
	origintest.Seed(t, pool, 3, 30, 2)
	mount, err := web.New(web.Options{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := origintest.Start(t, server.Deps{Name: "web-test", Pool: pool,
		Mount: []func(*router.Router, *api.Env){mount}})
	return base, pool
}

// browser is a cookie-keeping client that does not follow redirects, so
// tests see every 303.
type browser struct {
	base string
	jar  *cookiejar.Jar
	c    *http.Client
}

func newBrowser(t testing.TB, base string) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{base: base, jar: jar, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type resp struct {
	Status int
	Header http.Header
	Body   string
}

func (b *browser) do(t testing.TB, req *http.Request) resp {
	t.Helper()
	r, err := b.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer r.Body.Close()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp{Status: r.StatusCode, Header: r.Header, Body: string(body)}
}

func (b *browser) get(t testing.TB, path string) resp {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), "GET", b.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b.do(t, req)
}

// post sends a urlencoded form; csrf adds the browser's CSRF cookie value
// as the form's token, as the page's script does.
func (b *browser) post(t testing.TB, path string, form url.Values, csrf bool) resp {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if csrf {
		form.Set(web.FieldCSRF, b.cookie(web.CookieCSRF))
	}
	req, err := http.NewRequestWithContext(context.Background(), "POST", b.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(t, req)
}

func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.base)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// login logs in through the storefront's own form.
func (b *browser) login(t testing.TB, user, pass string) {
	t.Helper()
	if r := b.get(t, "/login/"); r.Status != 200 {
		t.Fatalf("GET /login/: %d", r.Status)
	}
	r := b.post(t, "/login/", url.Values{"username": {user}, "password": {pass}}, true)
	if r.Status != 303 || b.cookie("novashop_access") == "" {
		t.Fatalf("login %s: %d %s", user, r.Status, r.Body)
	}
}

func wantStatus(t testing.TB, r resp, st int, what string) {
	t.Helper()
	if r.Status != st {
		t.Fatalf("%s: status %d, want %d; body:\n%.2000s", what, r.Status, st, r.Body)
	}
}

func wantBody(t testing.TB, r resp, what string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(r.Body, s) {
			t.Fatalf("%s: body lacks %q:\n%.3000s", what, s, r.Body)
		}
	}
}

func rawPost(t testing.TB, base, path, ctype string, body []byte) resp {
	t.Helper()
	req, err := http.NewRequest("POST", base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	return newBrowser(t, base).do(t, req)
}

// oversized announces a form body of n bytes and reads the answer without
// sending it: the server refuses on the Content-Length alone and closes the
// connection, which would race a client still writing the body.
func oversized(t testing.TB, base, path string, n int) int {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n", path, u.Host, n)
	r, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("oversized %s: %v", path, err)
	}
	defer r.Body.Close()
	return r.StatusCode
}
