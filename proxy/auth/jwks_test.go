package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// keyServer is a JWKS endpoint on 127.0.0.1 whose key set and health the
// test changes at will, counting the fetches it answers.
type keyServer struct {
	t    *testing.T
	srv  *httptest.Server
	hits atomic.Int64

	mu     sync.Mutex
	keys   []jwkset.JWKMarshal
	status int
	delay  time.Duration // how long each answer takes
}

func newKeyServer(t *testing.T) *keyServer {
	ks := &keyServer{t: t, status: http.StatusOK}
	ks.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.hits.Add(1)
		ks.mu.Lock()
		defer ks.mu.Unlock()
		time.Sleep(ks.delay)
		if ks.status != http.StatusOK {
			w.WriteHeader(ks.status)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_ = json.NewEncoder(w).Encode(jwkset.JWKSMarshal{Keys: ks.keys})
	}))
	t.Cleanup(ks.srv.Close)
	return ks
}

// publish replaces the served set with the public halves of keys, by kid.
func (ks *keyServer) publish(keys map[string]any) {
	ks.t.Helper()
	var out []jwkset.JWKMarshal
	for kid, pub := range keys {
		j, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, USE: jwkset.UseSig}})
		if err != nil {
			ks.t.Fatal(err)
		}
		out = append(out, j.Marshal())
	}
	ks.mu.Lock()
	ks.keys, ks.status = out, http.StatusOK
	ks.mu.Unlock()
}

func (ks *keyServer) fail(status int) {
	ks.mu.Lock()
	ks.status = status
	ks.mu.Unlock()
}

func edToken(t *testing.T, name, kid string, at time.Time) []byte {
	return []byte(sign(t, jwt.SigningMethodEdDSA, edKey(name), kid, claimsAt(at)))
}

func TestJWKSRotation(t *testing.T) {
	ks := newKeyServer(t)
	ks.publish(map[string]any{"k1": edKey("k1").Public()})
	v := newVerifier(t, Config{JWKSURL: ks.srv.URL, JWKSRefresh: time.Hour, JWKSMinRefetch: 5 * time.Second, CacheSize: -1})
	if got := ks.hits.Load(); got != 1 {
		t.Fatalf("%d fetches at start, want 1", got)
	}
	if _, err := v.Verify(edToken(t, "k1", "k1", now), now); err != nil {
		t.Fatalf("token of the published key: %v", err)
	}

	// The issuer publishes k2 and starts signing with it: the first token
	// naming k2 makes the edge re-fetch once.
	ks.publish(map[string]any{"k1": edKey("k1").Public(), "k2": edKey("k2").Public()})
	if _, err := v.Verify(edToken(t, "k2", "k2", now), now); err != nil {
		t.Fatalf("token of the rotated-in key: %v", err)
	}
	if got := ks.hits.Load(); got != 2 {
		t.Fatalf("%d fetches after an unknown kid, want 2", got)
	}

	// Unknown kids within JWKSMinRefetch do not reach the key server.
	for i := 0; i < 20; i++ {
		_, err := v.Verify(edToken(t, "forged", "forged", now), now.Add(time.Second))
		if !errors.Is(err, ErrUnknownKey) || !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("forged kid: %v, want ErrUnknownKey", err)
		}
	}
	if got := ks.hits.Load(); got != 2 {
		t.Fatalf("%d fetches after 20 forged kids within the rate limit, want still 2", got)
	}
	// Once the interval has passed, one more re-fetch is allowed.
	_, _ = v.Verify(edToken(t, "forged", "forged", now), now.Add(6*time.Second))
	if got := ks.hits.Load(); got != 3 {
		t.Fatalf("%d fetches after the interval, want 3", got)
	}

	// A token naming a known kid but signed by another key is refused.
	if _, err := v.Verify(edToken(t, "k2", "k1", now), now); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("kid k1 signed with k2: %v, want ErrInvalidToken", err)
	}
	// A token without kid is checked against every key of its algorithm.
	if _, err := v.Verify(edToken(t, "k2", "", now), now); err != nil {
		t.Fatalf("kid-less token of a published key: %v", err)
	}
	if _, err := v.Verify(edToken(t, "forged", "", now), now); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("kid-less forged token: %v", err)
	}
}

func TestJWKSConcurrentUnknownKIDFetchesOnce(t *testing.T) {
	ks := newKeyServer(t)
	ks.publish(map[string]any{"k1": edKey("k1").Public()})
	v := newVerifier(t, Config{JWKSURL: ks.srv.URL, JWKSRefresh: time.Hour, JWKSMinRefetch: time.Minute})
	ks.publish(map[string]any{"k1": edKey("k1").Public(), "k2": edKey("k2").Public()})
	ks.mu.Lock()
	ks.delay = 50 * time.Millisecond // long enough for the others to pile up
	ks.mu.Unlock()
	before := ks.hits.Load()
	tok := edToken(t, "k2", "k2", now)

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.Verify(tok, now); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent token of a new key: %v", err)
	}
	if got := ks.hits.Load() - before; got != 1 {
		t.Fatalf("16 concurrent unknown-kid checks caused %d fetches, want 1", got)
	}
}

func TestJWKSKeepsKeysWhileServerDown(t *testing.T) {
	ks := newKeyServer(t)
	ks.publish(map[string]any{"k1": edKey("k1").Public()})
	v := newVerifier(t, Config{JWKSURL: ks.srv.URL, JWKSRefresh: 20 * time.Millisecond,
		JWKSMinRefetch: time.Millisecond, JWKSTimeout: time.Second, CacheSize: -1})
	tok := edToken(t, "k1", "k1", now)
	if _, err := v.Verify(tok, now); err != nil {
		t.Fatal(err)
	}

	// First the server answers errors, then it is gone altogether.
	ks.fail(http.StatusInternalServerError)
	waitFetches(t, v, 3)
	ks.srv.Close()
	waitFetches(t, v, 3)
	for i := 0; i < 3; i++ {
		if _, err := v.Verify(tok, now.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatalf("token of the last good key set refused while the key server is down: %v", err)
		}
	}
	// An unknown kid still fails cleanly (the re-fetch fails fast).
	if _, err := v.Verify(edToken(t, "k9", "k9", now), now.Add(time.Minute)); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown kid while down: %v, want ErrUnknownKey", err)
	}
}

// waitFetches waits (boundedly) until n more fetches have completed.
func waitFetches(t *testing.T, v *Verifier, n int64) {
	t.Helper()
	target := v.jwks.fetches.Load() + n
	deadline := time.Now().Add(10 * time.Second)
	for v.jwks.fetches.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("background refresh stalled at %d fetches, want %d", v.jwks.fetches.Load(), target)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestJWKSRemovedKeyInvalidatesCache(t *testing.T) {
	ks := newKeyServer(t)
	ks.publish(map[string]any{"k1": edKey("k1").Public(), "k2": edKey("k2").Public()})
	v := newVerifier(t, Config{JWKSURL: ks.srv.URL, JWKSRefresh: time.Hour, JWKSMinRefetch: time.Second})
	tok1 := edToken(t, "k1", "k1", now)
	tok2 := edToken(t, "k2", "k2", now)
	for _, tok := range [][]byte{tok1, tok2} {
		if _, err := v.Verify(tok, now); err != nil {
			t.Fatal(err)
		}
	}
	// k1 is revoked. An added key alone would not bump the generation; a
	// removal must, so the cached k1 token is checked again and refused.
	ks.publish(map[string]any{"k2": edKey("k2").Public(), "k3": edKey("k3").Public()})
	if err := v.jwks.fetch(); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok1, now); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("token of a revoked key after the set changed: %v, want ErrUnknownKey", err)
	}
	if _, err := v.Verify(tok2, now); err != nil {
		t.Fatalf("token of a kept key: %v", err)
	}
	gen := v.jwks.gen.Load()
	ks.publish(map[string]any{"k2": edKey("k2").Public(), "k3": edKey("k3").Public(), "k4": edKey("k4").Public()})
	if err := v.jwks.fetch(); err != nil {
		t.Fatal(err)
	}
	if v.jwks.gen.Load() != gen {
		t.Fatal("adding a key emptied the cache")
	}
}

func TestJWKSUnavailableAtStart(t *testing.T) {
	ks := newKeyServer(t)
	ks.fail(http.StatusServiceUnavailable)
	v := newVerifier(t, Config{JWKSURL: ks.srv.URL, JWKSRefresh: time.Hour, JWKSMinRefetch: 5 * time.Second})
	if v.KeysLoaded() {
		t.Fatal("KeysLoaded before the key server answered")
	}
	tok := edToken(t, "k1", "k1", now)
	_, err := v.Verify(tok, now)
	if !errors.Is(err, ErrKeysUnavailable) || errors.Is(err, ErrInvalidToken) {
		t.Fatalf("before any key set: %v, want ErrKeysUnavailable only", err)
	}
	ks.publish(map[string]any{"k1": edKey("k1").Public()})
	if _, err := v.Verify(tok, now.Add(time.Second)); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("within the re-fetch interval: %v, want ErrKeysUnavailable", err)
	}
	if _, err := v.Verify(tok, now.Add(6*time.Second)); err != nil {
		t.Fatalf("after the key server came back: %v", err)
	}
	if !v.KeysLoaded() {
		t.Fatal("KeysLoaded false after a successful fetch")
	}
}

func TestJWKSAlgorithmPinnedByKeyType(t *testing.T) {
	ks := newKeyServer(t)
	rk := rsaKey(t, "jwks")
	ks.publish(map[string]any{"ed": edKey("ed").Public(), "rsa": &rk.PublicKey})
	v := newVerifier(t, Config{JWKSURL: ks.srv.URL, JWKSRefresh: time.Hour})
	edPEM := pemPublic(t, edKey("ed").Public())
	rsaPEM := pemPublic(t, &rk.PublicKey)
	tests := []struct {
		name    string
		token   string
		wantErr bool
	}{
		{"EdDSA with Ed25519 kid", sign(t, jwt.SigningMethodEdDSA, edKey("ed"), "ed", claimsAt(now)), false},
		{"RS256 with RSA kid", sign(t, jwt.SigningMethodRS256, rk, "rsa", claimsAt(now)), false},
		{"RS256 naming the Ed25519 kid", sign(t, jwt.SigningMethodRS256, rk, "ed", claimsAt(now)), true},
		{"HS256 keyed with the Ed25519 PEM", sign(t, jwt.SigningMethodHS256, edPEM, "ed", claimsAt(now)), true},
		{"HS256 keyed with the RSA PEM", sign(t, jwt.SigningMethodHS256, rsaPEM, "rsa", claimsAt(now)), true},
		{"PS256 with RSA kid", sign(t, jwt.SigningMethodPS256, rk, "rsa", claimsAt(now)), true},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "ed", claimsAt(now)), true},
		{"numeric kid", numericKID(t), true},
		{"no kid", sign(t, jwt.SigningMethodEdDSA, edKey("ed"), "", claimsAt(now)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify([]byte(tt.token), now)
			if tt.wantErr != (err != nil) {
				t.Fatalf("Verify = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("refusal %v does not match ErrInvalidToken", err)
			}
		})
	}
}

// numericKID is an Ed25519 token whose kid header is a number, not a string.
func numericKID(t *testing.T) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claimsAt(now))
	tok.Header["kid"] = 7
	s, err := tok.SignedString(edKey("ed"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParseJWKS(t *testing.T) {
	ed := func(kid string, extra map[string]any) map[string]any {
		j, _ := jwkset.NewJWKFromKey(edKey(kid).Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid}})
		var m map[string]any
		raw, _ := json.Marshal(j.Marshal())
		_ = json.Unmarshal(raw, &m)
		for k, v := range extra {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecJWK, _ := jwkset.NewJWKFromKey(&ecKey.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "ec"}})
	doc := func(keys ...any) string {
		b, _ := json.Marshal(map[string]any{"keys": keys})
		return string(b)
	}
	tests := []struct {
		name     string
		body     string
		wantKeys int
		wantSkip int
		wantErr  bool
	}{
		{"one Ed25519 key", doc(ed("a", nil)), 1, 0, false},
		{"two keys", doc(ed("a", nil), ed("b", nil)), 2, 0, false},
		{"not JSON", "<html>", 0, 0, true},
		{"no keys", `{"keys":[]}`, 0, 0, true},
		{"empty object", `{}`, 0, 0, true},
		{"keys not a list", `{"keys":"x"}`, 0, 0, true},
		{"encryption key skipped", doc(ed("a", map[string]any{"use": "enc"}), ed("b", nil)), 1, 1, false},
		{"alg contradicting the key skipped", doc(ed("a", map[string]any{"alg": "HS256"}), ed("b", nil)), 1, 1, false},
		{"symmetric key skipped", doc(map[string]any{"kty": "oct", "k": "c2VjcmV0", "kid": "s"}, ed("b", nil)), 1, 1, false},
		{"EC key skipped", doc(ecJWK.Marshal(), ed("b", nil)), 1, 1, false},
		{"only unusable keys", doc(ecJWK.Marshal()), 0, 1, true},
		{"duplicate kid skipped", doc(ed("a", nil), ed("a", nil)), 1, 1, false},
		{"kid-less key kept", doc(ed("a", map[string]any{"kid": nil})), 1, 0, false},
		{"broken x skipped", doc(ed("a", map[string]any{"x": "!!"}), ed("b", nil)), 1, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks, skipped, err := parseJWKS([]byte(tt.body))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseJWKS succeeded with %d keys, want an error", len(ks.all))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ks.all) != tt.wantKeys || len(skipped) != tt.wantSkip {
				t.Fatalf("%d keys, %d skipped (%v); want %d and %d", len(ks.all), len(skipped), skipped, tt.wantKeys, tt.wantSkip)
			}
		})
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	ks := newKeyServer(t)
	ks.publish(map[string]any{"k1": edKey("k1").Public()})
	v, err := NewVerifier(Config{JWKSURL: ks.srv.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	v.Close()
	// The keys it had still verify after Close.
	if _, err := v.Verify(edToken(t, "k1", "k1", now), now); err != nil {
		t.Fatalf("Verify after Close: %v", err)
	}
}

// TestVerifyOfflineNeverFetches: VerifyOffline judges what the key set in
// hand can judge and reports ErrUnknownKey, without a fetch, where Verify
// would go to the JWKS endpoint; Verify then fetches and decides.
func TestVerifyOfflineNeverFetches(t *testing.T) {
	ks := newKeyServer(t)
	ks.publish(map[string]any{"k1": edKey("k1").Public()})
	v := newVerifier(t, Config{JWKSURL: ks.srv.URL, JWKSRefresh: time.Hour, JWKSMinRefetch: time.Millisecond, CacheSize: -1})
	start := ks.hits.Load()
	if _, err := v.VerifyOffline(edToken(t, "k1", "k1", now), now); err != nil {
		t.Fatalf("token of a key in hand: %v", err)
	}
	if _, err := v.VerifyOffline(edToken(t, "forged", "k1", now), now); !errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrUnknownKey) {
		t.Fatalf("known kid, wrong signature: %v, want ErrInvalidToken", err)
	}
	if _, err := v.VerifyOffline(edToken(t, "k1", "k1", now.Add(-2*time.Hour)), now); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired token: %v, want ErrExpired", err)
	}
	ks.publish(map[string]any{"k1": edKey("k1").Public(), "k2": edKey("k2").Public()})
	if _, err := v.VerifyOffline(edToken(t, "k2", "k2", now), now); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("kid not in hand: %v, want ErrUnknownKey", err)
	}
	if got := ks.hits.Load() - start; got != 0 {
		t.Fatalf("VerifyOffline fetched the JWKS %d times", got)
	}
	if _, err := v.Verify(edToken(t, "k2", "k2", now), now); err != nil {
		t.Fatalf("Verify of the rotated-in key: %v", err)
	}
	if got := ks.hits.Load() - start; got != 1 {
		t.Fatalf("Verify fetched %d times, want 1", got)
	}
}
