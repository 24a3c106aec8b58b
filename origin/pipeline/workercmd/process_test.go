package workercmd

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/origin/db"
)

// buildOrigin compiles cmd/origin, the binary operators run. The build has
// its own generous deadline: from a clean clone with empty Go caches it
// downloads and compiles everything while other packages' race builds share
// the cores, and no test deadline starts before it ends (docs/testing.md).
func buildOrigin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "origin")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "../../../cmd/origin")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/origin: %v\n%s", err, out)
	}
	return bin
}

// startWorker runs `origin worker` as its own process.
func startWorker(t *testing.T, bin, dbURL, redisURL, stream, name string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "worker", "--consumer", name, "--stream", stream, "--dead-letter-stream", stream+":dead",
		"--claim-timeout", "500ms", "--block", "100ms", "--poll-interval", "20ms", "--log-level", "warn")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "REDIS_URL="+redisURL)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("worker %s output:\n%s", name, out.String())
		}
	})
	return cmd
}

// TestWorkerProcessKilled: the real binary is SIGKILLed while orders flow;
// a second process takes over its pending messages, and SIGTERM stops that
// one cleanly (exit status 0). Every order ends confirmed exactly once.
func TestWorkerProcessKilled(t *testing.T) {
	clearEnv(t)
	bin := buildOrigin(t)
	dbURL := migratedDB(t)
	redisURL := testenv.Redis(t)
	ctx := context.Background()
	pool, err := db.Open(ctx, dbURL, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var user int64
	if err := pool.QueryRow(ctx, `INSERT INTO users (username, email, password_hash) VALUES ('bo', 'bo@example.test', 'x') RETURNING id`).Scan(&user); err != nil {
		t.Fatal(err)
	}
	place := func(n int) {
		for range n {
			tx, err := pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var id int64
			if err := tx.QueryRow(ctx, `INSERT INTO orders (user_id, total) VALUES ($1, 5) RETURNING id`, user).Scan(&id); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO outbox (topic, payload) VALUES ('order.created', $1)`, fmt.Sprintf(`{"order_id": %d}`, id)); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	stream := fmt.Sprintf("proctest:%d", time.Now().UnixNano())

	first := startWorker(t, bin, dbURL, redisURL, stream, "first")
	place(100)
	waitCount(t, pool, `SELECT count(*) FROM orders WHERE status = 'confirmed'`, 1, 20*time.Second)
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	place(50)

	second := startWorker(t, bin, dbURL, redisURL, stream, "second")
	waitCount(t, pool, `SELECT count(*) FROM orders WHERE status = 'confirmed'`, 150, 30*time.Second)
	// An order may be confirmed from an entry the killed relay added without
	// recording it; the row is then relayed again (and found processed)
	// a moment later.
	waitCount(t, pool, `SELECT 150 - count(*) FROM outbox WHERE sent_at IS NULL`, 150, 10*time.Second)
	if err := second.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- second.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("worker exited with %v after SIGTERM, want status 0", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("worker did not stop within 15s of SIGTERM")
	}
	for q, want := range map[string]int64{
		`SELECT count(*) FROM notifications`:                             150,
		`SELECT count(DISTINCT order_id) FROM notifications`:             150,
		`SELECT count(*) FROM pipeline_processed WHERE outcome = 'done'`: 150,
		`SELECT count(*) FROM pipeline_dead_letters`:                     0,
		`SELECT count(*) FROM outbox WHERE sent_at IS NULL`:              0,
	} {
		var n int64
		if err := pool.QueryRow(ctx, q).Scan(&n); err != nil || n != want {
			t.Errorf("%s = %d, %v; want %d", q, n, err, want)
		}
	}
}

func waitCount(t *testing.T, pool *pgxpool.Pool, q string, want int64, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var n int64
		if err := pool.QueryRow(context.Background(), q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %d after %s, want %d", q, n, d, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
