package cache

import "sync"

// flight coalesces concurrent origin fetches of one primary key: the first
// caller (the leader) fetches; the others wait for it and then use what it
// stored, or fetch themselves when it stored nothing they may use (a
// private answer is never shared, and a different Vary variant is not
// theirs).
type flight struct {
	mu sync.Mutex
	m  map[string]*call
}

// call is one fetch in progress. The leader sets the fields before done is
// closed; waiters read them only after.
type call struct {
	done chan struct{}
	// e is the entry the leader stored (nil when it stored nothing), key
	// the full Redis key it was stored under and vary its vary index.
	e    *entry
	key  string
	vary *varyIndex
}

// join returns the call for key and whether the caller leads it.
func (f *flight) join(key string) (*call, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = make(map[string]*call)
	}
	if c, ok := f.m[key]; ok {
		return c, false
	}
	c := &call{done: make(chan struct{})}
	f.m[key] = c
	return c, true
}

// tryLead starts a call only when none is in progress (background
// revalidation: one per key).
func (f *flight) tryLead(key string) (*call, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = make(map[string]*call)
	}
	if _, ok := f.m[key]; ok {
		return nil, false
	}
	c := &call{done: make(chan struct{})}
	f.m[key] = c
	return c, true
}

// finish publishes the leader's result and releases the waiters.
func (f *flight) finish(key string, c *call) {
	f.mu.Lock()
	delete(f.m, key)
	f.mu.Unlock()
	close(c.done)
}
