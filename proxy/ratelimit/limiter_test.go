package ratelimit

import (
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"
	"unsafe"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestBurstHonoured(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		allow int // requests allowed at one instant
	}{
		{"burst 1", Config{Rate: 1, Burst: 1}, 1},
		{"burst 5", Config{Rate: 10, Burst: 5}, 5},
		{"burst 100 slow rate", Config{Rate: 0.5, Burst: 100}, 100},
		{"burst defaults to ceil(rate)", Config{Rate: 2.5}, 3},
		{"burst defaults to at least 1", Config{Rate: 0.1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(tt.cfg)
			key := []byte("10.0.0.1")
			for i := 0; i < tt.allow; i++ {
				if ok, ra := l.Allow(key, t0); !ok {
					t.Fatalf("request %d refused (retry after %v), want allowed", i+1, ra)
				}
			}
			if ok, _ := l.Allow(key, t0); ok {
				t.Fatalf("request %d allowed, want refused after a burst of %d", tt.allow+1, tt.allow)
			}
		})
	}
}

func TestRefillAndRetryAfter(t *testing.T) {
	l := New(Config{Rate: 10, Burst: 2})
	key := []byte("user-42")
	for i := 0; i < 2; i++ {
		if ok, _ := l.Allow(key, t0); !ok {
			t.Fatalf("burst request %d refused", i)
		}
	}
	ok, ra := l.Allow(key, t0)
	if ok || ra != 100*time.Millisecond {
		t.Fatalf("Allow after burst = %v, %v; want false, 100ms", ok, ra)
	}
	// Half way there the wait has halved.
	ok, ra = l.Allow(key, t0.Add(40*time.Millisecond))
	if ok || ra != 60*time.Millisecond {
		t.Fatalf("Allow at +40ms = %v, %v; want false, 60ms", ok, ra)
	}
	// Exactly at the announced time the request passes, and the next one waits
	// a full interval again.
	if ok, ra = l.Allow(key, t0.Add(100*time.Millisecond)); !ok {
		t.Fatalf("Allow at +100ms refused, retry after %v", ra)
	}
	if ok, ra = l.Allow(key, t0.Add(100*time.Millisecond)); ok || ra != 100*time.Millisecond {
		t.Fatalf("second Allow at +100ms = %v, %v; want false, 100ms", ok, ra)
	}
	// After a long idle period the bucket holds Burst tokens, not more.
	later := t0.Add(time.Hour)
	for i := 0; i < 2; i++ {
		if ok, _ := l.Allow(key, later); !ok {
			t.Fatalf("after idle, request %d refused", i)
		}
	}
	if ok, _ := l.Allow(key, later); ok {
		t.Fatal("idle time refilled more than Burst tokens")
	}
}

func TestSustainedRate(t *testing.T) {
	// Over 10 simulated seconds at 1000 requests/s offered, a 50/s limit
	// with burst 10 admits burst + rate*duration requests.
	l := New(Config{Rate: 50, Burst: 10})
	key := []byte("k")
	allowed := 0
	for ms := 0; ms < 10000; ms++ {
		if ok, _ := l.Allow(key, t0.Add(time.Duration(ms)*time.Millisecond)); ok {
			allowed++
		}
	}
	if want := 10 + 50*10; allowed < want-1 || allowed > want {
		t.Fatalf("allowed %d requests in 10s, want about %d", allowed, want)
	}
}

func TestKeysAreIndependent(t *testing.T) {
	l := New(Config{Rate: 1, Burst: 1})
	if ok, _ := l.Allow([]byte("a"), t0); !ok {
		t.Fatal("first key refused")
	}
	if ok, _ := l.Allow([]byte("b"), t0); !ok {
		t.Fatal("second key refused because of the first")
	}
	if ok, _ := l.Allow([]byte("a"), t0); ok {
		t.Fatal("first key allowed twice")
	}
}

func TestAllowStringSharesBuckets(t *testing.T) {
	l := New(Config{Rate: 1, Burst: 2})
	if ok, _ := l.AllowString("user-7", t0); !ok {
		t.Fatal("first request refused")
	}
	if ok, _ := l.Allow([]byte("user-7"), t0); !ok {
		t.Fatal("second request refused")
	}
	if ok, ra := l.AllowString("user-7", t0); ok || ra != time.Second {
		t.Fatalf("third request = %v, %v; want refused for 1s: Allow and AllowString must share the bucket", ok, ra)
	}
	if l.Len() != 1 {
		t.Fatalf("Len() = %d, want 1", l.Len())
	}
	if ok, _ := New(Config{}).AllowString("x", t0); !ok {
		t.Fatal("unlimited AllowString refused")
	}
}

func TestKeyMemoryNotRetained(t *testing.T) {
	l := New(Config{Rate: 1, Burst: 1})
	buf := []byte("1.2.3.4")
	l.Allow(buf, t0)
	copy(buf, "9.9.9.9")
	if ok, _ := l.Allow([]byte("1.2.3.4"), t0); ok {
		t.Fatal("limiter lost the key after the caller reused its buffer")
	}
}

func TestStringKeyNotRetained(t *testing.T) {
	l := New(Config{Rate: 1, Burst: 1})
	buf := []byte("1.2.3.4")
	l.AllowString(unsafe.String(&buf[0], len(buf)), t0) // a view of a reused buffer
	copy(buf, "9.9.9.9")
	if ok, _ := l.AllowString("1.2.3.4", t0); ok {
		t.Fatal("limiter kept a view of the caller's buffer instead of a copy")
	}
}

func TestClockGoingBackwards(t *testing.T) {
	l := New(Config{Rate: 1, Burst: 1})
	key := []byte("k")
	l.Allow(key, t0)
	ok, ra := l.Allow(key, t0.Add(-time.Minute))
	if ok {
		t.Fatal("a clock step backwards granted a token")
	}
	if ra <= 0 || ra > time.Minute+time.Second {
		t.Fatalf("retryAfter %v after a backwards step, want within (0, 61s]", ra)
	}
}

func TestUnlimited(t *testing.T) {
	for _, cfg := range []Config{{}, {Rate: math.Inf(1)}, {Rate: -1}, {Rate: math.NaN()}} {
		l := New(cfg)
		for i := 0; i < 1000; i++ {
			if ok, _ := l.Allow([]byte(strconv.Itoa(i%3)), t0); !ok {
				t.Fatalf("Config %+v refused a request", cfg)
			}
		}
		if l.Len() != 0 {
			t.Fatalf("unlimited limiter tracks %d keys", l.Len())
		}
	}
}

func TestFloodOfDistinctKeysStaysBounded(t *testing.T) {
	const maxKeys = 5000
	l := New(Config{Rate: 1, Burst: 1, MaxKeys: maxKeys})
	var key [8]byte
	for i := 0; i < 1_000_000; i++ {
		binary.LittleEndian.PutUint64(key[:], uint64(i))
		if ok, _ := l.Allow(key[:], t0); !ok {
			t.Fatalf("fresh key %d refused", i)
		}
		if i%100_000 == 0 && l.Len() > maxKeys {
			t.Fatalf("after %d keys Len() = %d > MaxKeys %d", i+1, l.Len(), maxKeys)
		}
	}
	if n := l.Len(); n > maxKeys || n < maxKeys/2 {
		t.Fatalf("Len() = %d, want in [%d, %d]", n, maxKeys/2, maxKeys)
	}
	// The most recent key is still remembered (LRU keeps it).
	if ok, _ := l.Allow(key[:], t0); ok {
		t.Fatal("most recently used key was evicted")
	}
}

func TestSmallMaxKeys(t *testing.T) {
	for _, maxKeys := range []int{1, 2, 3, 7, 63, 64, 65, 300} {
		l := New(Config{Rate: 1, MaxKeys: maxKeys})
		for i := 0; i < 10*maxKeys+10; i++ {
			l.Allow([]byte(strconv.Itoa(i)), t0)
			if l.Len() > maxKeys {
				t.Fatalf("MaxKeys %d: Len() = %d", maxKeys, l.Len())
			}
		}
		if l.Len() == 0 {
			t.Fatalf("MaxKeys %d: nothing tracked", maxKeys)
		}
	}
}

func TestLRUEvictsIdleKeyFirst(t *testing.T) {
	// One shard of 4 keys: MaxKeys below 2*minPerShard gives a single shard.
	l := New(Config{Rate: 1, Burst: 1, MaxKeys: 4})
	if len(l.shards) != 1 {
		t.Fatalf("want 1 shard, got %d", len(l.shards))
	}
	for _, k := range []string{"a", "b", "c", "d"} {
		l.Allow([]byte(k), t0)
	}
	l.Allow([]byte("a"), t0) // a is now the most recent; b is the oldest
	l.Allow([]byte("e"), t0) // evicts b
	if ok, _ := l.Allow([]byte("a"), t0); ok {
		t.Fatal("recently used key a was evicted")
	}
	if ok, _ := l.Allow([]byte("b"), t0); !ok {
		t.Fatal("least recently used key b was not the one evicted")
	}
}

func TestConcurrentAllow(t *testing.T) {
	l := New(Config{Rate: 1, Burst: 100, MaxKeys: 1000})
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			n := 0
			for i := 0; i < 2000; i++ {
				// All goroutines share "hot"; each also floods its own keys.
				if ok, _ := l.Allow([]byte("hot"), t0); ok {
					n++
				}
				l.Allow([]byte(strconv.Itoa(g*10000+i)), t0)
			}
			mu.Lock()
			allowed += n
			mu.Unlock()
		}(g)
	}
	wg.Wait()
	if allowed != 100 {
		t.Fatalf("shared key allowed %d times concurrently, want exactly the burst of 100", allowed)
	}
	if l.Len() > 1000 {
		t.Fatalf("Len() = %d > MaxKeys", l.Len())
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr int // number of problems reported
	}{
		{"zero value", Config{}, 0},
		{"normal", Config{Rate: 10, Burst: 20, MaxKeys: 1000}, 0},
		{"negative rate", Config{Rate: -1}, 1},
		{"NaN rate", Config{Rate: math.NaN()}, 1},
		{"everything wrong", Config{Rate: -1, Burst: -1, MaxKeys: -1}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig", err)
			}
			var joined interface{ Unwrap() []error }
			if !errors.As(err, &joined) || len(joined.Unwrap()) != tt.wantErr {
				t.Fatalf("Validate() = %v, want %d problems", err, tt.wantErr)
			}
		})
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want int
	}{
		{0, 1},
		{time.Nanosecond, 1},
		{999 * time.Millisecond, 1},
		{time.Second, 1},
		{time.Second + time.Nanosecond, 2},
		{90 * time.Second, 90},
		{time.Duration(math.MaxInt64), math.MaxInt32},
	}
	for _, tt := range tests {
		if got := RetryAfterSeconds(tt.in); got != tt.want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestAllowExistingKeyDoesNotAllocate(t *testing.T) {
	l := New(Config{Rate: 1e6, Burst: 1e6})
	key := []byte("203.0.113.7")
	l.Allow(key, t0)
	if n := testing.AllocsPerRun(1000, func() { l.Allow(key, t0) }); n != 0 {
		t.Fatalf("Allow on a known key allocates %v times, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { l.AllowString("203.0.113.7", t0) }); n != 0 {
		t.Fatalf("AllowString on a known key allocates %v times, want 0", n)
	}
}

func BenchmarkAllowExistingKey(b *testing.B) {
	l := New(Config{Rate: 1e9, Burst: 1 << 30})
	key := []byte("203.0.113.7")
	b.ReportAllocs()
	for b.Loop() {
		l.Allow(key, t0)
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	l := New(Config{Rate: 1e9, Burst: 1 << 30})
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = []byte("198.51.100." + strconv.Itoa(i))
		l.Allow(keys[i], t0)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Allow(keys[i&1023], t0)
			i++
		}
	})
}

func BenchmarkAllowNewKeys(b *testing.B) {
	l := New(Config{Rate: 10, MaxKeys: 10000})
	var key [8]byte
	b.ReportAllocs()
	i := uint64(0)
	for b.Loop() {
		binary.LittleEndian.PutUint64(key[:], i)
		l.Allow(key[:], t0)
		i++
	}
}
