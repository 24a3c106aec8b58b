package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/novashop/edge/origin/tokens"
)

// CookieCSRF is the per-browser CSRF cookie. It is readable by the page's
// script (not HttpOnly) on purpose: catalog pages carry no token inline (they
// are shared), so the script copies the cookie into a form when it is sent.
const CookieCSRF = "novashop_csrf"

// FieldCSRF is the form field, and HeaderCSRF the request header, that must
// repeat the cookie's value.
const (
	FieldCSRF  = "csrf"
	HeaderCSRF = "X-CSRF-Token"
)

// ErrCSRF means a form's CSRF token is missing, forged, or does not match
// the browser's cookie; reload the page and send the form again.
var ErrCSRF = errors.New("web: CSRF check failed")

// csrfNonceLen is the random part of a token (128 bits).
const csrfNonceLen = 16

// csrfTTL bounds a CSRF cookie's life; a new one is issued when it is gone.
const csrfTTL = 30 * 24 * time.Hour

// csrf signs and checks double-submit tokens: "nonce.mac" where mac is
// HMAC-SHA256(key, nonce). Signing (rather than a bare random cookie) means a
// sibling site that can plant cookies still cannot mint a pair that passes,
// since it lacks the key (the "signed double-submit" pattern of OWASP's CSRF
// cheat sheet).
type csrf struct{ key []byte }

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (c csrf) mac(nonce string) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("novashop-csrf-v1|"))
	m.Write([]byte(nonce))
	return m.Sum(nil)
}

// issue makes a fresh token.
func (c csrf) issue() string {
	n := make([]byte, csrfNonceLen)
	_, _ = rand.Read(n)
	nonce := b64(n)
	return nonce + "." + b64(c.mac(nonce))
}

// valid reports whether tok is a token this key signed.
func (c csrf) valid(tok string) bool {
	if len(tok) > 128 {
		return false
	}
	nonce, sig, ok := strings.Cut(tok, ".")
	if !ok || len(nonce) != 22 {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return false
	}
	return hmac.Equal(got, c.mac(nonce))
}

// check verifies a submitted token against the cookie: both present, equal,
// and signed by this key.
func (c csrf) check(cookie, submitted string) error {
	if cookie == "" || submitted == "" {
		return ErrCSRF
	}
	if subtle.ConstantTimeCompare([]byte(cookie), []byte(submitted)) != 1 {
		return ErrCSRF
	}
	if !c.valid(cookie) {
		return ErrCSRF
	}
	return nil
}

// csrfKeyLabel is the HKDF label of the CSRF key (tokens.Keys.Derive); a
// new version suffix would invalidate every CSRF cookie at once.
const csrfKeyLabel = "novashop storefront csrf key v1"

// deriveCSRFKey derives the CSRF key from the token keys, so every origin
// sharing JWT_SECRET (or the Ed25519 key) shares it without another secret
// to configure: a form rendered by one origin posts fine to another. HKDF
// keeps it independent of the signing key: knowing a CSRF key never helps
// forge a token.
func deriveCSRFKey(k *tokens.Keys) []byte { return k.Derive(csrfKeyLabel) }
