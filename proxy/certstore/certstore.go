// Package certstore is a certmagic.Storage on Redis (rueidis), so a fleet of
// edges shares one ACME account, one set of certificates and one renewal lock
// (issue 12, tls.acme). Files are hashes (value, modification time) under
// Prefix+key; a sorted set of every key, ordered by name, answers the
// directory questions (List, Exists and Stat on a prefix, Delete of a tree).
// Locks are SET NX PX with a random token, refreshed while held and released
// only by their holder, so a crashed edge's lock expires after LockTTL.
package certstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/redis/rueidis"
)

// KeyInfo is certmagic's file description.
type KeyInfo = certmagic.KeyInfo

var _ certmagic.Storage = (*Storage)(nil)
var _ certmagic.TryLocker = (*Storage)(nil)

// Storage keeps certmagic's files and locks in Redis.
type Storage struct {
	rc      rueidis.Client
	prefix  string
	lockTTL time.Duration
	poll    time.Duration

	mu    sync.Mutex
	held  map[string]heldLock
	index string
}

type heldLock struct {
	token string
	stop  context.CancelFunc
}

// Options tune a Storage; zero values take the defaults.
type Options struct {
	// Prefix namespaces every key; edges that share certificates must agree.
	Prefix string
	// LockTTL is how long a lock outlives a holder that stopped refreshing it.
	LockTTL time.Duration
	// Poll is how often a waiting Lock tries again.
	Poll time.Duration
}

// New returns a Storage over rc (the caller keeps and closes rc).
func New(rc rueidis.Client, o Options) *Storage {
	if o.Prefix == "" {
		o.Prefix = "novashop:acme:"
	}
	if o.LockTTL <= 0 {
		o.LockTTL = 30 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	return &Storage{rc: rc, prefix: o.Prefix, lockTTL: o.LockTTL, poll: o.Poll, held: map[string]heldLock{}, index: o.Prefix + "\x00index"}
}

func (s *Storage) fileKey(key string) string { return s.prefix + "f:" + key }

// Store puts value at key.
func (s *Storage) Store(ctx context.Context, key string, value []byte) error {
	now := strconv.FormatInt(time.Now().UnixNano(), 10)
	cmds := rueidis.Commands{
		s.rc.B().Hset().Key(s.fileKey(key)).FieldValue().FieldValue("v", rueidis.BinaryString(value)).FieldValue("m", now).Build(),
		s.rc.B().Zadd().Key(s.index).ScoreMember().ScoreMember(0, key).Build(),
	}
	for _, r := range s.rc.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return fmt.Errorf("certstore: store %s: %w", key, err)
		}
	}
	return nil
}

// Load returns the value at key, or an error wrapping fs.ErrNotExist.
func (s *Storage) Load(ctx context.Context, key string) ([]byte, error) {
	b, err := s.rc.Do(ctx, s.rc.B().Hget().Key(s.fileKey(key)).Field("v").Build()).AsBytes()
	if rueidis.IsRedisNil(err) {
		return nil, fmt.Errorf("certstore: %s: %w", key, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("certstore: load %s: %w", key, err)
	}
	return b, nil
}

// under returns every key below dir ("dir/..."), in name order.
func (s *Storage) under(ctx context.Context, dir string) ([]string, error) {
	p := strings.TrimSuffix(dir, "/") + "/"
	if dir == "" {
		p = ""
	}
	min, max := "["+p, "["+p+"\xff"
	if p == "" {
		min, max = "-", "+"
	}
	keys, err := s.rc.Do(ctx, s.rc.B().Zrangebylex().Key(s.index).Min(min).Max(max).Build()).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("certstore: list %s: %w", dir, err)
	}
	return keys, nil
}

// Delete removes key, and every key below it when it is a directory.
func (s *Storage) Delete(ctx context.Context, key string) error {
	keys, err := s.under(ctx, key)
	if err != nil {
		return err
	}
	keys = append(keys, key)
	for _, k := range keys {
		cmds := rueidis.Commands{
			s.rc.B().Del().Key(s.fileKey(k)).Build(),
			s.rc.B().Zrem().Key(s.index).Member(k).Build(),
		}
		for _, r := range s.rc.DoMulti(ctx, cmds...) {
			if err := r.Error(); err != nil {
				return fmt.Errorf("certstore: delete %s: %w", k, err)
			}
		}
	}
	return nil
}

// Exists reports whether key is a file or a directory.
func (s *Storage) Exists(ctx context.Context, key string) bool {
	_, err := s.Stat(ctx, key)
	return err == nil
}

// List returns the keys directly in dir, or every key below it when recursive.
func (s *Storage) List(ctx context.Context, dir string, recursive bool) ([]string, error) {
	keys, err := s.under(ctx, dir)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("certstore: %s: %w", dir, fs.ErrNotExist)
	}
	if recursive {
		return keys, nil
	}
	base := strings.TrimSuffix(dir, "/") + "/"
	if dir == "" {
		base = ""
	}
	var out []string
	seen := map[string]bool{}
	for _, k := range keys {
		rest := strings.TrimPrefix(k, base)
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[:i]
		}
		if child := base + rest; !seen[child] {
			seen[child] = true
			out = append(out, child)
		}
	}
	return out, nil
}

// Stat describes key: a file, a directory (IsTerminal false), or an error
// wrapping fs.ErrNotExist.
func (s *Storage) Stat(ctx context.Context, key string) (KeyInfo, error) {
	m, err := s.rc.Do(ctx, s.rc.B().Hmget().Key(s.fileKey(key)).Field("m", "v").Build()).ToArray()
	if err != nil {
		return KeyInfo{}, fmt.Errorf("certstore: stat %s: %w", key, err)
	}
	if len(m) == 2 {
		if ns, err := m[0].AsInt64(); err == nil {
			v, _ := m[1].AsBytes()
			return KeyInfo{Key: key, Modified: time.Unix(0, ns), Size: int64(len(v)), IsTerminal: true}, nil
		}
	}
	keys, err := s.under(ctx, key)
	if err != nil {
		return KeyInfo{}, err
	}
	if len(keys) > 0 {
		return KeyInfo{Key: key, IsTerminal: false}, nil
	}
	return KeyInfo{}, fmt.Errorf("certstore: %s: %w", key, fs.ErrNotExist)
}

var (
	refreshScript = rueidis.NewLuaScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) else return 0 end`)
	releaseScript = rueidis.NewLuaScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end`)
)

func (s *Storage) lockKey(name string) string { return s.prefix + "lock:" + name }

// Lock blocks until it holds name's lock or ctx ends. The lock is refreshed
// every LockTTL/3 until Unlock; a holder that dies loses it after LockTTL.
func (s *Storage) Lock(ctx context.Context, name string) error {
	_, err := s.acquire(ctx, name, true)
	return err
}

// TryLock takes name's lock if it is free, without waiting.
func (s *Storage) TryLock(ctx context.Context, name string) (bool, error) {
	return s.acquire(ctx, name, false)
}

func (s *Storage) acquire(ctx context.Context, name string, wait bool) (bool, error) {
	var tb [16]byte
	_, _ = rand.Read(tb[:])
	token := hex.EncodeToString(tb[:])
	for {
		err := s.rc.Do(ctx, s.rc.B().Set().Key(s.lockKey(name)).Value(token).Nx().Px(s.lockTTL).Build()).Error()
		if err == nil {
			break
		}
		if !rueidis.IsRedisNil(err) {
			return false, fmt.Errorf("certstore: lock %s: %w", name, err)
		}
		if !wait {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(s.poll):
		}
	}
	rctx, stop := context.WithCancel(context.Background())
	s.mu.Lock()
	s.held[name] = heldLock{token: token, stop: stop}
	s.mu.Unlock()
	go func() {
		t := time.NewTicker(s.lockTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
				_ = refreshScript.Exec(rctx, s.rc, []string{s.lockKey(name)}, []string{token, strconv.FormatInt(s.lockTTL.Milliseconds(), 10)}).Error()
			}
		}
	}()
	return true, nil
}

// Unlock releases name's lock if this Storage holds it.
func (s *Storage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	h, ok := s.held[name]
	delete(s.held, name)
	s.mu.Unlock()
	if !ok {
		return errors.New("certstore: unlock of a lock not held: " + name)
	}
	h.stop()
	if err := releaseScript.Exec(ctx, s.rc, []string{s.lockKey(name)}, []string{h.token}).Error(); err != nil {
		return fmt.Errorf("certstore: unlock %s: %w", name, err)
	}
	return nil
}

// abandon stops refreshing name's lock without releasing it, as a crash would
// (tests only).
func (s *Storage) abandon(name string) {
	s.mu.Lock()
	if h, ok := s.held[name]; ok {
		h.stop()
		delete(s.held, name)
	}
	s.mu.Unlock()
}
