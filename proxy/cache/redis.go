package cache

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/novashop/edge/cachekeys"
)

// ErrUnavailable means Redis cannot be reached right now; the cache is
// passing traffic straight through and retries in the background. A purge
// that fails with it should be retried once Redis is back.
var ErrUnavailable = errors.New("cache: Redis unavailable")

// maxTagSeqs bounds the per-tag invalidation sequence map; when it fills
// up it is cleared and every fill in progress counts as raced.
const maxTagSeqs = 100000

// softPurgeScript marks an entry stale in place (byte offsetFlags), keeping
// its TTL, and leaves vary indexes and missing keys alone.
var softPurgeScript = rueidis.NewLuaScript(`
if redis.call('GETRANGE', KEYS[1], 0, 0) == 'E' then
  redis.call('SETRANGE', KEYS[1], 2, ARGV[1])
  return 1
end
return 0`)

// tier is the Redis side of the cache: the rueidis client with broadcast
// tracking, the circuit breaker, and the invalidation bookkeeping that
// keeps the local table and in-flight fills honest.
type tier struct {
	cfg   Config
	log   *zap.Logger
	local *localTable

	client atomic.Pointer[rueidis.Client]
	up     atomic.Bool
	// slowSince is when (unix ns) the first command timed out since the
	// last one succeeded; 0 while commands succeed.
	slowSince atomic.Int64
	probe     atomic.Bool
	done      chan struct{}
	wg        sync.WaitGroup

	// seq counts tag-version invalidations; tagSeq remembers the last one
	// per tag version key; floor is raised by flushes so that fills begun
	// before a flush count as raced.
	seq    atomic.Uint64
	floor  atomic.Uint64
	tagMu  sync.Mutex
	tagSeq map[string]uint64

	// trips counts the Redis round trips of get, tagVersions and do (the
	// request path), so tests can pin what a miss costs.
	trips atomic.Uint64
}

func newTier(cfg Config, log *zap.Logger, local *localTable) *tier {
	t := &tier{cfg: cfg, log: log, local: local, done: make(chan struct{}), tagSeq: make(map[string]uint64)}
	if err := t.connect(); err != nil {
		t.log.Warn("cache: Redis unreachable at start, passing requests straight through until it answers",
			zap.String("redis", redactURL(cfg.RedisURL)), zap.Error(err))
		t.startProbe()
		return t
	}
	t.up.Store(true)
	return t
}

// clientOption builds the rueidis options: short timeouts, no retries (a
// retry is latency the request pays), one pipelined connection, and
// broadcast tracking of the entry namespace and the tag versions, so every
// change to either is pushed to every edge whether or not it read the key.
//
// NOLOOP: Redis does not push this connection's own writes back to it. Without
// it every fill's SET came back as an invalidation that dropped the entry
// the edge had just put in its local table, so the next request for it read
// the whole entry from Redis again (and a purge's echo did the same). The
// edge applies its own writes to the local table itself (fill inserts,
// purges and writes invalidate or insert), and it reads Redis with plain
// GETs, not rueidis' DoCache: rueidis' client-side copy would never hear of
// our own writes any more, and the decoded local table is the in-process
// cache anyway. All our writes go over this one pipelined connection (no
// command here is blocking, and no DoMulti reaches BlockingPipeline), which
// is the connection NOLOOP applies to.
func clientOption(cfg Config) (rueidis.ClientOption, error) {
	opt, err := rueidis.ParseURL(cfg.RedisURL)
	if err != nil {
		return opt, fmt.Errorf("%w: redis_url: %v", ErrInvalidConfig, err)
	}
	opt.Dialer.Timeout = cfg.RedisTimeout
	opt.ConnWriteTimeout = max(4*cfg.RedisTimeout, 500*time.Millisecond)
	opt.DisableRetry = true
	opt.PipelineMultiplex = -1
	opt.CacheSizeEachConn = rueidisCacheBytes // tracking needs the cache on; nothing is read through it
	opt.ClientTrackingOptions = []string{"PREFIX", cfg.Namespace, "PREFIX", cachekeys.TagVersionPrefix, "BCAST", "NOLOOP"}
	return opt, nil
}

// rueidisCacheBytes is rueidis' client-side cache size: tracking (and so
// the invalidation pushes) needs its cache enabled, but the edge reads with
// plain GETs and keeps its copies in the local table, so it stays empty.
const rueidisCacheBytes = 1 << 20

func (t *tier) connect() error {
	opt, err := clientOption(t.cfg)
	if err != nil {
		return err
	}
	opt.OnInvalidations = t.onInvalidations
	c, err := rueidis.NewClient(opt)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.cfg.RedisTimeout)
	defer cancel()
	if err := c.Do(ctx, c.B().Ping().Build()).Error(); err != nil {
		c.Close()
		return err
	}
	t.client.Store(&c)
	return nil
}

// ok reports whether Redis is believed reachable.
func (t *tier) ok() bool { return t.up.Load() }

// breakerWindow is how long commands may keep timing out, with none
// succeeding, before the breaker trips: rueidis' own ConnWriteTimeout, after
// which it closes a connection whose server stopped answering.
func breakerWindow(cfg Config) time.Duration {
	return max(4*cfg.RedisTimeout, 500*time.Millisecond)
}

// succeeded notes a command that completed, ending a run of timeouts. It is
// on the hot path: a load, and a store only after a timeout.
func (t *tier) succeeded() {
	if t.slowSince.Load() != 0 {
		t.slowSince.Store(0)
	}
}

// fail trips the breaker on a connection-level error (not on a nil reply
// nor on an error reply from a healthy server): tripping logs once, drops
// local state and starts the background probe.
//
// A command that only timed out trips it when commands have kept timing
// out, none succeeding, for breakerWindow. Why not at once: at peak load
// the edge's own CPU queue can hold one Redis reply past RedisTimeout while
// the connection is sound, and tripping then emptied the local table and
// sent every request to the origins, which made Redis slower still; a
// load run at 8,000 req/s turned into 502s that way. The one request that
// timed out goes to the origin, and a dead server or connection still
// trips at once (rueidis reports those as errors other than the deadline,
// and flushes invalidation state through onInvalidations(nil)).
func (t *tier) fail(err error) {
	if err == nil || rueidis.IsRedisNil(err) {
		return
	}
	if _, ok := rueidis.IsRedisErr(err); ok {
		return
	}
	if errors.Is(err, context.DeadlineExceeded) {
		now := time.Now().UnixNano()
		first := t.slowSince.Load()
		if first == 0 {
			t.slowSince.CompareAndSwap(0, now)
			return
		}
		if now-first < int64(breakerWindow(t.cfg)) {
			return
		}
	}
	if t.up.CompareAndSwap(true, false) {
		t.log.Warn("cache: Redis unreachable, passing requests straight through until it answers",
			zap.String("redis", redactURL(t.cfg.RedisURL)), zap.Error(err))
		t.local.flush()
		t.floor.Store(t.seq.Add(1))
		t.startProbe()
	}
}

func (t *tier) startProbe() {
	if !t.probe.CompareAndSwap(false, true) {
		return
	}
	t.wg.Add(1)
	go t.probeLoop()
}

// probeLoop pings Redis until it answers, then resumes caching.
func (t *tier) probeLoop() {
	defer t.wg.Done()
	defer t.probe.Store(false)
	defer func() {
		if r := recover(); r != nil {
			t.log.Error("cache: Redis probe panicked", zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
		}
	}()
	tk := time.NewTicker(t.cfg.ProbeInterval)
	defer tk.Stop()
	for {
		select {
		case <-t.done:
			return
		case <-tk.C:
		}
		if cp := t.client.Load(); cp == nil {
			if err := t.connect(); err != nil {
				continue
			}
		} else {
			c := *cp
			ctx, cancel := context.WithTimeout(context.Background(), t.cfg.RedisTimeout)
			err := c.Do(ctx, c.B().Ping().Build()).Error()
			cancel()
			if err != nil {
				continue
			}
		}
		t.local.flush()
		t.floor.Store(t.seq.Add(1))
		t.slowSince.Store(0)
		t.up.Store(true)
		t.log.Info("cache: Redis reachable again, caching resumed", zap.String("redis", redactURL(t.cfg.RedisURL)))
		return
	}
}

// onInvalidations runs on rueidis' reader goroutine for every tracking push
// (nil: the connection was lost or Redis flushed, so everything goes).
func (t *tier) onInvalidations(msgs []rueidis.RedisMessage) {
	if msgs == nil {
		t.local.flush()
		t.floor.Store(t.seq.Add(1))
		return
	}
	for i := range msgs {
		k, err := msgs[i].ToString()
		if err != nil {
			continue
		}
		if strings.HasPrefix(k, cachekeys.TagVersionPrefix) {
			s := t.seq.Add(1)
			t.tagMu.Lock()
			if len(t.tagSeq) >= maxTagSeqs {
				clear(t.tagSeq)
				t.floor.Store(s)
			}
			t.tagSeq[k] = s
			t.tagMu.Unlock()
		}
		t.local.invalidate(k)
	}
}

// fillTicket is taken before an origin fetch begins.
func (t *tier) fillTicket() uint64 { return t.seq.Load() }

// raced reports whether any of the tag version keys was invalidated after
// the fill holding ticket began (or state was flushed since).
func (t *tier) raced(tagKeys []string, ticket uint64) bool {
	if t.floor.Load() > ticket {
		return true
	}
	t.tagMu.Lock()
	defer t.tagMu.Unlock()
	for _, k := range tagKeys {
		if t.tagSeq[k] > ticket {
			return true
		}
	}
	return false
}

func (t *tier) cli() (rueidis.Client, error) {
	if !t.up.Load() {
		return nil, ErrUnavailable
	}
	cp := t.client.Load()
	if cp == nil {
		return nil, ErrUnavailable
	}
	return *cp, nil
}

func (t *tier) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, t.cfg.RedisTimeout)
}

// get reads a value from Redis (the local table is the cache in front of
// it); nil, nil is a missing key.
func (t *tier) get(key string) ([]byte, error) {
	c, err := t.cli()
	if err != nil {
		return nil, err
	}
	ctx, cancel := t.ctx(context.Background())
	defer cancel()
	t.trips.Add(1)
	b, err := c.Do(ctx, c.B().Get().Key(key).Build()).AsBytes()
	if rueidis.IsRedisNil(err) {
		t.succeeded()
		return nil, nil
	}
	if err != nil {
		t.fail(err)
		return nil, err
	}
	t.succeeded()
	return b, nil
}

// tagVersions reads tag version keys in one round trip. A missing
// key is version 0; a value that is not an integer is an error, so the
// entry depending on it is not served as fresh.
func (t *tier) tagVersions(keys []string, out []int64) ([]int64, error) {
	c, err := t.cli()
	if err != nil {
		return out, err
	}
	ctx, cancel := t.ctx(context.Background())
	defer cancel()
	cmds := make([]rueidis.Completed, len(keys))
	for i, k := range keys {
		cmds[i] = c.B().Get().Key(k).Build()
	}
	t.trips.Add(1)
	for _, r := range c.DoMulti(ctx, cmds...) {
		v, err := tagVersionReply(r)
		if err != nil {
			if !errors.Is(err, errNotInteger) {
				t.fail(err)
			}
			return out, err
		}
		out = append(out, v)
	}
	t.succeeded()
	return out, nil
}

// errNotInteger marks a tag version whose value is not an integer.
var errNotInteger = errors.New("cache: tag version is not an integer")

// tagVersionReply reads one GET reply of a tag version key: a missing key
// is version 0; a value that is not an integer is an error (errNotInteger),
// so the entry depending on it is not served as fresh.
func tagVersionReply(r rueidis.RedisResult) (int64, error) {
	s, err := r.ToString()
	if rueidis.IsRedisNil(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	v, perr := strconv.ParseInt(s, 10, 64)
	if perr != nil {
		return 0, fmt.Errorf("%w: %q: %v", errNotInteger, s, perr)
	}
	return v, nil
}

// do runs commands in one round trip and returns the first error.
func (t *tier) do(cmds ...rueidis.Completed) ([]rueidis.RedisResult, error) {
	c, err := t.cli()
	if err != nil {
		return nil, err
	}
	ctx, cancel := t.ctx(context.Background())
	defer cancel()
	t.trips.Add(1)
	res := c.DoMulti(ctx, cmds...)
	for _, r := range res {
		if err := r.Error(); err != nil && !rueidis.IsRedisNil(err) {
			t.fail(err)
			return res, err
		}
	}
	t.succeeded()
	return res, nil
}

// scan calls fn with every key matching pattern on every node, stopping
// at the first error. It is O(keyspace) and meant for admin purges.
func (t *tier) scan(ctx context.Context, pattern string, fn func(key string) error) error {
	c, err := t.cli()
	if err != nil {
		return err
	}
	for _, node := range c.Nodes() {
		var cursor uint64
		for {
			sctx, cancel := context.WithTimeout(ctx, 10*t.cfg.RedisTimeout)
			e, err := node.Do(sctx, node.B().Scan().Cursor(cursor).Match(pattern).Count(1000).Build()).AsScanEntry()
			cancel()
			if err != nil {
				t.fail(err)
				return err
			}
			for _, k := range e.Elements {
				if err := fn(k); err != nil {
					return err
				}
			}
			if cursor = e.Cursor; cursor == 0 {
				break
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

// softPurge marks the entry under key stale; it reports whether one was.
func (t *tier) softPurge(ctx context.Context, key string) (bool, error) {
	c, err := t.cli()
	if err != nil {
		return false, err
	}
	sctx, cancel := t.ctx(ctx)
	defer cancel()
	n, err := softPurgeScript.Exec(sctx, c, []string{key}, []string{string(rune(flagSoftPurged))}).AsInt64()
	if err != nil {
		t.fail(err)
		return false, err
	}
	return n == 1, nil
}

func (t *tier) close() {
	select {
	case <-t.done:
		return
	default:
		close(t.done)
	}
	t.wg.Wait()
	if cp := t.client.Load(); cp != nil {
		(*cp).Close()
	}
}

// redactURL hides a password in a Redis URL before it reaches a log.
func redactURL(s string) string {
	at := strings.LastIndexByte(s, '@')
	sch := strings.Index(s, "://")
	if at < 0 || sch < 0 || at < sch {
		return s
	}
	return s[:sch+3] + "xxx" + s[at:]
}
