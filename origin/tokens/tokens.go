package tokens

import (
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"
)

// Claim values shared with the edge.
const (
	Issuer          = "novashop"
	AudienceAccess  = "novashop-api"
	AudienceRefresh = "novashop-refresh"
	RoleShopper     = "shopper"
	RoleStaff       = "staff"
	// CookieAccess is the storefront's HttpOnly cookie holding the access token.
	CookieAccess = "novashop_access"
	AccessTTL    = 15 * time.Minute
	RefreshTTL   = 7 * 24 * time.Hour
	// MinSecretLen follows RFC 7518 §3.2: an HS256 key must be at least as
	// long as the hash output (256 bits).
	MinSecretLen = 32
)

var (
	// ErrInvalid means a token is malformed, badly signed, expired, or meant
	// for another audience; the client must log in again.
	ErrInvalid = errors.New("tokens: invalid or expired token")
	// ErrWeakSecret means JWT_SECRET is shorter than MinSecretLen bytes; use
	// a random secret of at least 32 bytes.
	ErrWeakSecret = errors.New("tokens: JWT secret must be at least 32 bytes")
	// ErrBadKey means the private key file is not an Ed25519 PKCS#8 PEM key
	// (make one with `openssl genpkey -algorithm ed25519`).
	ErrBadKey = errors.New("tokens: not an Ed25519 private key in PKCS#8 PEM")
)

// Keys signs and verifies tokens with one pinned algorithm. It is safe for
// concurrent use.
type Keys struct {
	method jwt.SigningMethod
	sign   any
	verify any
	// Now is the clock; tests replace it. Nil means time.Now.
	Now func() time.Time
}

// NewHS256 builds keys from a shared secret.
func NewHS256(secret []byte) (*Keys, error) {
	if len(secret) < MinSecretLen {
		return nil, ErrWeakSecret
	}
	s := append([]byte(nil), secret...)
	return &Keys{method: jwt.SigningMethodHS256, sign: s, verify: s}, nil
}

// NewEdDSA builds keys from an Ed25519 private key.
func NewEdDSA(priv ed25519.PrivateKey) (*Keys, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, ErrBadKey
	}
	return &Keys{method: jwt.SigningMethodEdDSA, sign: priv, verify: priv.Public()}, nil
}

// LoadEd25519 reads a PKCS#8 PEM Ed25519 private key file.
func LoadEd25519(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokens: read key file: %w", err)
	}
	return ParseEd25519(b)
}

// ParseEd25519 parses a PKCS#8 PEM Ed25519 private key.
func ParseEd25519(pemBytes []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(pemBytes)
	if blk == nil {
		return nil, ErrBadKey
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, ErrBadKey
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, ErrBadKey
	}
	return priv, nil
}

// Algorithm names the pinned JWS algorithm ("HS256" or "EdDSA").
func (k *Keys) Algorithm() string { return k.method.Alg() }

// PublicKey returns the verification key: the Ed25519 public key, or nil for
// HS256 (whose secret must never be published).
func (k *Keys) PublicKey() crypto.PublicKey {
	if pk, ok := k.verify.(ed25519.PublicKey); ok {
		return pk
	}
	return nil
}

func (k *Keys) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

// AccessClaims are the claims of an access token.
type AccessClaims struct {
	Role string `json:"role"`
	jwt.RegisteredClaims
}

// Principal is the verified caller of a request.
type Principal struct {
	UserID int64
	Role   string
}

// IsStaff reports whether the caller may manage the catalog.
func (p Principal) IsStaff() bool { return p.Role == RoleStaff }

// IssueAccess signs an access token for the user.
func (k *Keys) IssueAccess(userID int64, role string) (string, error) {
	now := k.now()
	c := AccessClaims{
		Role: role,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   strconv.FormatInt(userID, 10),
			Issuer:    Issuer,
			Audience:  jwt.ClaimStrings{AudienceAccess},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(AccessTTL)),
		},
	}
	return jwt.NewWithClaims(k.method, c).SignedString(k.sign)
}

// IssueRefresh signs a refresh token with the given id.
func (k *Keys) IssueRefresh(userID int64, jti string) (string, time.Time, error) {
	now := k.now()
	exp := now.Add(RefreshTTL)
	c := jwt.RegisteredClaims{
		Subject:   strconv.FormatInt(userID, 10),
		Issuer:    Issuer,
		Audience:  jwt.ClaimStrings{AudienceRefresh},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(exp),
		ID:        jti,
	}
	s, err := jwt.NewWithClaims(k.method, c).SignedString(k.sign)
	return s, exp, err
}

func (k *Keys) parser(aud string) *jwt.Parser {
	return jwt.NewParser(
		jwt.WithValidMethods([]string{k.method.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithAudience(aud),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(k.now),
	)
}

func (k *Keys) keyFunc(*jwt.Token) (any, error) { return k.verify, nil }

// VerifyAccess checks an access token and returns its caller.
func (k *Keys) VerifyAccess(tok string) (Principal, error) {
	var c AccessClaims
	if _, err := k.parser(AudienceAccess).ParseWithClaims(tok, &c, k.keyFunc); err != nil {
		return Principal{}, ErrInvalid
	}
	id, err := strconv.ParseInt(c.Subject, 10, 64)
	if err != nil || id <= 0 {
		return Principal{}, ErrInvalid
	}
	if c.Role != RoleShopper && c.Role != RoleStaff {
		return Principal{}, ErrInvalid
	}
	return Principal{UserID: id, Role: c.Role}, nil
}

// RefreshClaims are what a verified refresh token says.
type RefreshClaims struct {
	UserID int64
	JTI    string
}

// VerifyRefresh checks a refresh token's signature, audience and expiry.
// Whether it was revoked is the caller's (database's) business.
func (k *Keys) VerifyRefresh(tok string) (RefreshClaims, error) {
	var c jwt.RegisteredClaims
	if _, err := k.parser(AudienceRefresh).ParseWithClaims(tok, &c, k.keyFunc); err != nil {
		return RefreshClaims{}, ErrInvalid
	}
	id, err := strconv.ParseInt(c.Subject, 10, 64)
	if err != nil || id <= 0 || c.ID == "" {
		return RefreshClaims{}, ErrInvalid
	}
	return RefreshClaims{UserID: id, JTI: c.ID}, nil
}

// FromRequest returns the access token of a request: the Authorization
// Bearer credentials (RFC 6750 §2.1) first, else the storefront cookie.
// It returns "" when there is none.
func FromRequest(ctx *fasthttp.RequestCtx) string {
	if h := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization); len(h) > 0 {
		const prefix = "bearer "
		if len(h) > len(prefix) && strings.EqualFold(string(h[:len(prefix)]), prefix) {
			return strings.TrimSpace(string(h[len(prefix):]))
		}
		return ""
	}
	return string(ctx.Request.Header.Cookie(CookieAccess))
}
