package auth

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
)

// Limits on what a JWKS endpoint may send.
const (
	// maxJWKSBody bounds one JWKS response; real sets are a few KiB.
	maxJWKSBody = 1 << 20
	// maxJWKSKeys bounds the keys kept from one set, which also bounds the
	// signature checks a kid-less token can cost.
	maxJWKSKeys = 64
	// jwksRetryMin is the first retry delay after a failed refresh; it
	// doubles up to the refresh period.
	jwksRetryMin = time.Second
)

// verificationKey is one public key and the one algorithm it verifies.
type verificationKey struct {
	kid string
	alg string
	key crypto.PublicKey
}

// keySet is an immutable snapshot of a JWKS; refreshes swap whole sets.
type keySet struct {
	byKID map[string]verificationKey
	all   []verificationKey
}

// forAlg lists the keys usable for alg, for tokens without a kid header.
func (ks *keySet) forAlg(alg string) []jwt.VerificationKey {
	var keys []jwt.VerificationKey
	for _, k := range ks.all {
		if k.alg == alg {
			keys = append(keys, k.key)
		}
	}
	return keys
}

// keeps reports whether every key of old is also in ks, unchanged. When it
// is not, tokens verified under old may no longer be valid.
func (ks *keySet) keeps(old *keySet) bool {
	for _, k := range old.all {
		if !ks.has(k) {
			return false
		}
	}
	return true
}

// has reports whether ks holds k: same kid, algorithm and key material.
func (ks *keySet) has(k verificationKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := k.key.(equaler)
	if !ok {
		return false
	}
	if k.kid != "" {
		n, found := ks.byKID[k.kid]
		return found && n.alg == k.alg && e.Equal(n.key)
	}
	for _, n := range ks.all {
		if n.kid == "" && n.alg == k.alg && e.Equal(n.key) {
			return true
		}
	}
	return false
}

// parseJWKS turns a JWKS document into a key set of its Ed25519 and RSA
// signing keys. Keys of other types or uses, or whose "alg" contradicts
// their type, are skipped and reported in skipped; a set with no usable
// key at all is an error, so a broken endpoint never replaces a good set.
func parseJWKS(body []byte) (ks *keySet, skipped []string, err error) {
	var raw jwkset.JWKSMarshal
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, nil, fmt.Errorf("JWKS is not valid JSON: %w", err)
	}
	ks = &keySet{byKID: make(map[string]verificationKey)}
	for i, m := range raw.Keys {
		if len(ks.all) == maxJWKSKeys {
			skipped = append(skipped, fmt.Sprintf("keys after the first %d", maxJWKSKeys))
			break
		}
		if m.USE != "" && m.USE != jwkset.UseSig {
			skipped = append(skipped, fmt.Sprintf("key %d (kid %q): use %q is not sig", i, m.KID, m.USE))
			continue
		}
		j, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d (kid %q): %v", i, m.KID, err))
			continue
		}
		key, alg, err := classifyKey(j.Key())
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d (kid %q): %v", i, m.KID, err))
			continue
		}
		if m.ALG != "" && string(m.ALG) != alg {
			skipped = append(skipped, fmt.Sprintf("key %d (kid %q): alg %q does not fit its key type (%s)", i, m.KID, m.ALG, alg))
			continue
		}
		vk := verificationKey{kid: m.KID, alg: alg, key: key}
		if vk.kid != "" {
			if _, dup := ks.byKID[vk.kid]; dup {
				skipped = append(skipped, fmt.Sprintf("key %d: duplicate kid %q", i, m.KID))
				continue
			}
			ks.byKID[vk.kid] = vk
		}
		ks.all = append(ks.all, vk)
	}
	if len(ks.all) == 0 {
		return nil, skipped, fmt.Errorf("JWKS has no usable Ed25519 or RSA signing key (%d keys skipped)", len(raw.Keys))
	}
	return ks, skipped, nil
}

// jwksSource keeps the current key set of one JWKS endpoint: fetched at
// start, refreshed in the background, re-fetched on demand for unknown key
// ids at most once per minRefetch, and kept as it was while the endpoint
// fails.
type jwksSource struct {
	url        string
	client     *http.Client
	log        *zap.Logger
	refresh    time.Duration
	minRefetch time.Duration
	timeout    time.Duration

	set atomic.Pointer[keySet]
	// gen counts key removals and replacements; see cacheEntry.gen.
	gen atomic.Uint64
	// fetches counts completed HTTP fetches, successful or not.
	fetches atomic.Int64

	storeMu sync.Mutex // orders set swaps and gen bumps

	mu          sync.Mutex // guards inflight, lastRefetch and failing
	inflight    chan struct{}
	lastRefetch time.Time
	failing     bool

	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

func newJWKSSource(cfg Config, log *zap.Logger) *jwksSource {
	ctx, cancel := context.WithCancel(context.Background())
	return &jwksSource{
		url:        cfg.JWKSURL,
		client:     &http.Client{Timeout: cfg.JWKSTimeout},
		log:        log.With(zap.String("jwks_url", cfg.JWKSURL)),
		refresh:    cfg.JWKSRefresh,
		minRefetch: cfg.JWKSMinRefetch,
		timeout:    cfg.JWKSTimeout,
		ctx:        ctx,
		cancel:     cancel,
		done:       make(chan struct{}),
	}
}

// start fetches the set once, then refreshes it in the background. A first
// fetch that fails is logged, not fatal: the edge can start before the key
// server, and retries quickly until it answers.
func (s *jwksSource) start() {
	if err := s.fetch(); err != nil {
		s.log.Warn("JWKS not loaded at start; will retry", zap.Error(err))
	}
	go s.run()
}

func (s *jwksSource) run() {
	defer close(s.done)
	retry := jwksRetryMin
	for {
		delay := s.refresh
		if s.set.Load() == nil || s.lastFailed() {
			delay = min(retry, s.refresh)
			retry = min(retry*2, s.refresh)
		} else {
			retry = jwksRetryMin
		}
		t := time.NewTimer(delay)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := s.fetch(); err != nil {
			s.log.Warn("JWKS refresh failed; keeping the last good key set", zap.Error(err))
		}
	}
}

// lastFailed reports whether the latest fetch failed, so the loop retries
// sooner than the refresh period.
func (s *jwksSource) lastFailed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failing
}

// fetch downloads and installs the key set; on any failure the current set
// stays. A panic is recovered and reported as an error so that neither the
// background loop nor a request goroutine dies of it.
func (s *jwksSource) fetch() (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("JWKS fetch panicked", zap.Any("panic", r), zap.Stack("stack"))
			err = fmt.Errorf("JWKS fetch panicked: %v", r)
		}
		s.fetches.Add(1)
		s.mu.Lock()
		s.failing = err != nil
		s.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxJWKSBody))
		return fmt.Errorf("JWKS endpoint answered %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBody+1))
	if err != nil {
		return fmt.Errorf("reading JWKS: %w", err)
	}
	if len(body) > maxJWKSBody {
		return fmt.Errorf("JWKS is larger than %d bytes", maxJWKSBody)
	}
	ks, skipped, err := parseJWKS(body)
	if len(skipped) > 0 {
		s.log.Warn("JWKS keys skipped", zap.Strings("reasons", skipped))
	}
	if err != nil {
		return err
	}
	s.install(ks)
	return nil
}

// install swaps in ks. The generation is bumped after the swap: a Verify
// that read the old generation may then verify with either set, and its
// cache entry is orphaned by the bump; bumping first would let a Verify
// cache a token checked against a removed key under the new generation.
func (s *jwksSource) install(ks *keySet) {
	s.storeMu.Lock()
	defer s.storeMu.Unlock()
	old := s.set.Load()
	s.set.Store(ks)
	if old != nil && !ks.keeps(old) {
		s.gen.Add(1)
		s.log.Info("JWKS keys rotated", zap.Int("keys", len(ks.all)))
	} else if old == nil {
		s.log.Info("JWKS loaded", zap.Int("keys", len(ks.all)))
	}
}

// refetchForUnknownKID is called when a token names a kid the current set
// lacks. It joins a fetch already in flight, or starts one if the last
// on-demand fetch is at least minRefetch old (by the caller's clock), or
// returns at once. Either way the caller then looks the kid up again.
func (s *jwksSource) refetchForUnknownKID(now time.Time) {
	s.mu.Lock()
	if c := s.inflight; c != nil {
		s.mu.Unlock()
		select {
		case <-c:
		case <-s.ctx.Done():
		}
		return
	}
	if !s.lastRefetch.IsZero() && !now.Before(s.lastRefetch) && now.Sub(s.lastRefetch) < s.minRefetch {
		s.mu.Unlock()
		return
	}
	s.lastRefetch = now
	c := make(chan struct{})
	s.inflight = c
	s.mu.Unlock()

	if err := s.fetch(); err != nil {
		s.log.Warn("JWKS re-fetch for an unknown kid failed", zap.Error(err))
	}

	s.mu.Lock()
	s.inflight = nil
	s.mu.Unlock()
	close(c)
}

// close stops the background refresh and waits for it to end.
func (s *jwksSource) close() {
	s.cancel()
	<-s.done
}
