// Package testenv gives integration tests a real PostgreSQL and a real Redis.
//
// When TEST_DATABASE_URL / TEST_REDIS_URL are set it uses those servers;
// otherwise it starts throwaway ones from the machine's binaries (installing
// the Debian packages when missing) once per test binary. Each Postgres call
// gets a fresh database, so tests never see each other's rows. It never mocks
// anything: a test that asks for a server gets a server or fails.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/novashop/edge/internal/stack"
)

var (
	mu       sync.Mutex
	pgURL    string
	redisURL string
	started  []func()
)

// Main runs the tests and stops the servers this binary started. Use it as
// `func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }`. Without it the
// servers still die with the test binary (they have a parent-death signal),
// but their temporary directories stay behind.
func Main(m *testing.M) int {
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	for i := len(started) - 1; i >= 0; i-- {
		started[i]()
	}
	started = nil
	return code
}

// serverURL returns the base PostgreSQL URL, starting a server if needed.
func serverURL(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if pgURL != "" {
		return pgURL
	}
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		pgURL = u
		return pgURL
	}
	// Install first (apt-get may wait for another test binary's install
	// under the machine-wide lock), then bound initdb and the first start.
	if _, err := stack.Ensure(os.Stderr, "initdb", "postgres"); err != nil {
		t.Fatalf("testenv: PostgreSQL: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p, err := stack.StartPostgres(ctx, os.Stderr)
	if err != nil {
		t.Fatalf("testenv: PostgreSQL: %v", err)
	}
	pgURL = p.URL
	started = append(started, p.Stop)
	return pgURL
}

// Postgres returns the URL of a new, empty database on a real PostgreSQL
// server. The database is dropped when the test ends.
func Postgres(t testing.TB) string {
	t.Helper()
	base := serverURL(t)
	name := "t_" + randHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("testenv: connect %s: %v", redact(base), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testenv: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("testenv: bad database URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Redis returns the URL of a real Redis server shared by the tests of this
// binary. Tests must use their own key names (or call FreshRedis).
func Redis(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if redisURL != "" {
		return redisURL
	}
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		redisURL = u
		return redisURL
	}
	r := startRedis(t)
	redisURL = r.URL
	started = append(started, r.Stop)
	return redisURL
}

// FreshRedis starts a Redis server that belongs to this test alone, for
// tests that kill or restart it. It is stopped when the test ends.
func FreshRedis(t testing.TB) *stack.Redis {
	t.Helper()
	r := startRedis(t)
	t.Cleanup(r.Stop)
	return r
}

func startRedis(t testing.TB) *stack.Redis {
	t.Helper()
	if _, err := stack.Ensure(os.Stderr, "redis-server"); err != nil {
		t.Fatalf("testenv: Redis: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := stack.StartRedis(ctx, os.Stderr)
	if err != nil {
		t.Fatalf("testenv: Redis: %v", err)
	}
	return r
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// redact hides a password in a URL so it never reaches test logs.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxx")
	}
	return strings.TrimSpace(u.String())
}
