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
// first and read by the others, so a fleet resumes each other's sessions; a
// Redis failure keeps the keys in force and is retried at the next refresh.
type ticketKeys struct {
	rc     rueidis.Client // nil: keys are local to this process
	ns     string
	period time.Duration
	tc     *tls.Config
	log    *zap.Logger

	mu        sync.Mutex
	local     map[int64][32]byte
	refreshed time.Time
	epoch     int64
	lastErr   string
	failures  *metrics.Counter
}

// TicketStatus is the session ticket part of GET /admin/tls.
type TicketStatus struct {
	// Shared is true when the keys come from Redis.
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
		local:    map[int64][32]byte{},
		failures: set.NewCounter("edge_tls_ticket_key_refresh_failures_total"),
	}
	if cfg.Cache.Enabled && cfg.Cache.RedisURL != "" {
		opt, err := rueidis.ParseURL(cfg.Cache.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("%w: tls session tickets: %v", ErrInvalidOptions, err)
		}
		opt.DisableCache = true
		opt.Dialer.Timeout = 2 * time.Second
		rc, err := rueidis.NewClient(opt)
		if err != nil {
			// Sessions then resume only on this edge; the status says so.
			k.lastErr = "redis unreachable at start, ticket keys are local: " + err.Error()
			log.Warn("edge: tls session ticket keys are local to this edge", zap.Error(err))
		} else {
			k.rc = rc
		}
	}
	k.refresh()
	return k, nil
}

// refreshEvery is how often refresh runs: a quarter period, within [250ms, 5m].
func (k *ticketKeys) refreshEvery() time.Duration {
	return min(max(k.period/4, 250*time.Millisecond), 5*time.Minute)
}

// refresh installs the keys of the current, previous and next periods.
func (k *ticketKeys) refresh() {
	e := time.Now().UnixNano() / int64(k.period)
	keys := make([][32]byte, 0, 3)
	for _, ep := range [3]int64{e, e - 1, e + 1} {
		key, err := k.key(ep)
		if err != nil {
			k.failures.Inc()
			k.mu.Lock()
			k.lastErr = err.Error()
			k.mu.Unlock()
			k.log.Error("edge: tls session ticket keys not refreshed, keeping the keys in force", zap.Error(err))
			return
		}
		keys = append(keys, key)
	}
	k.tc.SetSessionTicketKeys(keys)
	k.mu.Lock()
	k.refreshed, k.epoch = time.Now(), e
	if k.rc != nil {
		k.lastErr = ""
	}
	for ep := range k.local {
		if ep < e-1 {
			delete(k.local, ep)
		}
	}
	k.mu.Unlock()
}

// key returns period ep's key, creating it when no edge has yet.
func (k *ticketKeys) key(ep int64) ([32]byte, error) {
	var key [32]byte
	if k.rc == nil {
		k.mu.Lock()
		defer k.mu.Unlock()
		key, ok := k.local[ep]
		if !ok {
			_, _ = rand.Read(key[:])
			k.local[ep] = key
		}
		return key, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	name := k.ns + strconv.FormatInt(ep, 10)
	_, _ = rand.Read(key[:])
	// The key lives from the period before its own to the one after: 3 periods,
	// plus one of slack.
	ttl := 4 * k.period
	err := k.rc.Do(ctx, k.rc.B().Set().Key(name).Value(string(key[:])).Nx().Px(ttl).Build()).Error()
	if err != nil && !rueidis.IsRedisNil(err) {
		return key, fmt.Errorf("tls ticket key %s: %w", name, err)
	}
	b, err := k.rc.Do(ctx, k.rc.B().Get().Key(name).Build()).AsBytes()
	if err != nil {
		return key, fmt.Errorf("tls ticket key %s: %w", name, err)
	}
	if len(b) != len(key) {
		return key, fmt.Errorf("tls ticket key %s: %d bytes in redis, want %d", name, len(b), len(key))
	}
	copy(key[:], b)
	return key, nil
}

func (k *ticketKeys) status() *TicketStatus {
	k.mu.Lock()
	defer k.mu.Unlock()
	return &TicketStatus{Shared: k.rc != nil, Rotate: k.period, Epoch: k.epoch, Refreshed: k.refreshed, Error: k.lastErr}
}

func (k *ticketKeys) close() {
	if k.rc != nil {
		k.rc.Close()
	}
}
