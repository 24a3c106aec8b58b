package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/origin/db"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// env is one test's database, Redis client and stream names.
type env struct {
	t   *testing.T
	db  *pgxpool.Pool
	rdb rueidis.Client
	cfg Config
	log *zap.Logger
}

// newEnv migrates a fresh database and connects to redisURL (the shared
// server when empty), with stream names of the test's own.
func newEnv(t *testing.T, redisURL string) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs PostgreSQL and Redis (run without -short)")
	}
	// The first call starts PostgreSQL (maybe installing it): that happens
	// before the 60 s for migrating and opening starts.
	url := testenv.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := db.Migrate(ctx, url); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	pool, err := db.Open(ctx, url, db.Options{MaxConns: 16})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(pool.Close)
	if redisURL == "" {
		redisURL = testenv.Redis(t)
	}
	rdb := newRedis(t, redisURL)
	suffix := randHex(6)
	return &env{t: t, db: pool, rdb: rdb, log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), cfg: Config{
		Stream:           "test:orders:" + suffix,
		Group:            "test-workers",
		DeadLetterStream: "test:orders:dead:" + suffix,
		BatchSize:        50,
		Block:            50 * time.Millisecond,
		PollInterval:     20 * time.Millisecond,
		ClaimTimeout:     300 * time.Millisecond,
		MaxDeliveries:    3,
		RedeliverAfter:   500 * time.Millisecond,
		StatsInterval:    100 * time.Millisecond,
		ProcessTimeout:   5 * time.Second,
	}}
}

func newRedis(t *testing.T, url string) rueidis.Client {
	t.Helper()
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		t.Fatalf("redis url: %v", err)
	}
	opt.DisableCache = true
	opt.ConnWriteTimeout = 2 * time.Second
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (e *env) consumer(name string) *Consumer {
	e.t.Helper()
	cfg := e.cfg
	cfg.Consumer = name
	c, err := NewConsumer(cfg, e.db, e.rdb, e.log.With(zap.String("consumer", name)), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) relay() *Relay {
	e.t.Helper()
	r, err := NewRelay(e.cfg, e.db, e.rdb, e.log, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// user inserts a shopper and returns its id.
func (e *env) user() int64 {
	e.t.Helper()
	var id int64
	name := "u" + randHex(4)
	err := e.db.QueryRow(context.Background(), `INSERT INTO users (username, email, password_hash, first_name)
		VALUES ($1, $1 || '@example.test', 'x', 'Ann') RETURNING id`, name).Scan(&id)
	if err != nil {
		e.t.Fatalf("insert user: %v", err)
	}
	return id
}

// orders places n orders the way checkout does: the order and its outbox
// row in one transaction. It returns the order ids.
func (e *env) orders(user int64, n int) []int64 {
	e.t.Helper()
	ids := make([]int64, 0, n)
	ctx := context.Background()
	for range n {
		tx, err := e.db.Begin(ctx)
		if err != nil {
			e.t.Fatalf("begin: %v", err)
		}
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO orders (user_id, total) VALUES ($1, 129.99) RETURNING id`, user).Scan(&id); err != nil {
			e.t.Fatalf("insert order: %v", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO outbox (topic, payload) VALUES ($1, $2)`,
			TopicOrderCreated, fmt.Sprintf(`{"order_id": %d, "user_id": %d, "total": "129.99"}`, id, user)); err != nil {
			e.t.Fatalf("insert outbox: %v", err)
		}
		if err := tx.Commit(ctx); err != nil {
			e.t.Fatalf("commit: %v", err)
		}
		ids = append(ids, id)
	}
	return ids
}

// outboxRow inserts an outbox row with any topic and payload.
func (e *env) outboxRow(topic, payload string) int64 {
	e.t.Helper()
	var id int64
	if err := e.db.QueryRow(context.Background(), `INSERT INTO outbox (topic, payload) VALUES ($1, $2) RETURNING id`,
		topic, payload).Scan(&id); err != nil {
		e.t.Fatalf("insert outbox: %v", err)
	}
	return id
}

// run starts fn in the background until the test ends or stop is called.
func run(t *testing.T, fn func(ctx context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("background loop: %v", err)
		}
	}()
	stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Errorf("background loop did not stop within 15s")
		}
	}
	t.Cleanup(stop)
	return stop
}

// count runs a COUNT query.
func (e *env) count(q string, args ...any) int64 {
	e.t.Helper()
	var n int64
	if err := e.db.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func (e *env) waitFor(what string, d time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// assertExactlyOnce checks that every order is confirmed with exactly one
// notification and one processed record, and nothing is left in flight.
func (e *env) assertExactlyOnce(ids []int64) {
	e.t.Helper()
	if n := e.count(`SELECT count(*) FROM orders WHERE id = ANY($1) AND status = 'confirmed'`, ids); n != int64(len(ids)) {
		e.t.Errorf("confirmed orders: %d, want %d", n, len(ids))
	}
	if n := e.count(`SELECT count(*) FROM notifications WHERE order_id = ANY($1)`, ids); n != int64(len(ids)) {
		e.t.Errorf("notifications: %d, want %d (one per order)", n, len(ids))
	}
	if n := e.count(`SELECT count(*) FROM (SELECT order_id FROM notifications GROUP BY order_id, kind HAVING count(*) > 1) d`); n != 0 {
		e.t.Errorf("%d orders notified twice", n)
	}
	if n := e.count(`SELECT count(*) FROM pipeline_dead_letters`); n != 0 {
		e.t.Errorf("dead letters: %d, want 0", n)
	}
}

// allConfirmed reports whether every order in ids is confirmed.
func (e *env) allConfirmed(ids []int64) func() bool {
	return func() bool {
		return e.count(`SELECT count(*) FROM orders WHERE id = ANY($1) AND status = 'confirmed'`, ids) == int64(len(ids))
	}
}
