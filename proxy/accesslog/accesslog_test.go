package accesslog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// fixedClock makes zap stamp the entry's own time.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time                         { return c.t }
func (c fixedClock) NewTicker(d time.Duration) *time.Ticker { return time.NewTicker(d) }

// zapLine is the line the edge wrote before this package: cmd/edge's logger
// (production JSON encoder, ISO 8601 time) and proxy's finish fields.
func zapLine(e *Entry) []byte {
	var buf bytes.Buffer
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(&buf)), zap.InfoLevel)
	log := zap.New(core, zap.WithClock(fixedClock{e.Time}))
	log.Info("access",
		zap.ByteString("method", e.Method),
		zap.ByteString("uri", e.URI),
		zap.Int("status", e.Status),
		zap.String("upstream", e.Upstream),
		zap.Int("tries", e.Tries),
		zap.Duration("duration", e.Duration),
		zap.Stringer("client", e.Client),
		zap.ByteString("request_id", e.RequestID),
	)
	return buf.Bytes()
}

var (
	base   = time.Date(2026, 12, 6, 15, 57, 16, 123987654, time.UTC)
	plus2  = time.FixedZone("X", 2*3600+30*60)
	minus7 = time.FixedZone("Y", -7*3600)
)

func entries() []Entry {
	return []Entry{
		{Time: base, Method: []byte("GET"), URI: []byte("/api/products/1/"), Status: 200, Upstream: "fixed-1", Tries: 1,
			Duration: 1234567 * time.Nanosecond, Client: net.ParseIP("127.0.0.1"), RequestID: []byte("0123456789abcdef")},
		{Time: base.Add(876 * time.Millisecond).In(plus2), Method: []byte("POST"), URI: []byte(`/q?a="b"&c=\d`), Status: 503,
			Tries: 3, Duration: 3 * time.Second, Client: net.ParseIP("2001:db8::1"), RequestID: nil},
		{Time: base.In(minus7), Method: []byte("GET"), URI: []byte("/caf\xc3\xa9/\xff\xfe/\x01\x1f\t\r\n\u2028"), Status: 404,
			Upstream: "o\"ne\\", Duration: 0, Client: net.IPv4(10, 0, 0, 7), RequestID: []byte("id\x7f")},
		{Time: base.Truncate(time.Second), Method: nil, URI: nil, Status: 0, Upstream: "", Tries: 0,
			Duration: -5 * time.Microsecond, Client: nil, RequestID: nil},
		{Time: base, Method: []byte("GET"), URI: []byte("/"), Status: 599, Duration: 90 * time.Minute,
			Client: net.IP{1, 2, 3}, RequestID: []byte("x")},
		{Time: base.Add(999999999), Method: []byte("HEAD"), URI: []byte("/a b"), Status: 304, Upstream: "日本",
			Duration: 1, Client: net.ParseIP("::ffff:192.0.2.1"), RequestID: []byte("\xe2\x82")},
	}
}

// TestSameBytesAsZap: for the same request both writers produce identical bytes.
func TestSameBytesAsZap(t *testing.T) {
	for i, e := range entries() {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			want := zapLine(&e)
			if got := AppendLine(nil, &e); !bytes.Equal(got, want) {
				t.Fatalf("AppendLine:\n got %q\nwant %q", got, want)
			}
			// Through a Writer, twice (the second line uses the cached timestamp).
			var out bytes.Buffer
			w := New(&out, Config{})
			w.Log(0, &e)
			w.Log(0, &e)
			_ = w.Close()
			if got := out.Bytes(); !bytes.Equal(got, append(append([]byte(nil), want...), want...)) {
				t.Fatalf("Writer:\n got %q\nwant %q twice", got, want)
			}
		})
	}
}

// TestTimestampCacheFollowsTheClock: the cached second is refreshed when the
// second or the location changes.
func TestTimestampCacheFollowsTheClock(t *testing.T) {
	var enc encoder
	e := entries()[0]
	for _, ts := range []time.Time{base, base.Add(time.Millisecond), base.Add(time.Second), base.Add(time.Second).In(plus2), base.Add(-time.Hour), base.Add(400 * 24 * time.Hour)} {
		e.Time = ts
		if got, want := enc.appendLine(nil, &e), zapLine(&e); !bytes.Equal(got, want) {
			t.Fatalf("at %v:\n got %q\nwant %q", ts, got, want)
		}
	}
}

func FuzzSameBytesAsZap(f *testing.F) {
	f.Add("GET", "/api/products/1/", "fixed-1", "abc", 200, 1, int64(1234567), []byte{127, 0, 0, 1}, int64(0))
	f.Add("P\x00ST", "/\xff\"\\", "\u2028", "\xe2\x82", 599, 3, int64(-1), []byte{}, int64(1<<40))
	f.Fuzz(func(t *testing.T, method, uri, upstream, id string, status, tries int, dur int64, ip []byte, ns int64) {
		e := Entry{Time: time.Unix(1_800_000_000, 0).Add(time.Duration(ns)).UTC(), Method: []byte(method), URI: []byte(uri),
			Status: status, Upstream: upstream, Tries: tries, Duration: time.Duration(dur), Client: net.IP(ip), RequestID: []byte(id)}
		if got, want := AppendLine(nil, &e), zapLine(&e); !bytes.Equal(got, want) {
			t.Fatalf("\n got %q\nwant %q", got, want)
		}
	})
}

// TestLogAllocatesNothing pins the hot path: appending a line allocates nothing
// (once the shard has its buffer).
func TestLogAllocatesNothing(t *testing.T) {
	w := New(discard{}, Config{BufferBytes: 4096})
	defer w.Close()
	es := entries()
	for i := range es {
		w.Log(0, &es[i]) // the shard's buffers and timestamp
	}
	i := 0
	allocs := testing.AllocsPerRun(2000, func() {
		e := &es[i%len(es)]
		w.Log(0, e)
		i++
	})
	if allocs != 0 {
		t.Fatalf("Log allocates %.1f times per line, want 0", allocs)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// recorder collects writes; each Write must hold whole lines.
type recorder struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	block  chan struct{} // when set, Write waits for it to close
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.block != nil {
		<-r.block
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes++
	if len(p) > 0 && p[len(p)-1] != '\n' {
		return 0, fmt.Errorf("write of %d bytes ends mid-line", len(p))
	}
	return r.buf.Write(p)
}

func (r *recorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := strings.TrimSuffix(r.buf.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func entryN(n int) Entry {
	e := entries()[0]
	e.RequestID = []byte(fmt.Sprintf("req-%06d", n))
	return e
}

func TestFlushWhenBufferFills(t *testing.T) {
	rec := &recorder{}
	// An hour-long interval: only a full buffer can cause a write.
	w := New(rec, Config{BufferBytes: 1024, FlushInterval: time.Hour, Shards: 1})
	defer w.Close()
	n := 0
	for len(rec.lines()) == 0 && n < 1000 {
		e := entryN(n)
		w.Log(0, &e)
		n++
		if n%8 == 0 {
			time.Sleep(time.Millisecond) // let the flusher run
		}
	}
	if len(rec.lines()) == 0 {
		t.Fatalf("%d lines (%d bytes each) logged into a 1024-byte buffer, nothing written", n, len(AppendLine(nil, &entries()[0])))
	}
	if n > 40 {
		t.Fatalf("the first write came after %d lines, want soon after ~1 KiB", n)
	}
}

func TestFlushOnTimer(t *testing.T) {
	rec := &recorder{}
	w := New(rec, Config{BufferBytes: 1 << 20, FlushInterval: 20 * time.Millisecond})
	defer w.Close()
	e := entryN(1)
	w.Log(7, &e)
	deadline := time.Now().Add(10 * time.Second)
	for len(rec.lines()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a line waited 10s with a 20ms flush interval")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := rec.lines(); len(got) != 1 || !strings.Contains(got[0], "req-000001") {
		t.Fatalf("written %q", got)
	}
}

// TestCloseFlushesEverything: lines still in the buffers at Close (a buffer
// large enough never to hand off, a timer that never fires) are all written.
func TestCloseFlushesEverything(t *testing.T) {
	rec := &recorder{}
	w := New(rec, Config{BufferBytes: 4 << 20, FlushInterval: time.Hour, Shards: 4})
	const total = 3000
	for i := 0; i < total; i++ {
		e := entryN(i)
		w.Log(uint64(i), &e)
	}
	if got := len(rec.lines()); got != 0 {
		t.Fatalf("%d lines written before Close with nothing full and no timer", got)
	}
	_ = w.Close()
	if got, d := len(rec.lines()), w.Dropped(); got != total || d != 0 {
		t.Fatalf("after Close: %d lines written, %d dropped, want %d and 0", got, d, total)
	}
}

// TestConcurrentLines: with many goroutines and small buffers, every line
// logged before Close is written exactly once or counted as dropped (the
// flusher competes for the CPU with the producers here), in order within a
// goroutine, and lines never interleave.
func TestConcurrentLines(t *testing.T) {
	for _, cfg := range []Config{{}, {BufferBytes: 512, Shards: 2}, {BufferBytes: 300, Shards: 8, FlushInterval: time.Millisecond}} {
		t.Run(fmt.Sprintf("%d-%d", cfg.BufferBytes, cfg.Shards), func(t *testing.T) {
			rec := &recorder{}
			w := New(rec, cfg)
			const workers, per = 8, 500
			var wg sync.WaitGroup
			for g := 0; g < workers; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					for i := 0; i < per; i++ {
						e := entryN(g*per + i)
						w.Log(uint64(g), &e)
					}
				}(g)
			}
			wg.Wait()
			_ = w.Close()
			lines := rec.lines()
			if d := int(w.Dropped()); len(lines)+d != workers*per || len(lines) == 0 {
				t.Fatalf("%d lines written + %d dropped, want %d", len(lines), d, workers*per)
			}
			seen := map[string]bool{}
			last := map[int]int{}
			for _, l := range lines {
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("line %q: %v", l, err)
				}
				id := m["request_id"].(string)
				if seen[id] {
					t.Fatalf("%s written twice", id)
				}
				seen[id] = true
				var n int
				fmt.Sscanf(id, "req-%d", &n)
				g := n / per
				if prev, ok := last[g]; ok && n < prev {
					t.Fatalf("goroutine %d's lines out of order: %d after %d", g, n, prev)
				}
				last[g] = n
			}
		})
	}
}

// TestDropsWhenOutputIsStuck: a stalled output does not stall Log; lines that
// find no buffer are counted, and everything else is written once it frees.
func TestDropsWhenOutputIsStuck(t *testing.T) {
	rec := &recorder{block: make(chan struct{})}
	var hooked int
	var mu sync.Mutex
	w := New(rec, Config{BufferBytes: 1024, Shards: 1, FlushInterval: time.Hour, OnDrop: func(n int) {
		mu.Lock()
		hooked += n
		mu.Unlock()
	}})
	const total = 2000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < total; i++ {
			e := entryN(i)
			w.Log(0, &e)
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Log blocked on a stuck output")
	}
	dropped := int(w.Dropped())
	if dropped == 0 {
		t.Fatalf("%d lines into two 1 KiB buffers with the output stuck: none dropped", total)
	}
	mu.Lock()
	if hooked != dropped {
		t.Fatalf("OnDrop saw %d lines, Dropped says %d", hooked, dropped)
	}
	mu.Unlock()
	close(rec.block)
	_ = w.Close()
	if got := len(rec.lines()); got+dropped != total {
		t.Fatalf("%d written + %d dropped != %d logged", got, dropped, total)
	}
}

// TestLogAfterClose: a straggler (a request finishing after shutdown's deadline)
// is written at once instead of sitting in a buffer nobody flushes.
func TestLogAfterClose(t *testing.T) {
	rec := &recorder{}
	w := New(rec, Config{})
	_ = w.Close()
	e := entryN(9)
	w.Log(3, &e)
	if got := rec.lines(); len(got) != 1 {
		t.Fatalf("after Close: %d lines written, want 1", len(got))
	}
	_ = w.Close()
}

func BenchmarkLog(b *testing.B) {
	w := New(discard{}, Config{})
	defer w.Close()
	b.RunParallel(func(pb *testing.PB) {
		e := entries()[0]
		var i uint64
		for pb.Next() {
			i++
			w.Log(i, &e)
		}
	})
}

func BenchmarkZap(b *testing.B) {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(discard{})), zap.InfoLevel))
	b.RunParallel(func(pb *testing.PB) {
		e := entries()[0]
		for pb.Next() {
			log.Info("access",
				zap.ByteString("method", e.Method), zap.ByteString("uri", e.URI), zap.Int("status", e.Status),
				zap.String("upstream", e.Upstream), zap.Int("tries", e.Tries), zap.Duration("duration", e.Duration),
				zap.Stringer("client", e.Client), zap.ByteString("request_id", e.RequestID))
		}
	})
}
