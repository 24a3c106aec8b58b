package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// syncBuffer is a bytes.Buffer safe for the flusher and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := strings.TrimSuffix(s.b.String(), "\n")
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// TestAccessLogFlushedOnShutdown: lines still in the buffers (a large buffer,
// a flush interval longer than the test) are all written by Shutdown.
func TestAccessLogFlushedOnShutdown(t *testing.T) {
	o := newOrigin(t, "o1", nil)
	cfg := testConfig(o)
	cfg.AccessLog.Enabled, cfg.AccessLog.Sample = true, 1
	cfg.AccessLog.BufferBytes, cfg.AccessLog.FlushInterval = 4<<20, time.Minute
	out := &syncBuffer{}
	e := startEdge(t, cfg, Options{AccessLog: out})
	const n = 60
	for i := 0; i < n; i++ {
		if r := e.do(t, "GET", fmt.Sprintf("/products/?i=%d", i), "", fmt.Sprintf("X-Request-Id: req-%d", i)); r.StatusCode() != 200 {
			t.Fatalf("status %d", r.StatusCode())
		}
	}
	if got := len(out.lines()); got != 0 {
		t.Fatalf("%d lines written before shutdown with a 4 MiB buffer and a 1m flush interval", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	lines := out.lines()
	if len(lines) != n {
		t.Fatalf("%d lines after shutdown, want %d", len(lines), n)
	}
	seen := map[string]bool{}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if m["msg"] != "access" || m["method"] != "GET" || m["status"] != 200.0 || m["upstream"] != "o1" || m["tries"] != 1.0 || m["client"] != "127.0.0.1" {
			t.Fatalf("line %s", l)
		}
		id := m["request_id"].(string)
		if m["uri"] != "/products/?i="+strings.TrimPrefix(id, "req-") {
			t.Fatalf("line %s: uri and request id disagree", l)
		}
		seen[id] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct request ids in %d lines", len(seen), n)
	}
}

// TestAccessLogSameFieldsAsZap: the buffered writer and the zap logger write the
// same fields in the same order for the same request (the bytes are pinned for
// identical entries in package accesslog; here ts and duration differ).
func TestAccessLogSameFieldsAsZap(t *testing.T) {
	o := newOrigin(t, "o1", nil)
	cfg := testConfig(o)
	cfg.AccessLog.Enabled, cfg.AccessLog.Sample = true, 1
	fast, slow := &syncBuffer{}, &syncBuffer{}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(slow)), zap.InfoLevel))
	a := startEdge(t, cfg, Options{AccessLog: fast})
	b := startEdge(t, cfg, Options{Logger: log})
	for _, e := range []*edge{a, b} {
		e.do(t, "GET", "/products/?q=%22x%22", "", "X-Request-Id: same-id-1")
	}
	_ = a.s.Shutdown(context.Background())
	_ = b.s.Shutdown(context.Background())
	pick := func(lines []string) string {
		for _, l := range lines {
			if strings.Contains(l, `"msg":"access"`) {
				return l
			}
		}
		t.Fatalf("no access line in %q", lines)
		return ""
	}
	la, lb := pick(fast.lines()), pick(slow.lines())
	norm := func(l string) string {
		var keys []string
		d := json.NewDecoder(strings.NewReader(l))
		_, _ = d.Token()
		for d.More() {
			k, _ := d.Token()
			v, _ := d.Token()
			if k == "ts" || k == "duration" {
				v = "?"
			}
			keys = append(keys, fmt.Sprintf("%v=%v", k, v))
		}
		return strings.Join(keys, ",")
	}
	if norm(la) != norm(lb) {
		t.Fatalf("buffered writer and zap disagree:\n%s\n%s", la, lb)
	}
}
