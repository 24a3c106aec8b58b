package loginguard

import (
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"
)

// Defaults of Config's zero fields.
const (
	DefaultMax     = 10
	DefaultWindow  = time.Minute
	DefaultMaxKeys = 100_000
)

// shards spreads usernames over independent locks so concurrent logins of
// different users rarely contend.
const shards = 32

// ErrConfig means a Config field is out of range; the message names it.
var ErrConfig = errors.New("loginguard: bad configuration")

// Config sets the throttle. The zero value means the defaults.
type Config struct {
	// Max is how many failed logins one username may have per Window
	// before attempts are refused; 0 means DefaultMax (10).
	Max int
	// Window is the length of the fixed window failures are counted in;
	// 0 means DefaultWindow (one minute).
	Window time.Duration
	// MaxKeys bounds how many usernames are tracked at once; 0 means
	// DefaultMaxKeys. When full, the oldest window of a shard is dropped
	// first, so memory stays bounded even under a spray of usernames.
	MaxKeys int
	// Now is the clock; nil means time.Now. Tests pass a fake one.
	Now func() time.Time
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Max < 0 {
		errs = append(errs, fmt.Errorf("%w: Max must not be negative", ErrConfig))
	}
	if c.Window < 0 {
		errs = append(errs, fmt.Errorf("%w: Window must not be negative", ErrConfig))
	}
	if c.MaxKeys < 0 {
		errs = append(errs, fmt.Errorf("%w: MaxKeys must not be negative", ErrConfig))
	}
	return errors.Join(errs...)
}

type entry struct {
	start    time.Time // when this window began
	failures int
}

type shard struct {
	mu sync.Mutex
	m  map[string]entry
}

// Guard counts failed logins per username. It is safe for concurrent use.
type Guard struct {
	max, perShard int
	window        time.Duration
	now           func() time.Time
	seed          maphash.Seed
	shards        [shards]shard
}

// New makes a Guard.
func New(c Config) (*Guard, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Max == 0 {
		c.Max = DefaultMax
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.MaxKeys == 0 {
		c.MaxKeys = DefaultMaxKeys
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	g := &Guard{max: c.Max, window: c.Window, now: c.Now, seed: maphash.MakeSeed(),
		perShard: max(1, c.MaxKeys/shards)}
	for i := range g.shards {
		g.shards[i].m = make(map[string]entry)
	}
	return g, nil
}

func (g *Guard) shard(username string) *shard {
	return &g.shards[maphash.String(g.seed, username)%shards]
}

// Allow reports whether username may try to log in now; when it may not,
// wait says how long until it may (for Retry-After). A nil Guard allows
// everything.
func (g *Guard) Allow(username string) (wait time.Duration, ok bool) {
	if g == nil {
		return 0, true
	}
	now := g.now()
	s := g.shard(username)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, found := s.m[username]
	if !found {
		return 0, true
	}
	end := e.start.Add(g.window)
	if !now.Before(end) {
		delete(s.m, username)
		return 0, true
	}
	if e.failures < g.max {
		return 0, true
	}
	return end.Sub(now), false
}

// Fail records a failed login of username.
func (g *Guard) Fail(username string) {
	if g == nil {
		return
	}
	now := g.now()
	s := g.shard(username)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, found := s.m[username]
	if found && !now.Before(e.start.Add(g.window)) {
		found = false
	}
	if !found {
		if len(s.m) >= g.perShard {
			g.evict(s, now)
		}
		e = entry{start: now}
	}
	e.failures++
	s.m[username] = e
}

// Succeed forgets username's failures: the owner got in, so earlier typos
// must not count against their next session.
func (g *Guard) Succeed(username string) {
	if g == nil {
		return
	}
	s := g.shard(username)
	s.mu.Lock()
	delete(s.m, username)
	s.mu.Unlock()
}

// Len is the number of usernames tracked now (for tests and metrics).
func (g *Guard) Len() int {
	n := 0
	for i := range g.shards {
		s := &g.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// evict makes room in a full shard: expired windows go first; if none has
// expired, the oldest window goes. The scan is O(shard size) but runs only
// when a shard is full, and MaxKeys/shards keeps a shard small.
func (g *Guard) evict(s *shard, now time.Time) {
	var oldest string
	var oldestStart time.Time
	first := true
	for k, e := range s.m {
		if !now.Before(e.start.Add(g.window)) {
			delete(s.m, k)
			continue
		}
		if first || e.start.Before(oldestStart) {
			oldest, oldestStart, first = k, e.start, false
		}
	}
	if len(s.m) >= g.perShard && !first {
		delete(s.m, oldest)
	}
}
