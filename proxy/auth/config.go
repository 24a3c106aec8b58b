package auth

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Defaults applied by NewVerifier to zero Config fields.
const (
	DefaultIssuer         = "novashop"
	DefaultAudience       = "novashop-api"
	DefaultLeeway         = 30 * time.Second
	DefaultCacheSize      = 10000
	DefaultJWKSRefresh    = 5 * time.Minute
	DefaultJWKSMinRefetch = 5 * time.Second
	DefaultJWKSTimeout    = 5 * time.Second
)

// Limits on what a Config may ask for and on what a client may send.
const (
	// MaxTokenSize is the largest token Verify looks at. The shop's tokens
	// are a few hundred bytes; refusing big ones early keeps a hostile
	// client from making the edge base64- and JSON-decode megabytes.
	MaxTokenSize = 8 << 10
	// MinSecretSize is the shortest HS256 key accepted: RFC 7518 section 3.2
	// requires a key at least as long as the hash output (256 bits).
	MinSecretSize = 32
	// MaxLeeway bounds the clock skew allowance; more than this would keep
	// 15-minute access tokens alive far past their expiry.
	MaxLeeway = 5 * time.Minute
	// MinRSABits is the smallest RSA modulus accepted (NIST SP 800-131A).
	MinRSABits = 2048
)

// Config says which key verifies tokens and what they must claim. Exactly
// one of Secret, PublicKeyFile and JWKSURL must be set.
type Config struct {
	// Secret is the HS256 key shared with the origin (from JWT_SECRET), at
	// least MinSecretSize bytes. Tokens must then use HS256.
	Secret []byte `yaml:"-"`
	// PublicKeyFile is a PEM file holding an Ed25519 public key (tokens must
	// use EdDSA) or an RSA public key of at least MinRSABits (tokens must use
	// RS256), as "PUBLIC KEY" (PKIX) or "RSA PUBLIC KEY" (PKCS #1).
	PublicKeyFile string `yaml:"public_key_file"`
	// JWKSURL is an http(s) JWKS endpoint (RFC 7517). Its Ed25519 and RSA
	// keys are fetched at start, refreshed every JWKSRefresh in the
	// background, and re-fetched (at most once per JWKSMinRefetch) when a
	// token names an unknown kid, so the issuer can rotate keys. While the
	// endpoint is down the last good key set stays in use.
	JWKSURL string `yaml:"jwks_url"`
	// Issuer is the required "iss" claim. Empty means DefaultIssuer.
	Issuer string `yaml:"issuer"`
	// Audience is the required "aud" claim. Empty means DefaultAudience.
	Audience string `yaml:"audience"`
	// Leeway is the clock skew allowed on exp, nbf and iat. Zero means
	// DefaultLeeway; it must not be negative or above MaxLeeway.
	Leeway time.Duration `yaml:"leeway"`
	// CacheSize is how many verified tokens are remembered. Zero means
	// DefaultCacheSize; a negative value turns the cache off.
	CacheSize int `yaml:"cache_size"`
	// JWKSRefresh is the background refresh period of the JWKS key set.
	// Zero means DefaultJWKSRefresh.
	JWKSRefresh time.Duration `yaml:"jwks_refresh"`
	// JWKSMinRefetch is the least time between two re-fetches caused by
	// unknown key ids, so forged kids cannot turn the edge into a flood
	// against the key server. Zero means DefaultJWKSMinRefetch.
	JWKSMinRefetch time.Duration `yaml:"jwks_min_refetch"`
	// JWKSTimeout bounds one fetch of the JWKS endpoint. Zero means
	// DefaultJWKSTimeout.
	JWKSTimeout time.Duration `yaml:"jwks_timeout"`
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.JWKSRefresh == 0 {
		c.JWKSRefresh = DefaultJWKSRefresh
	}
	if c.JWKSMinRefetch == 0 {
		c.JWKSMinRefetch = DefaultJWKSMinRefetch
	}
	if c.JWKSTimeout == 0 {
		c.JWKSTimeout = DefaultJWKSTimeout
	}
	return c
}

// Validate reports every problem with c at once, each wrapping ErrConfig.
// It does not read the key file or contact the JWKS endpoint; NewVerifier
// does.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	sources := 0
	if len(c.Secret) > 0 {
		sources++
		if len(c.Secret) < MinSecretSize {
			bad("JWT_SECRET is %d bytes, HS256 needs at least %d (RFC 7518 section 3.2)", len(c.Secret), MinSecretSize)
		}
	}
	if c.PublicKeyFile != "" {
		sources++
	}
	if c.JWKSURL != "" {
		sources++
		u, err := url.Parse(c.JWKSURL)
		switch {
		case err != nil:
			bad("JWKS URL %q: %v", c.JWKSURL, err)
		case u.Scheme != "http" && u.Scheme != "https":
			bad("JWKS URL %q must be http or https", c.JWKSURL)
		case u.Host == "":
			bad("JWKS URL %q has no host", c.JWKSURL)
		}
	}
	switch sources {
	case 0:
		bad("no JWT verification key: set JWT_SECRET, --jwt-public-key or --jwks-url")
	case 1:
	default:
		bad("JWT_SECRET, --jwt-public-key and --jwks-url are exclusive, %d were given", sources)
	}
	if c.Leeway < 0 || c.Leeway > MaxLeeway {
		bad("leeway %v must be between 0 and %v", c.Leeway, MaxLeeway)
	}
	if c.JWKSRefresh < 0 {
		bad("jwks_refresh %v must not be negative", c.JWKSRefresh)
	}
	if c.JWKSMinRefetch < 0 {
		bad("jwks_min_refetch %v must not be negative", c.JWKSMinRefetch)
	}
	if c.JWKSTimeout < 0 {
		bad("jwks_timeout %v must not be negative", c.JWKSTimeout)
	}
	return errors.Join(errs...)
}
