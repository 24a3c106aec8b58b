package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
)

// Roles a token may carry.
const (
	RoleShopper = "shopper"
	RoleStaff   = "staff"
)

// maxSubjectLen bounds "sub"; user ids are short, and the value is copied
// into the X-User-ID header sent to the origin.
const maxSubjectLen = 128

// Identity is who a verified token speaks for.
type Identity struct {
	// UserID is the token's "sub": visible ASCII only, so it is safe to
	// place in the X-User-ID header as is.
	UserID string
	// Role is RoleShopper or RoleStaff.
	Role string
}

// IsStaff reports whether the identity may use staff-only routes.
func (id Identity) IsStaff() bool { return id.Role == RoleStaff }

// Verifier checks access tokens against one key source. It is safe for
// concurrent use; Close it to stop a JWKS background refresh.
type Verifier struct {
	cfg     Config
	log     *zap.Logger
	methods []string
	// opts are the parser options shared by every verification; Verify adds
	// a time function for its own now.
	opts []jwt.ParserOption
	// keyfunc serves static keys (secret or key file); nil with JWKS.
	keyfunc jwt.Keyfunc
	jwks    *jwksSource
	cache   *tokenCache
}

// NewVerifier checks cfg, loads the key (reading the PEM file, or fetching
// the JWKS once and starting its background refresh) and returns a
// Verifier. Errors wrap ErrConfig and say which setting to fix. A JWKS
// endpoint that does not answer yet is not an error: it is logged, retried
// in the background, and Verify answers ErrKeysUnavailable meanwhile.
func NewVerifier(cfg Config, log *zap.Logger) (*Verifier, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	v := &Verifier{cfg: cfg, log: log.Named("auth")}

	switch {
	case len(cfg.Secret) > 0:
		secret := append([]byte(nil), cfg.Secret...)
		v.methods = []string{jwt.SigningMethodHS256.Alg()}
		v.keyfunc = func(*jwt.Token) (any, error) { return secret, nil }
	case cfg.PublicKeyFile != "":
		key, alg, err := loadPublicKeyFile(cfg.PublicKeyFile)
		if err != nil {
			return nil, err
		}
		v.methods = []string{alg}
		v.keyfunc = func(*jwt.Token) (any, error) { return key, nil }
	default:
		v.methods = []string{jwt.SigningMethodEdDSA.Alg(), jwt.SigningMethodRS256.Alg()}
		v.jwks = newJWKSSource(cfg, v.log)
	}
	v.opts = []jwt.ParserOption{
		jwt.WithValidMethods(v.methods),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		// Strict base64 refuses non-canonical encodings, so one token has
		// exactly one spelling and the cache's exact-bytes key is sound.
		jwt.WithStrictDecoding(),
	}
	if cfg.CacheSize > 0 {
		v.cache = newTokenCache(cfg.CacheSize)
	}
	if v.jwks != nil {
		v.jwks.start()
	}
	return v, nil
}

// Close stops the JWKS background refresh, if any. Verify keeps working
// with the keys it has.
func (v *Verifier) Close() {
	if v.jwks != nil {
		v.jwks.closeOnce.Do(v.jwks.close)
	}
}

// Verify checks token at time now and returns who it speaks for. A token
// verified before is answered from the cache, without allocating, until
// its exp. token is not retained, so it may point into a fasthttp request.
func (v *Verifier) Verify(token []byte, now time.Time) (Identity, error) {
	return v.check(token, now, true)
}

// VerifyOffline is Verify without the network: where Verify would fetch
// the JWKS (no key set yet, or a kid the set does not hold) it reports
// ErrKeysUnavailable or ErrUnknownKey instead. It serves checks made where
// waiting is not allowed, such as deciding on an event loop whether to send
// 100 Continue; Verify makes the final decision.
func (v *Verifier) VerifyOffline(token []byte, now time.Time) (Identity, error) {
	return v.check(token, now, false)
}

// check is Verify; fetch false never refetches the JWKS.
func (v *Verifier) check(token []byte, now time.Time, fetch bool) (Identity, error) {
	if len(token) == 0 {
		return Identity{}, ErrNoToken
	}
	if len(token) > MaxTokenSize {
		return Identity{}, invalid(ErrInvalidToken, fmt.Sprintf("token is %d bytes, the limit is %d", len(token), MaxTokenSize))
	}
	// Read the generation before any key is looked up; see jwksSource.install.
	gen := v.generation()
	nowNS := now.UnixNano()
	if v.cache != nil {
		if id, ok := v.cache.get(token, nowNS, gen); ok {
			return id, nil
		}
	}
	id, exp, err := v.verifyWith(token, now, fetch)
	if err != nil {
		return Identity{}, err
	}
	if v.cache != nil {
		v.cache.put(token, cacheEntry{id: id, from: nowNS, until: exp.UnixNano(), gen: gen})
	}
	return id, nil
}

// KeysLoaded reports whether the verifier can check signatures: always for
// a secret or key file, and for JWKS once the endpoint has answered once.
// The edge's readiness check can use it.
func (v *Verifier) KeysLoaded() bool {
	return v.jwks == nil || v.jwks.set.Load() != nil
}

func (v *Verifier) generation() uint64 {
	if v.jwks == nil {
		return 0
	}
	return v.jwks.gen.Load()
}

// claims is what the shop's access tokens carry.
type claims struct {
	jwt.RegisteredClaims
	Role string `json:"role"`
}

// Validate is called by the jwt parser after the registered claims checks.
func (c *claims) Validate() error {
	if c.Subject == "" {
		return errors.New("missing sub")
	}
	if len(c.Subject) > maxSubjectLen {
		return fmt.Errorf("sub is longer than %d bytes", maxSubjectLen)
	}
	for i := 0; i < len(c.Subject); i++ {
		if b := c.Subject[i]; b <= ' ' || b >= 0x7f {
			return errors.New("sub holds a character that is not visible ASCII")
		}
	}
	if c.Role != RoleShopper && c.Role != RoleStaff {
		return fmt.Errorf("role %q is neither %q nor %q", truncate(c.Role, 32), RoleShopper, RoleStaff)
	}
	return nil
}

// verifyWith runs the full check: structure, pinned algorithm, signature,
// then claims at now. fetch false never refetches the JWKS (VerifyOffline).
func (v *Verifier) verifyWith(token []byte, now time.Time, fetch bool) (Identity, time.Time, error) {
	opts := append(v.opts[:len(v.opts):len(v.opts)], jwt.WithTimeFunc(func() time.Time { return now }))
	keyfunc := v.keyfunc
	if v.jwks != nil {
		keyfunc = func(t *jwt.Token) (any, error) { return v.jwksKey(t, now, fetch) }
	}
	var c claims
	_, err := jwt.NewParser(opts...).ParseWithClaims(string(token), &c, keyfunc)
	if err != nil {
		return Identity{}, time.Time{}, classify(err)
	}
	// WithExpirationRequired guarantees ExpiresAt is set once parsing
	// succeeded; the check keeps a future library change from caching a
	// token forever.
	if c.ExpiresAt == nil {
		return Identity{}, time.Time{}, invalid(ErrInvalidToken, "missing exp")
	}
	role := RoleShopper
	if c.Role == RoleStaff {
		role = RoleStaff
	}
	return Identity{UserID: c.Subject, Role: role}, c.ExpiresAt.Time, nil
}

// jwksKey picks the JWKS key for t: by kid, re-fetching the set once
// (rate-limited) if the kid is unknown, or every key of t's algorithm when
// t has no kid. A key only verifies the algorithm of its own type, so an
// HS256 token can never be checked against a public key's bytes.
func (v *Verifier) jwksKey(t *jwt.Token, now time.Time, fetch bool) (any, error) {
	s := v.jwks
	alg := t.Method.Alg()
	kidVal, hasKID := t.Header["kid"]
	if !hasKID {
		set := s.set.Load()
		if set == nil {
			if fetch {
				s.refetchForUnknownKID(now)
			}
			if set = s.set.Load(); set == nil {
				return nil, ErrKeysUnavailable
			}
		}
		keys := set.forAlg(alg)
		if len(keys) == 0 {
			return nil, fmt.Errorf("%w: no %s key in the JWKS", ErrUnknownKey, alg)
		}
		return jwt.VerificationKeySet{Keys: keys}, nil
	}
	kid, ok := kidVal.(string)
	if !ok || kid == "" {
		return nil, errors.New("kid header is not a non-empty string")
	}
	set := s.set.Load()
	k, found := lookupKID(set, kid)
	if !found {
		if fetch {
			s.refetchForUnknownKID(now)
		}
		set = s.set.Load()
		if set == nil {
			return nil, ErrKeysUnavailable
		}
		if k, found = lookupKID(set, kid); !found {
			return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, truncate(kid, 64))
		}
	}
	if k.alg != alg {
		return nil, fmt.Errorf("token alg %s does not match key %q (%s)", alg, truncate(kid, 64), k.alg)
	}
	return k.key, nil
}

func lookupKID(set *keySet, kid string) (verificationKey, bool) {
	if set == nil {
		return verificationKey{}, false
	}
	k, ok := set.byKID[kid]
	return k, ok
}

// classify maps a jwt parse error onto this package's sentinels, keeping
// the library's message as the reason.
func classify(err error) error {
	switch {
	case errors.Is(err, ErrKeysUnavailable):
		return invalid(ErrKeysUnavailable, "")
	case errors.Is(err, ErrUnknownKey):
		return invalid(ErrUnknownKey, err.Error())
	case errors.Is(err, jwt.ErrTokenMalformed), errors.Is(err, jwt.ErrTokenSignatureInvalid),
		errors.Is(err, jwt.ErrTokenUnverifiable):
		return invalid(ErrInvalidToken, err.Error())
	case errors.Is(err, jwt.ErrTokenExpired):
		return invalid(ErrExpired, err.Error())
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return invalid(ErrNotYetValid, err.Error())
	default:
		return invalid(ErrInvalidToken, err.Error())
	}
}

// truncate shortens attacker-controlled strings before they reach an error
// message or a log line.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
