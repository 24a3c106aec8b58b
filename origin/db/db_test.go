package db_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/origin/db"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestMigrateTwice(t *testing.T) {
	url := testenv.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; i < 2; i++ {
		if err := db.Migrate(ctx, url); err != nil {
			t.Fatalf("migrate #%d: %v", i+1, err)
		}
	}
	pool, err := db.Open(ctx, url, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'
		AND table_name IN ('users','categories','products','reviews','carts','cart_items','orders','order_items','outbox','tag_bumps','refresh_tokens')`).Scan(&n); err != nil || n != 11 {
		t.Fatalf("tables = %d, %v", n, err)
	}
	// stock >= 0 is enforced by the schema itself.
	if _, err := pool.Exec(ctx, `INSERT INTO categories (name) VALUES ('c')`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO products (name, price, stock, category_id) VALUES ('p', 1, -1, 1)`); err == nil {
		t.Fatal("negative stock accepted")
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := db.Open(ctx, "postgres://u:secretpw@127.0.0.1:1/x?connect_timeout=1", db.Options{PingTimeout: time.Second}); !errors.Is(err, db.ErrUnreachable) {
		t.Fatalf("unreachable: %v", err)
	}
	_, err := db.Open(ctx, "postgres://u:secretpw@host:notaport/x", db.Options{})
	if !errors.Is(err, db.ErrBadURL) {
		t.Fatalf("bad url: %v", err)
	}
	if err != nil && contains(err.Error(), "secretpw") {
		t.Fatalf("error leaks the password: %v", err)
	}
	if err := db.Migrate(ctx, "postgres://u:secretpw@127.0.0.1:1/x?connect_timeout=1"); !errors.Is(err, db.ErrUnreachable) {
		t.Fatalf("migrate unreachable: %v", err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// A warmed pool holds every connection at start, so a cold origin's first burst
// of requests does not each pay a connection set-up.
func TestOpenWarm(t *testing.T) {
	url := testenv.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tt := range []struct {
		warm bool
		want int32
	}{{false, 1}, {true, 6}} {
		pool, err := db.Open(ctx, url, db.Options{MaxConns: 6, Warm: tt.warm})
		if err != nil {
			t.Fatal(err)
		}
		if got := pool.Stat().TotalConns(); got != tt.want {
			t.Errorf("Warm=%v: %d open connections after Open, want %d", tt.warm, got, tt.want)
		}
		pool.Close()
	}
}
