package auth

import (
	"hash/maphash"
	"sync"
)

// cacheShards splits the verified-token cache so concurrent readers on
// different tokens rarely share a lock's cache line.
const cacheShards = 16

// tokenCache remembers tokens that passed full verification. It is keyed on
// the exact token bytes (a Go map compares the whole string), so a token
// that differs from a verified one in any byte, tampered or not, can never
// hit its entry. Reads take only a read lock and never reorder anything;
// when a shard is full, an expired entry or else an arbitrary one is
// evicted, which is cheap and good enough for a cache whose misses cost
// one signature check.
type tokenCache struct {
	seed   maphash.Seed
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu      sync.RWMutex
	entries map[string]cacheEntry
	limit   int
	_       [40]byte // keeps shards' locks on separate cache lines
}

// cacheEntry is what a successful verification proved.
type cacheEntry struct {
	id Identity
	// from is when the token was verified and until is its exp, both in
	// Unix nanoseconds: the entry answers only for now in [from, until), so
	// neither an expired token nor a clock stepping backwards past nbf can
	// be served from the cache.
	from, until int64
	// gen is the key-set generation the token was verified under; removing
	// or replacing a key bumps the generation and orphans the entries.
	gen uint64
}

func newTokenCache(size int) *tokenCache {
	c := &tokenCache{seed: maphash.MakeSeed()}
	// Rounding down keeps the total at or under size (for sizes of at
	// least cacheShards; smaller caches still get one entry per shard).
	per := max(1, size/cacheShards)
	for i := range c.shards {
		c.shards[i].entries = make(map[string]cacheEntry)
		c.shards[i].limit = per
	}
	return c
}

func (c *tokenCache) shard(token []byte) *cacheShard {
	return &c.shards[maphash.Bytes(c.seed, token)%cacheShards]
}

// get returns the identity verified for exactly these token bytes, if that
// verification still holds at now under key-set generation gen.
func (c *tokenCache) get(token []byte, now int64, gen uint64) (Identity, bool) {
	s := c.shard(token)
	s.mu.RLock()
	e, ok := s.entries[string(token)]
	s.mu.RUnlock()
	if !ok || e.gen != gen || now < e.from || now >= e.until {
		return Identity{}, false
	}
	return e.id, true
}

// put remembers a verified token. The token bytes are copied.
func (c *tokenCache) put(token []byte, e cacheEntry) {
	if e.until <= e.from {
		return
	}
	s := c.shard(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entries[string(token)]; !ok && len(s.entries) >= s.limit {
		s.evictOne(e.from)
	}
	s.entries[string(token)] = e
}

// evictOne drops one entry, preferring one that has expired. It looks at a
// handful of entries only, so an insert stays O(1); Go's map iteration
// starts at a random position, so the choice is spread over the shard.
func (s *cacheShard) evictOne(now int64) {
	const probe = 8
	var victim string
	n := 0
	for k, e := range s.entries {
		if now >= e.until {
			victim = k
			break
		}
		if n == 0 {
			victim = k
		}
		n++
		if n == probe {
			break
		}
	}
	delete(s.entries, victim)
}

// len is the number of entries, for tests and metrics.
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.entries)
		s.mu.RUnlock()
	}
	return n
}
