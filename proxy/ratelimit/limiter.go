package ratelimit

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"time"
)

// DefaultMaxKeys is the number of buckets a Limiter keeps when Config.MaxKeys
// is zero: under 10 MB of state, enough for every client of a busy shop.
const DefaultMaxKeys = 100000

// ErrInvalidConfig is wrapped by every error Config.Validate returns; fix the
// named field (rate, burst or max_keys) in the edge configuration.
var ErrInvalidConfig = errors.New("ratelimit: invalid config")

// Config describes one family of token buckets, for example "per client IP
// on the API routes". The zero value means "no limit".
type Config struct {
	// Rate is the sustained number of requests per second each key may make.
	// Zero (or +Inf) disables limiting: Allow always answers true.
	Rate float64 `yaml:"rate"`
	// Burst is how many requests a key may make at once after being idle
	// long enough to fill its bucket. Zero means max(1, ceil(Rate)).
	Burst int `yaml:"burst"`
	// MaxKeys caps the number of buckets kept. When it is reached the least
	// recently used bucket of the same shard is forgotten, which at worst
	// hands that key a fresh, full bucket. Zero means DefaultMaxKeys.
	MaxKeys int `yaml:"max_keys"`
}

// Validate reports every problem in c at once, each wrapping
// ErrInvalidConfig, so a bad configuration file can be fixed in one go.
func (c Config) Validate() error {
	var errs []error
	if math.IsNaN(c.Rate) || c.Rate < 0 {
		errs = append(errs, fmt.Errorf("%w: rate must be >= 0 requests per second, got %v", ErrInvalidConfig, c.Rate))
	}
	if c.Burst < 0 {
		errs = append(errs, fmt.Errorf("%w: burst must be >= 0, got %d", ErrInvalidConfig, c.Burst))
	}
	if c.MaxKeys < 0 {
		errs = append(errs, fmt.Errorf("%w: max_keys must be >= 0, got %d", ErrInvalidConfig, c.MaxKeys))
	}
	return errors.Join(errs...)
}

// maxShards bounds the number of shards; 64 keeps lock contention negligible
// on small machines while each shard still holds enough keys for its LRU
// order to mean something.
const maxShards = 64

// minPerShard is the smallest shard worth having: below it, MaxKeys is
// split over fewer shards instead.
const minPerShard = 4

// Limiter is a set of token buckets keyed by arbitrary bytes. It is safe for
// concurrent use. Buckets follow the generic cell rate algorithm (GCRA), the
// integer form of a token bucket: each key stores only the theoretical
// arrival time of its next request, so refill needs no floating point and is
// exact to the nanosecond.
type Limiter struct {
	// interval is the time one token takes to refill, in nanoseconds.
	interval int64
	// tolerance is how far ahead of now a key's theoretical arrival time may
	// run before it is refused: (Burst-1) intervals.
	tolerance int64
	unlimited bool
	seed      maphash.Seed
	mask      uint64
	shards    []shard
}

// shard is one lock and its buckets, in LRU order (head most recent).
type shard struct {
	mu      sync.Mutex
	index   map[string]int32
	buckets []bucket
	head    int32
	tail    int32
	limit   int
	// pad keeps neighbouring shards' mutexes off one cache line.
	_ [64]byte
}

// bucket is one key's state plus its links in the shard's LRU list.
type bucket struct {
	key        string
	tat        int64 // theoretical arrival time, Unix nanoseconds
	prev, next int32
}

const none = -1

// New builds a Limiter from cfg. Values that Validate would reject are
// treated as their documented defaults (a negative or NaN Rate disables the
// limit), so New never fails and never panics; call Validate first to report
// them.
func New(cfg Config) *Limiter {
	l := &Limiter{seed: maphash.MakeSeed()}
	if !(cfg.Rate > 0) || math.IsInf(cfg.Rate, 1) {
		l.unlimited = true
		return l
	}
	burst := cfg.Burst
	if burst <= 0 {
		burst = int(math.Max(1, math.Ceil(cfg.Rate)))
	}
	interval := 1e9 / cfg.Rate
	if interval < 1 {
		interval = 1
	}
	l.interval = int64(interval)
	// Saturate rather than overflow for absurd bursts.
	tol := float64(burst-1) * interval
	if tol > math.MaxInt64/4 {
		tol = math.MaxInt64 / 4
	}
	l.tolerance = int64(tol)

	maxKeys := cfg.MaxKeys
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	n := maxShards
	for n > 1 && maxKeys/n < minPerShard {
		n >>= 1
	}
	l.mask = uint64(n - 1)
	l.shards = make([]shard, n)
	for i := range l.shards {
		s := &l.shards[i]
		s.index = make(map[string]int32)
		s.head, s.tail = none, none
		// Indices are int32; no real configuration comes near the cap.
		s.limit = min(maxKeys/n, math.MaxInt32)
	}
	return l
}

// Allow takes one token from key's bucket at time now. When the bucket is
// empty it answers false and how long until a token is available, which the
// server rounds up into a Retry-After header (RFC 9110 section 10.2.3).
// key is not retained, so the caller may reuse its memory.
func (l *Limiter) Allow(key []byte, now time.Time) (ok bool, retryAfter time.Duration) {
	if l.unlimited {
		return true, 0
	}
	return allow(l, &l.shards[maphash.Bytes(l.seed, key)&l.mask], key, now)
}

// AllowString is Allow for a key held as a string, such as a verified user
// id, without converting it. It shares buckets with Allow: the same bytes
// are the same key. Like Allow, it does not retain key.
func (l *Limiter) AllowString(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	if l.unlimited {
		return true, 0
	}
	return allow(l, &l.shards[maphash.String(l.seed, key)&l.mask], key, now)
}

// allow is the GCRA step on one shard: a key may go when its theoretical
// arrival time is at most tolerance ahead of now, and each admitted request
// pushes that time one interval further.
func allow[K string | []byte](l *Limiter, s *shard, key K, now time.Time) (bool, time.Duration) {
	t := now.UnixNano()
	s.mu.Lock()
	i, found := s.index[string(key)]
	if found {
		s.moveToFront(i)
	} else {
		// Copy even a string key: callers on fasthttp sometimes view
		// reused buffers as strings, and a bucket outlives the request.
		i = s.insert(strings.Clone(string(key)))
		s.buckets[i].tat = t
	}
	b := &s.buckets[i]
	tat := max(b.tat, t)
	if wait := tat - l.tolerance - t; wait > 0 {
		s.mu.Unlock()
		return false, time.Duration(wait)
	}
	b.tat = tat + l.interval
	s.mu.Unlock()
	return true, 0
}

// RetryAfterSeconds turns the wait Allow returned into the delta-seconds of
// a Retry-After header (RFC 9110 section 10.2.3): rounded up, so a client
// that obeys it is not refused again, and at least 1.
func RetryAfterSeconds(d time.Duration) int {
	if d <= time.Second {
		return 1
	}
	s := d / time.Second
	if d%time.Second != 0 {
		s++
	}
	if s > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(s)
}

// Len is the number of keys currently tracked; it never exceeds MaxKeys.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.index)
		s.mu.Unlock()
	}
	return n
}

// insert adds key at the front of the LRU list, reusing the least recently
// used slot when the shard is full. The caller holds s.mu.
func (s *shard) insert(k string) int32 {
	var i int32
	if len(s.buckets) < s.limit {
		i = int32(len(s.buckets))
		s.buckets = append(s.buckets, bucket{key: k, prev: none, next: none})
	} else {
		i = s.tail
		s.unlink(i)
		delete(s.index, s.buckets[i].key)
		s.buckets[i] = bucket{key: k, prev: none, next: none}
	}
	s.index[k] = i
	s.pushFront(i)
	return i
}

func (s *shard) moveToFront(i int32) {
	if s.head == i {
		return
	}
	s.unlink(i)
	s.pushFront(i)
}

func (s *shard) unlink(i int32) {
	b := &s.buckets[i]
	if b.prev != none {
		s.buckets[b.prev].next = b.next
	} else {
		s.head = b.next
	}
	if b.next != none {
		s.buckets[b.next].prev = b.prev
	} else {
		s.tail = b.prev
	}
	b.prev, b.next = none, none
}

func (s *shard) pushFront(i int32) {
	b := &s.buckets[i]
	b.prev = none
	b.next = s.head
	if s.head != none {
		s.buckets[s.head].prev = i
	}
	s.head = i
	if s.tail == none {
		s.tail = i
	}
}
