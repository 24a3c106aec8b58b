package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/novashop/edge/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestUsage(t *testing.T) {
	t.Setenv("JWT_SECRET", "")
	tests := []struct {
		args    []string
		usage   bool
		stdout  string
		errText string
	}{
		{nil, true, "", "missing command"},
		{[]string{"--help"}, false, "commands:", ""},
		{[]string{"frobnicate"}, true, "", "unknown command"},
		{[]string{"serve", "--help"}, false, "-inject-error-rate", ""},
		{[]string{"serve", "--help"}, false, "REPLICA_URL", ""},
		{[]string{"seed", "--help"}, false, "-user-password", ""},
		{[]string{"migrate", "--help"}, false, "-database-url", ""},
		{[]string{"serve", "--bogus"}, true, "", "flag provided but not defined"},
		{[]string{"serve", "--database-url", "postgres://x@127.0.0.1:1/x"}, true, "", "JWT_SECRET"},
		{[]string{"serve", "--database-url", "postgres://x@127.0.0.1:1/x", "--inject-error-rate", "2"}, true, "", "inject-error-rate"},
		{[]string{"migrate"}, true, "", "database-url"},
		{[]string{"seed", "--database-url", "postgres://x@127.0.0.1:1/x", "--categories", "0"}, true, "", "categories"},
		{[]string{"migrate", "extra"}, true, "", "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Setenv("DATABASE_URL", "")
			var out, errb bytes.Buffer
			err := run(context.Background(), tt.args, &out, &errb)
			if tt.usage != errors.Is(err, errUsage) {
				t.Fatalf("err %v, usage error wanted: %v", err, tt.usage)
			}
			if tt.errText != "" && (err == nil || !strings.Contains(err.Error(), tt.errText)) {
				t.Fatalf("err %v, want %q", err, tt.errText)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			if !strings.Contains(out.String(), tt.stdout) {
				t.Fatalf("stdout %q lacks %q", out.String(), tt.stdout)
			}
		})
	}
}

func TestUnreachableDatabase(t *testing.T) {
	t.Setenv("JWT_SECRET", strings.Repeat("s", 32))
	for _, args := range [][]string{
		{"migrate", "--database-url", "postgres://u:pw@127.0.0.1:1/x?connect_timeout=1"},
		{"seed", "--database-url", "postgres://u:pw@127.0.0.1:1/x?connect_timeout=1"},
		{"serve", "--database-url", "postgres://u:pw@127.0.0.1:1/x?connect_timeout=1", "--listen", "127.0.0.1:0"},
	} {
		var out, errb bytes.Buffer
		err := run(context.Background(), args, &out, &errb)
		if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("%s: %v", args[0], err)
		}
		if line := oneLine(err.Error()); strings.Contains(line, "\n") {
			t.Fatalf("not one line: %q", line)
		}
	}
}

// TestUnreachableReplica: a reachable primary with an unreachable
// --replica-url is one clear line and a non-usage error (exit 1).
func TestUnreachableReplica(t *testing.T) {
	t.Setenv("JWT_SECRET", strings.Repeat("s", 32))
	url := testenv.Postgres(t)
	err := run(context.Background(), []string{"serve", "--database-url", url, "--listen", "127.0.0.1:0",
		"--replica-url", "postgres://u:pw@127.0.0.1:1/x?connect_timeout=1"}, io.Discard, io.Discard)
	if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), "replica") ||
		!strings.Contains(err.Error(), "unreachable") || strings.Contains(err.Error(), "pw@") {
		t.Fatalf("serve with an unreachable replica: %v", err)
	}
}

func TestMigrateSeedServe(t *testing.T) {
	url := testenv.Postgres(t)
	redisURL := testenv.Redis(t)
	t.Setenv("JWT_SECRET", strings.Repeat("k", 32))
	ctx := context.Background()
	var out bytes.Buffer
	for i := 0; i < 2; i++ {
		if err := run(ctx, []string{"migrate", "--database-url", url}, &out, &out); err != nil {
			t.Fatalf("migrate #%d: %v", i+1, err)
		}
	}
	if err := run(ctx, []string{"seed", "--database-url", url, "--categories", "2", "--products", "30", "--users", "3"}, &out, &out); err != nil {
		t.Fatalf("seed: %v", err)
	}
	if !strings.Contains(out.String(), "seeded 2 categories, 30 products, 3 users") {
		t.Fatalf("seed output %q", out.String())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- run(sctx, []string{"serve", "--listen", addr, "--name", "cli-origin", "--database-url", url, "--redis-url", redisURL, "--access-log=false"}, io.Discard, io.Discard)
	}()
	// The first start (pool, Redis, templates) under the race detector on a
	// busy two-core machine may take seconds: wait as long as the stack
	// waits for its servers (30 s), and stop at once if serve returned.
	var resp *http.Response
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err = http.Get(fmt.Sprintf("http://%s/api/products/1/", addr))
		if err == nil {
			break
		}
		select {
		case serr := <-done:
			cancel()
			t.Fatalf("serve returned before answering: %v", serr)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("server never answered within 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Served-By") != "cli-origin" {
		t.Fatalf("product: %d %q", resp.StatusCode, resp.Header.Get("X-Served-By"))
	}
	cancel() // what SIGTERM does through signal.NotifyContext
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
}
