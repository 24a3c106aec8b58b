package server_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/novashop/edge/origin/origintest"
	"github.com/novashop/edge/origin/server"
)

// TestBadInput pins that bad input is a clear 4xx JSON error, never a 500.
func TestBadInput(t *testing.T) {
	_, pool := origintest.DB(t)
	origintest.Seed(t, pool, 2, 10, 1)
	base, _ := origintest.Start(t, server.Deps{Pool: pool})
	c := origintest.NewClient(base)
	user, _ := c.Login(t, "user1", "shopper123")
	admin, _ := c.Login(t, "admin", "admin123")
	big := append([]byte(`{"username":"`), bytes.Repeat([]byte("a"), 1<<20+10)...)
	big = append(big, `"}`...)

	tests := []struct {
		name, method, path, token, ctype, body string
		raw                                    []byte
		status                                 int
		errHas                                 string
	}{
		{"malformed json", "POST", "/api/register/", "", "application/json", `{"username":`, nil, 400, "malformed JSON"},
		{"json array", "POST", "/api/register/", "", "application/json", `[1,2]`, nil, 400, "malformed"},
		{"trailing data", "POST", "/api/login/", "", "application/json", `{"username":"a","password":"b"} {}`, nil, 400, "trailing"},
		{"empty body", "POST", "/api/login/", "", "application/json", ``, nil, 400, "empty"},
		{"unknown field", "POST", "/api/login/", "", "application/json", `{"user":"a"}`, nil, 400, "unknown field"},
		{"wrong content type", "POST", "/api/register/", "", "text/plain", `{}`, nil, 415, "Content-Type"},
		{"no content type", "POST", "/api/login/", "", "", `{}`, nil, 415, "Content-Type"},
		{"body over 1 MiB", "POST", "/api/register/", "", "application/json", "", big, 413, "1 MiB"},
		{"username invalid", "POST", "/api/register/", "", "application/json", `{"username":"a b","email":"x@y.z","password":"12345678"}`, nil, 422, "username"},
		{"email invalid", "POST", "/api/register/", "", "application/json", `{"username":"abc","email":"nope","password":"12345678"}`, nil, 422, "email"},
		{"password short", "POST", "/api/register/", "", "application/json", `{"username":"abc","email":"x@y.z","password":"1"}`, nil, 422, "password"},
		{"type mismatch", "POST", "/api/register/", "", "application/json", `{"username":5}`, nil, 422, "username"},
		{"login missing password", "POST", "/api/login/", "", "application/json", `{"username":"user1"}`, nil, 422, "password"},
		{"refresh garbage", "POST", "/api/token/refresh/", "", "application/json", `{"refresh":"x.y.z"}`, nil, 401, "refresh"},
		{"bad bearer", "GET", "/api/me/", "garbage", "", "", nil, 401, "invalid"},
		{"unknown product", "GET", "/api/products/424242/", "", "", "", nil, 404, "product not found"},
		{"non-numeric product", "GET", "/api/products/abc/", "", "", "", nil, 404, "product"},
		{"huge product id", "GET", "/api/products/99999999999999999999/", "", "", "", nil, 404, "product"},
		{"unknown route", "GET", "/api/nope/", "", "", "", nil, 404, "no such route"},
		{"method not allowed", "PUT", "/api/products/", "", "", "", nil, 405, "not allowed"},
		{"bad category filter", "GET", "/api/products/?category=x", "", "", "", nil, 422, "category"},
		{"bad min_price", "GET", "/api/products/?min_price=1e9", "", "", "", nil, 422, "min_price"},
		{"min over max", "GET", "/api/products/?min_price=10&max_price=1", "", "", "", nil, 422, "min_price"},
		{"bad ordering", "GET", "/api/products/?ordering=-name", "", "", "", nil, 422, "ordering"},
		{"bad limit", "GET", "/api/products/?limit=1000", "", "", "", nil, 422, "limit"},
		{"zero limit", "GET", "/api/products/?limit=0", "", "", "", nil, 422, "limit"},
		{"bad in_stock", "GET", "/api/products/?in_stock=yes", "", "", "", nil, 422, "in_stock"},
		{"percent cursor", "GET", "/api/products/?cursor=%%%", "", "", "", nil, 422, "cursor"},
		{"garbage cursor", "GET", "/api/products/?cursor=abc", "", "", "", nil, 422, "cursor"},
		{"cursor of other ordering", "GET", "/api/products/?ordering=price&cursor=eyJvIjoiIiwiaWQiOjV9", "", "", "", nil, 422, "cursor"},
		{"search symbols only", "GET", "/api/products/?search=%26%7C%21", "", "", "", nil, 422, "search"},
		{"cart no token", "GET", "/api/cart/", "", "", "", nil, 401, "authentication"},
		{"cart quantity zero", "POST", "/api/cart/items/", "user", "application/json", `{"product_id":1,"quantity":0}`, nil, 422, "quantity"},
		{"cart missing product", "POST", "/api/cart/items/", "user", "application/json", `{"quantity":1}`, nil, 422, "product_id"},
		{"cart quantity string", "POST", "/api/cart/items/", "user", "application/json", `{"product_id":1,"quantity":"2"}`, nil, 422, "quantity"},
		{"cart patch not in cart", "PATCH", "/api/cart/items/5/", "user", "application/json", `{"quantity":1}`, nil, 404, "cart item"},
		{"checkout bad body", "POST", "/api/orders/", "user", "application/json", `{"x":1}`, nil, 400, "unknown field"},
		{"order not found", "GET", "/api/orders/77/", "user", "", "", nil, 404, "order"},
		{"review no rating", "POST", "/api/products/1/reviews/", "user", "application/json", `{"text":"hi"}`, nil, 422, "rating"},
		{"product price invalid", "POST", "/api/products/", "admin", "application/json", `{"name":"x","price":"1.234","category_id":1}`, nil, 422, "price"},
		{"product price negative", "POST", "/api/products/", "admin", "application/json", `{"name":"x","price":-1,"category_id":1}`, nil, 422, "price"},
		{"product stock negative", "POST", "/api/products/", "admin", "application/json", `{"name":"x","price":"1","stock":-1,"category_id":1}`, nil, 422, "stock"},
		{"product no name", "POST", "/api/products/", "admin", "application/json", `{"price":"1","category_id":1}`, nil, 422, "name"},
		{"product blank name", "POST", "/api/products/", "admin", "application/json", `{"name":"  ","price":"1","category_id":1}`, nil, 422, "name"},
		{"product unknown category", "POST", "/api/products/", "admin", "application/json", `{"name":"x","price":"1","category_id":999}`, nil, 422, "category_id"},
		{"category no name", "POST", "/api/categories/", "admin", "application/json", `{}`, nil, 422, "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.raw
			if body == nil {
				body = []byte(tt.body)
			}
			req, err := http.NewRequest(tt.method, base+tt.path, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			switch tt.token {
			case "user":
				req.Header.Set("Authorization", "Bearer "+user)
			case "admin":
				req.Header.Set("Authorization", "Bearer "+admin)
			case "":
			default:
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			var r origintest.Response
			if len(body) > 1<<20 {
				// The server answers 413 from Content-Length alone and closes
				// the connection, so a client still writing the body may see a
				// reset instead of the answer: send only the head.
				r = sendHeadOnly(t, req, len(body))
			} else {
				r = c.Send(t, req)
			}
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d; body %s", r.Status, tt.status, r.Body)
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("Content-Type %q", ct)
			}
			if msg := r.Error(); msg == "" || !strings.Contains(msg, tt.errHas) {
				t.Fatalf("error %q, want it to mention %q", msg, tt.errHas)
			}
			if r.Status == 401 && r.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
}

// sendHeadOnly writes req's head with Content-Length n and no body, then
// reads the answer: what a server must do with an oversized body is refuse
// it before reading it.
func sendHeadOnly(t *testing.T, req *http.Request, n int) origintest.Response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", req.URL.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var head bytes.Buffer
	head.WriteString(req.Method + " " + req.URL.RequestURI() + " HTTP/1.1\r\nHost: " + req.URL.Host + "\r\n")
	for k, vs := range req.Header {
		for _, v := range vs {
			head.WriteString(k + ": " + v + "\r\n")
		}
	}
	head.WriteString("Content-Length: " + strconv.Itoa(n) + "\r\n\r\n")
	if _, err := conn.Write(head.Bytes()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return origintest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}
