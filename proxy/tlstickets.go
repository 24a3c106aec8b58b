package proxy

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/novashop/edge/proxy/config"
	"github.com/redis/rueidis"
	"go.uber.org/zap"
)

// ticketKeys keeps the TLS session ticket keys of the listener. Time is cut into
// periods of tls.session_tickets.rotate; period e has one 32-byte key. The key of
// the current period encrypts new tickets; the previous and next periods' keys
// still decrypt, so a ticket stays good for at least one period and edges whose
// clocks or refreshes differ by less than a period understand each other. With
// Redis, each period's key is created once (SET NX) by whichever edge comes
// first and read by the others, so a fleet resumes each other's sessions.
//
// Redis may be down at start or go down later; the edge never stops serving
// for it. Each period's key in force is remembered (known): a period whose key
// came from Redis keeps it through an outage (the fleet still agrees), a
// period first seen during the outage gets a local key. Every refresh retries
// Redis (connecting first when it was unreachable at start) and proposes the
// key it holds as the SET NX value, so after Redis comes back (even empty, after
// a restart) the edges converge on one key per period again. Keys replaced on
// convergence still decrypt until their period is over (retired), so sessions
// issued during the outage resume on the edge that issued them.
type ticketKeys struct {
	opt    *rueidis.ClientOption // nil: no Redis, keys are local to this process
	ns     string
	period time.Duration
	tc     *tls.Config
	log    *zap.Logger

	// rcMu guards rc, created lazily when Redis was unreachable at start.
	rcMu sync.Mutex
	rc   rueidis.Client

	mu        sync.Mutex
	known     map[int64][32]byte   // the key in force for each period
	retired   map[int64][][32]byte // replaced keys, decrypt-only until their period ends
	refreshed time.Time
	epoch     int64
	shared    bool // the last refresh read every key from Redis
	lastErr   string
	failures  *metrics.Counter
}

// TicketStatus is the session ticket part of GET /admin/tls.
type TicketStatus struct {
	// Shared is true when the last refresh read the keys from Redis.
	Shared    bool          `json:"shared"`
	Rotate    time.Duration `json:"rotate_ns"`
	Epoch     int64         `json:"epoch"`
	Refreshed time.Time     `json:"refreshed"`
	Error     string        `json:"error,omitempty"`
}

func newTicketKeys(cfg config.Config, tc *tls.Config, log *zap.Logger, set *metrics.Set) (*ticketKeys, error) {
	k := &ticketKeys{
		ns:       cfg.TLS.SessionTickets.Namespace,
		period:   cfg.TLS.SessionTickets.Rotate,
		tc:       tc,
		log:      log,
		known:    map[int64][32]byte{},
		retired:  map[int64][][32]byte{},
		failures: set.NewCounter("edge_tls_ticket_key_refresh_failures_total"),
	}
	if cfg.Cache.Enabled && cfg.Cache.RedisURL != "" {
		opt, err := rueidis.ParseURL(cfg.Cache.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("%w: tls session tickets: %v", ErrInvalidOptions, err)
		}
		opt.DisableCache = true
		opt.Dialer.Timeout = 2 * time.Second
		k.opt = &opt
	}
	k.refresh()
	return k, nil
}

// refreshEvery is how often refresh runs: a quarter period, within [250ms, 5m].
func (k *ticketKeys) refreshEvery() time.Duration {
	return min(max(k.period/4, 250*time.Millisecond), 5*time.Minute)
}

// client returns the Redis client, connecting when there is none yet; nil
// without Redis.
func (k *ticketKeys) client() (rueidis.Client, error) {
	k.rcMu.Lock()
	defer k.rcMu.Unlock()
	if k.opt == nil {
		return nil, nil
	}
	if k.rc == nil {
		rc, err := rueidis.NewClient(*k.opt)
		if err != nil {
			return nil, fmt.Errorf("redis unreachable, ticket keys are local: %w", err)
		}
		k.rc = rc
	}
	return k.rc, nil
}

// refresh installs the keys of the current, previous and next periods.
func (k *ticketKeys) refresh() {
	e := time.Now().UnixNano() / int64(k.period)
	rc, err := k.client()
	shared := rc != nil && err == nil
	var keys [3][32]byte
	for i, ep := range [3]int64{e, e - 1, e + 1} {
		k.mu.Lock()
		cand, ok := k.known[ep]
		k.mu.Unlock()
		if !ok {
			_, _ = rand.Read(cand[:])
		}
		key := cand
		if rc != nil && err == nil {
			if key, err = k.fetch(rc, ep, cand); err != nil {
				key, shared = cand, false
			}
		}
		keys[i] = key
		k.mu.Lock()
		if ok && cand != key {
			k.retired[ep] = append(k.retired[ep], cand)
		}
		k.known[ep] = key
		k.mu.Unlock()
	}
	k.mu.Lock()
	list := append(make([][32]byte, 0, 6), keys[:]...)
	for ep := range k.known {
		if ep < e-1 {
			delete(k.known, ep)
			delete(k.retired, ep)
		}
	}
	for _, ep := range [3]int64{e, e - 1, e + 1} {
		list = append(list, k.retired[ep]...)
	}
	k.refreshed, k.epoch, k.shared = time.Now(), e, shared
	if err != nil {
		k.lastErr = err.Error()
	} else {
		k.lastErr = ""
	}
	k.mu.Unlock()
	k.tc.SetSessionTicketKeys(list)
	if err != nil {
		k.failures.Inc()
		k.log.Warn("edge: tls session ticket keys not shared through redis; the keys in force stay, new periods get local keys", zap.Error(err))
	}
}

// key returns period ep's key as the last refresh installed it (for tests).
func (k *ticketKeys) key(ep int64) ([32]byte, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	key, ok := k.known[ep]
	return key, ok
}

// fetch returns period ep's key from Redis, storing cand when no edge has
// set one yet.
func (k *ticketKeys) fetch(rc rueidis.Client, ep int64, cand [32]byte) ([32]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	name := k.ns + strconv.FormatInt(ep, 10)
	// The key lives from the period before its own to the one after: 3 periods,
	// plus one of slack.
	ttl := 4 * k.period
	err := rc.Do(ctx, rc.B().Set().Key(name).Value(string(cand[:])).Nx().Px(ttl).Build()).Error()
	if err != nil && !rueidis.IsRedisNil(err) {
		return cand, fmt.Errorf("tls ticket key %s: %w", name, err)
	}
	b, err := rc.Do(ctx, rc.B().Get().Key(name).Build()).AsBytes()
	if err != nil {
		return cand, fmt.Errorf("tls ticket key %s: %w", name, err)
	}
	var key [32]byte
	if len(b) != len(key) {
		return cand, fmt.Errorf("tls ticket key %s: %d bytes in redis, want %d", name, len(b), len(key))
	}
	copy(key[:], b)
	return key, nil
}

func (k *ticketKeys) status() *TicketStatus {
	k.mu.Lock()
	defer k.mu.Unlock()
	return &TicketStatus{Shared: k.shared, Rotate: k.period, Epoch: k.epoch, Refreshed: k.refreshed, Error: k.lastErr}
}

func (k *ticketKeys) close() {
	k.rcMu.Lock()
	defer k.rcMu.Unlock()
	if k.rc != nil {
		k.rc.Close()
		k.rc = nil
	}
	k.opt = nil // a refresh racing with close stays local
}
