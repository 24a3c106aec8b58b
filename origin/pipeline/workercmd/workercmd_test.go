package workercmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/origin/db"
	"github.com/novashop/edge/origin/pipeline"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// clearEnv keeps the machine's environment out of flag defaults.
func clearEnv(t *testing.T) {
	for _, k := range []string{"DATABASE_URL", "REDIS_URL", "WORKER_METRICS_LISTEN", "WORKER_CONSUMER", "LOG_LEVEL"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

func TestHelp(t *testing.T) {
	clearEnv(t)
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"--help"}, &out, io.Discard); err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"usage: origin worker", "--dead-letters", "-database-url", "[DATABASE_URL]",
		"[REDIS_URL]", "-claim-timeout", "-max-deliveries", "-batch-size", "-consumer", "-metrics-listen", "-requeue"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q", want)
		}
	}
}

func TestBadCommandLines(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--nope"}, "flag provided but not defined: -nope"},
		{"bad duration", []string{"--database-url", "postgres://x/y", "--redis-url", "redis://x", "--claim-timeout", "soon"}, "claim-timeout"},
		{"stray argument", []string{"--database-url", "postgres://x/y", "extra"}, `unexpected argument "extra"`},
		{"no database", nil, "--database-url (or DATABASE_URL) is required"},
		{"no redis", []string{"--database-url", "postgres://x/y"}, "--redis-url (or REDIS_URL) is required"},
		{"bad log level", []string{"--database-url", "postgres://x/y", "--log-level", "loud"}, "--log-level"},
		{"bad config", []string{"--database-url", "postgres://x/y", "--redis-url", "redis://x", "--max-deliveries", "-1", "--batch-size", "-5"},
			"batch size -5 must be 1..10000; max deliveries -1 must be 1..1000"},
		{"negative requeue", []string{"--database-url", "postgres://x/y", "--requeue", "-2"}, "--requeue -2"},
		{"bad metrics address", []string{"--database-url", "postgres://x/y", "--redis-url", "redis://x", "--metrics-listen", "nowhere:port"}, "--metrics-listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := Run(context.Background(), tt.args, &out, &errOut)
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("error %v, want ErrUsage", err)
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line containing %q", err, tt.want)
			}
			if out.Len()+errOut.Len() != 0 {
				t.Errorf("printed %q / %q; the caller prints the one line", out.String(), errOut.String())
			}
		})
	}
}

func TestUnreachablePostgres(t *testing.T) {
	clearEnv(t)
	start := time.Now()
	err := Run(context.Background(), []string{"--database-url", "postgres://shop:s3cret@127.0.0.1:1/shop?connect_timeout=2",
		"--redis-url", "redis://127.0.0.1:1"}, io.Discard, io.Discard)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "PostgreSQL") {
		t.Fatalf("error %v, want ErrUnreachable naming PostgreSQL", err)
	}
	if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q leaks the password or spans lines", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("took %s to give up", d)
	}
}

// migratedDB returns the URL of a fresh, migrated database.
func migratedDB(t *testing.T) string {
	t.Helper()
	url := testenv.Postgres(t)
	if err := db.Migrate(context.Background(), url); err != nil {
		t.Fatal(err)
	}
	return url
}

func TestUnreachableRedis(t *testing.T) {
	clearEnv(t)
	url := migratedDB(t)
	err := Run(context.Background(), []string{"--database-url", url, "--redis-url", "redis://:pw@127.0.0.1:1/0"}, io.Discard, io.Discard)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "Redis at") || strings.Contains(err.Error(), ":pw@") {
		t.Fatalf("error %v, want ErrUnreachable naming Redis without the password", err)
	}
}

func TestNotMigrated(t *testing.T) {
	clearEnv(t)
	url := testenv.Postgres(t)
	err := Run(context.Background(), []string{"--database-url", url, "--redis-url", testenv.Redis(t)}, io.Discard, io.Discard)
	if !errors.Is(err, pipeline.ErrNotMigrated) || !strings.Contains(err.Error(), "origin migrate") {
		t.Fatalf("error %v, want ErrNotMigrated", err)
	}
}

func TestDeadLettersAndRequeue(t *testing.T) {
	clearEnv(t)
	url := migratedDB(t)
	ctx := context.Background()
	var out bytes.Buffer
	if err := Run(ctx, []string{"--database-url", url, "--dead-letters"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out.String()) != "no dead letters" {
		t.Errorf("empty list printed %q", out.String())
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var outboxID, dlID int64
	if err := conn.QueryRow(ctx, `INSERT INTO outbox (topic, payload, sent_at) VALUES ('order.created', '{"order_id": 5}', now()) RETURNING id`).Scan(&outboxID); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `INSERT INTO pipeline_dead_letters (outbox_id, stream_id, topic, payload, reason, deliveries)
		VALUES ($1, '1-0', 'order.created', '{"order_id": 5}', 'pipeline: order not found: order 5', 1) RETURNING id`, outboxID).Scan(&dlID); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	t.Setenv("DATABASE_URL", url) // the environment works as well as the flag
	if err := Run(ctx, []string{"--dead-letters"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ID", "REASON", "order not found: order 5", fmt.Sprint(outboxID), "order.created"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := Run(ctx, []string{"--dead-letters", "--json"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var d pipeline.DeadLetter
	if err := json.Unmarshal(out.Bytes(), &d); err != nil || d.ID != dlID || d.OutboxID == nil || *d.OutboxID != outboxID {
		t.Errorf("JSON line %q: %+v, %v", out.String(), d, err)
	}
	out.Reset()
	if err := Run(ctx, []string{"--requeue", fmt.Sprint(dlID)}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var unsent bool
	if err := conn.QueryRow(ctx, `SELECT sent_at IS NULL FROM outbox WHERE id = $1`, outboxID).Scan(&unsent); err != nil || !unsent {
		t.Errorf("requeued outbox row unsent = %v, %v", unsent, err)
	}
	err = Run(ctx, []string{"--requeue", fmt.Sprint(dlID)}, io.Discard, io.Discard)
	if !errors.Is(err, pipeline.ErrNotFound) {
		t.Errorf("second requeue: %v, want ErrNotFound", err)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunConfirmsAndServesMetrics runs the command as a container would,
// places an order, and reads the metrics endpoint; SIGTERM (ctx) stops it
// cleanly.
func TestRunConfirmsAndServesMetrics(t *testing.T) {
	clearEnv(t)
	url := migratedDB(t)
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	stream := fmt.Sprintf("cmdtest:%d", time.Now().UnixNano())
	t.Setenv("REDIS_URL", testenv.Redis(t))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	logs := &syncBuffer{}
	go func() {
		done <- Run(runCtx, []string{"--database-url", url, "--metrics-listen", addr, "--stream", stream,
			"--dead-letter-stream", stream + ":dead", "--consumer", "cmd-test", "--stats-interval", "100ms"}, io.Discard, logs)
	}()
	defer stop()

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var user, order int64
	if err := conn.QueryRow(ctx, `INSERT INTO users (username, email, password_hash) VALUES ('ann', 'ann@example.test', 'x') RETURNING id`).Scan(&user); err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, `INSERT INTO orders (user_id, total) VALUES ($1, 10) RETURNING id`, user).Scan(&order); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO outbox (topic, payload) VALUES ('order.created', $1)`, fmt.Sprintf(`{"order_id": %d}`, order)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var status string
		if err := conn.QueryRow(ctx, `SELECT status FROM orders WHERE id = $1`, order).Scan(&status); err != nil {
			t.Fatal(err)
		}
		if status == "confirmed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("order still %s after 10s; logs:\n%s", status, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The order is confirmed in the database before the worker counts it
	// (and acknowledges the stream entry): wait for the count too.
	body := get(t, "http://"+addr+"/metrics", http.StatusOK)
	for end := time.Now().Add(5 * time.Second); !strings.Contains(body, "novashop_pipeline_processed_total 1") && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
		body = get(t, "http://"+addr+"/metrics", http.StatusOK)
	}
	for _, want := range []string{"novashop_pipeline_processed_total 1", "novashop_pipeline_stream_lag", "novashop_pipeline_pending",
		"novashop_pipeline_retried_total 0", "novashop_pipeline_dead_lettered_total 0", "process_resident_memory_bytes"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !strings.Contains(body, "# TYPE novashop_pipeline_process_seconds histogram") {
		t.Errorf("/metrics lacks the process histogram's # TYPE line:\n%s", body)
	}
	testenv.CheckMetrics(t, "worker /metrics", []byte(body))
	get(t, "http://"+addr+"/healthz", http.StatusOK)
	if b := get(t, "http://"+addr+"/nope", http.StatusNotFound); !strings.Contains(b, `"error"`) {
		t.Errorf("404 body %q", b)
	}
	resp, err := http.Post("http://"+addr+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(string(b), `"error"`) {
		t.Errorf("POST /metrics = %d %q, want 405 with a JSON error", resp.StatusCode, b)
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("worker returned %v on shutdown", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("worker did not stop within 15s of SIGTERM")
	}
	if !strings.Contains(logs.String(), `"worker: stopped"`) {
		t.Errorf("no shutdown log line in:\n%s", logs.String())
	}
}

func get(t *testing.T, url string, want int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s = %d, want %d: %s", url, resp.StatusCode, want, b)
	}
	return string(b)
}
