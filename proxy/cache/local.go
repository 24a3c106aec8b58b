package cache

import (
	"hash/maphash"
	"sync/atomic"

	"github.com/novashop/edge/proxy/internal/stripe"
)

// record is one decoded Redis value held in process memory: an entry, a
// vary index, or a tag version (isTag).
type record struct {
	e       *entry
	vary    *varyIndex
	version int64
	isTag   bool
	size    int64
	// used is the coarse clock tick of the last hit, for sampled LRU
	// eviction; it is written only when it changes, so hits on a hot entry
	// do not fight over its cache line.
	used atomic.Int64
}

const localShards = 64

// evictSample is how many records an eviction looks at before dropping the
// least recently used one (as Redis' own sampled LRU does).
const evictSample = 8

// localTable mirrors part of Redis in decoded form. Redis tracking
// invalidations remove records; a fill may insert only if no invalidation
// touched its shard (and no flush happened) since its Redis read began, so
// a reply that raced with an invalidation push is never kept.
//
// Single-flight contract: the table itself never fetches. Callers read
// (hit), or on a miss read Redis under a ticket from begin and offer the
// result to insert, which refuses it when the ticket went stale; concurrent
// callers that miss the same key each read Redis (cheap: one pipelined
// GET each), while origin fetches are coalesced
// one level up by flight.
type localTable struct {
	seed     maphash.Seed
	shards   [localShards]localShard
	used     atomic.Int64
	maxBytes int64
	flushes  atomic.Uint64
	cursor   atomic.Uint64 // where the next eviction walk starts
}

type localShard struct {
	// mu is striped by reader (stripe.Hint): the event loops look up the
	// same hot entry at once, and a plain RWMutex's reader count moved
	// between their cores on every hit (a quarter of a raw hit's CPU in
	// BenchmarkRawHitParallel). Writers (fills, invalidations, evictions)
	// lock every stripe.
	mu  stripe.RWMutex
	m   map[string]*record
	seq uint64
	// writes counts this edge's own stores into the shard (beginWrite and
	// a writer's insert). Our own SETs are not pushed back to us (NOLOOP),
	// so seq does not move when we write: without writes, a read that
	// started before our SET and finished after it would put the older
	// value back over ours, and no push would ever remove it.
	writes uint64
}

// ticket identifies the table state a Redis read (or, from beginWrite, a
// Redis write) started from.
type ticket struct {
	seq, flushes, writes uint64
	writer               bool
}

func newLocalTable(maxBytes int64) *localTable {
	t := &localTable{seed: maphash.MakeSeed(), maxBytes: maxBytes}
	for i := range t.shards {
		t.shards[i].m = make(map[string]*record)
	}
	return t
}

func (t *localTable) shard(key []byte) *localShard {
	return &t.shards[maphash.Bytes(t.seed, key)%localShards]
}

func (t *localTable) shardString(key string) *localShard {
	return &t.shards[maphash.String(t.seed, key)%localShards]
}

// get returns the record for key, or nil. It allocates nothing.
func (t *localTable) get(key []byte, tick int64) *record { return t.getFor(0, key, tick) }

// getFor is get for a reader with stripe hint h (stripe.Hint): the hit path's.
func (t *localTable) getFor(h uint, key []byte, tick int64) *record {
	s := t.shard(key)
	mu := s.mu.RLock(h)
	r := s.m[string(key)]
	mu.RUnlock()
	if r != nil && r.used.Load() != tick {
		r.used.Store(tick)
	}
	return r
}

// getString is get for a string key (tag version keys).
func (t *localTable) getString(key string, tick int64) *record {
	return t.getStringFor(0, key, tick)
}

// getStringFor is getString for a reader with stripe hint h.
func (t *localTable) getStringFor(h uint, key string, tick int64) *record {
	s := t.shardString(key)
	mu := s.mu.RLock(h)
	r := s.m[key]
	mu.RUnlock()
	if r != nil && r.used.Load() != tick {
		r.used.Store(tick)
	}
	return r
}

// begin returns the ticket a Redis read of key must present to insert.
func (t *localTable) begin(key string) ticket {
	s := t.shardString(key)
	f := t.flushes.Load()
	mu := s.mu.RLock(0)
	seq, w := s.seq, s.writes
	mu.RUnlock()
	return ticket{seq: seq, flushes: f, writes: w}
}

// beginWrite returns the ticket for inserting what this edge is about to
// write to Redis under key. It bumps the shard's writes, so reads already
// in flight (which may return the value being replaced) cannot insert; the
// writer's own insert then replaces whatever a read inserted meanwhile.
func (t *localTable) beginWrite(key string) ticket {
	s := t.shardString(key)
	f := t.flushes.Load()
	s.mu.Lock()
	s.writes++
	tk := ticket{seq: s.seq, flushes: f, writes: s.writes, writer: true}
	s.mu.Unlock()
	return tk
}

// insert stores r under key unless an invalidation or flush happened since
// tk was taken. It reports whether r was stored.
func (t *localTable) insert(key string, r *record, tk ticket, tick int64) bool {
	if r.size > t.maxBytes/4 {
		return false
	}
	r.used.Store(tick)
	s := t.shardString(key)
	s.mu.Lock()
	if s.seq != tk.seq || t.flushes.Load() != tk.flushes {
		s.mu.Unlock()
		return false
	}
	if s.writes != tk.writes {
		// A store of ours began or landed since the ticket. A read may
		// hold the value it replaced: refused. Two of our writes
		// overlapped: which SET Redis applied last is unknown here, so
		// neither is kept and the next read fetches the survivor.
		if tk.writer {
			if old := s.m[key]; old != nil {
				t.used.Add(-old.size)
				delete(s.m, key)
			}
			s.writes++
		}
		s.mu.Unlock()
		return false
	}
	if old := s.m[key]; old != nil {
		t.used.Add(-old.size)
	}
	s.m[key] = r
	t.used.Add(r.size)
	if tk.writer {
		s.writes++
	}
	s.mu.Unlock()
	if t.used.Load() > t.maxBytes {
		t.evict(key)
	}
	return true
}

// evict drops sampled least recently used records, walking the shards
// from a rotating start, until the table is within its bound again.
func (t *localTable) evict(keep string) {
	start := t.cursor.Add(1)
	for i := uint64(0); i < 2*localShards && t.used.Load() > t.maxBytes; i++ {
		s := &t.shards[(start+i)%localShards]
		s.mu.Lock()
		for n := 0; n < 4 && t.used.Load() > t.maxBytes; n++ {
			if !t.evictOne(s, keep) {
				break
			}
		}
		s.mu.Unlock()
	}
}

// evictOne drops the least recently used of a few records of s (map
// iteration order is random), never keep, and reports whether it dropped
// one. s.mu must be held.
func (t *localTable) evictOne(s *localShard, keep string) bool {
	var victim string
	var oldest int64
	found := false
	n := 0
	for k, r := range s.m {
		if k == keep {
			continue
		}
		if u := r.used.Load(); !found || u < oldest {
			victim, oldest, found = k, u, true
		}
		if n++; n == evictSample {
			break
		}
	}
	if !found {
		return false
	}
	t.used.Add(-s.m[victim].size)
	delete(s.m, victim)
	return true
}

// invalidate removes key and bumps its shard's sequence, so reads of it
// that are in flight cannot insert what they got.
func (t *localTable) invalidate(key string) {
	s := t.shardString(key)
	s.mu.Lock()
	s.seq++
	if r := s.m[key]; r != nil {
		t.used.Add(-r.size)
		delete(s.m, key)
	}
	s.mu.Unlock()
}

// flush removes everything (Redis connection lost: tracking state is gone).
func (t *localTable) flush() {
	t.flushes.Add(1)
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		s.seq++
		for k, r := range s.m {
			t.used.Add(-r.size)
			delete(s.m, k)
		}
		s.mu.Unlock()
	}
}

// bytes reports the memory the table accounts for.
func (t *localTable) bytes() int64 { return t.used.Load() }
