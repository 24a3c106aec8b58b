package origintest

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/origin/db"
	"github.com/novashop/edge/origin/seed"
	"github.com/novashop/edge/origin/server"
	"github.com/novashop/edge/origin/tokens"
)

// Secret is the HS256 test secret.
const Secret = "origintest-secret-0123456789abcdef"

// Keys returns HS256 keys over Secret.
func Keys(t testing.TB) *tokens.Keys {
	t.Helper()
	k, err := tokens.NewHS256([]byte(Secret))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// DB migrates a fresh database and returns its URL and a pool over it.
func DB(t testing.TB) (string, *pgxpool.Pool) {
	t.Helper()
	url := testenv.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := db.Migrate(ctx, url); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	pool, err := db.Open(ctx, url, db.Options{MaxConns: 16})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(pool.Close)
	return url, pool
}

// Seed seeds a small catalog with the cheapest bcrypt cost.
func Seed(t testing.TB, pool *pgxpool.Pool, categories, products, users int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := seed.Run(ctx, pool, seed.Options{Categories: categories, Products: products, Users: users,
		UserPassword: seed.DefaultUserPassword, AdminPassword: seed.DefaultAdminPassword, BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
}

// Redis connects a rueidis client to url.
func Redis(t testing.TB, url string) rueidis.Client {
	t.Helper()
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// Start runs an origin on a 127.0.0.1 port and returns its base URL. Deps
// default to the test keys, the cheapest bcrypt cost and the name "test".
func Start(t testing.TB, d server.Deps) (string, *server.Server) {
	t.Helper()
	if d.Name == "" {
		d.Name = "test"
	}
	if d.Keys == nil {
		d.Keys = Keys(t)
	}
	if d.BcryptCost == 0 {
		d.BcryptCost = bcrypt.MinCost
	}
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	srv, err := server.New(d)
	if err != nil {
		t.Fatalf("server: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return "http://" + ln.Addr().String(), srv
}

// Response is a decoded answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v or fails the test.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Error returns the "error" of a JSON error body ("" if none).
func (r Response) Error() string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error
}

// Client talks JSON to an origin.
type Client struct {
	Base  string
	Token string
	HTTP  *http.Client
}

// NewClient makes a client for base.
func NewClient(base string) *Client {
	return &Client{Base: base, HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// WithToken returns a copy that sends the bearer token.
func (c *Client) WithToken(tok string) *Client {
	cp := *c
	cp.Token = tok
	return &cp
}

// Do sends body (marshalled unless it is []byte or nil) with JSON content type.
func (c *Client) Do(t testing.TB, method, path string, body any) Response {
	t.Helper()
	var rd *bytes.Reader
	switch b := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.Base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return c.Send(t, req)
}

// Send sends a prepared request.
func (c *Client) Send(t testing.TB, req *http.Request) Response {
	t.Helper()
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatalf("%s %s: read: %v", req.Method, req.URL, err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: buf.Bytes()}
}

// Login logs in and returns the access and refresh tokens.
func (c *Client) Login(t testing.TB, user, pass string) (access, refresh string) {
	t.Helper()
	r := c.Do(t, "POST", "/api/login/", map[string]string{"username": user, "password": pass})
	if r.Status != 200 {
		t.Fatalf("login %s: %d %s", user, r.Status, r.Body)
	}
	var p struct{ Access, Refresh string }
	r.JSON(t, &p)
	return p.Access, p.Refresh
}
