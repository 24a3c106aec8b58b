package tokens

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"
)

const secret = "0123456789abcdef0123456789abcdef"

func edKeys(t testing.TB) (*Keys, ed25519.PrivateKey) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewEdDSA(priv)
	if err != nil {
		t.Fatal(err)
	}
	return k, priv
}

func TestAccessRoundTrip(t *testing.T) {
	hs, err := NewHS256([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	ed, _ := edKeys(t)
	for _, k := range []*Keys{hs, ed} {
		tok, err := k.IssueAccess(42, RoleStaff)
		if err != nil {
			t.Fatal(err)
		}
		p, err := k.VerifyAccess(tok)
		if err != nil || p.UserID != 42 || !p.IsStaff() {
			t.Fatalf("%s: %+v %v", k.Algorithm(), p, err)
		}
		ref, _, err := k.IssueRefresh(42, "jti-1")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.VerifyAccess(ref); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s: refresh accepted as access", k.Algorithm())
		}
		rc, err := k.VerifyRefresh(ref)
		if err != nil || rc.JTI != "jti-1" || rc.UserID != 42 {
			t.Fatalf("%s: refresh %+v %v", k.Algorithm(), rc, err)
		}
		if _, err := k.VerifyRefresh(tok); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s: access accepted as refresh", k.Algorithm())
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	k, _ := NewHS256([]byte(secret))
	other, _ := NewHS256([]byte(secret + "x"))
	ed, _ := edKeys(t)
	now := time.Now()
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := jwt.MapClaims{"sub": "1", "role": "shopper", "iss": Issuer, "aud": AudienceAccess, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for a, b := range good {
			c[a] = b
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	otherTok, _ := other.IssueAccess(1, RoleShopper)
	edTok, _ := ed.IssueAccess(1, RoleShopper)
	tests := map[string]string{
		"expired":       sign(jwt.SigningMethodHS256, []byte(secret), with("exp", now.Add(-time.Minute).Unix())),
		"no exp":        sign(jwt.SigningMethodHS256, []byte(secret), with("exp", nil)),
		"wrong issuer":  sign(jwt.SigningMethodHS256, []byte(secret), with("iss", "evil")),
		"wrong aud":     sign(jwt.SigningMethodHS256, []byte(secret), with("aud", AudienceRefresh)),
		"bad role":      sign(jwt.SigningMethodHS256, []byte(secret), with("role", "root")),
		"bad sub":       sign(jwt.SigningMethodHS256, []byte(secret), with("sub", "abc")),
		"future iat":    sign(jwt.SigningMethodHS256, []byte(secret), with("iat", now.Add(time.Hour).Unix())),
		"HS384":         sign(jwt.SigningMethodHS384, []byte(secret), good),
		"none":          sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good),
		"other secret":  otherTok,
		"other alg key": edTok,
		"garbage":       "a.b.c",
		"empty":         "",
	}
	if _, err := k.VerifyAccess(sign(jwt.SigningMethodHS256, []byte(secret), good)); err != nil {
		t.Fatalf("good token rejected: %v", err)
	}
	for name, tok := range tests {
		if _, err := k.VerifyAccess(tok); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestKeysConstruction(t *testing.T) {
	if _, err := NewHS256([]byte("short")); !errors.Is(err, ErrWeakSecret) {
		t.Fatalf("short secret: %v", err)
	}
	_, priv := edKeys(t)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	got, err := ParseEd25519(pemBytes)
	if err != nil || !got.Equal(priv) {
		t.Fatalf("parse: %v", err)
	}
	for _, bad := range [][]byte{nil, []byte("not pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2}})} {
		if _, err := ParseEd25519(bad); !errors.Is(err, ErrBadKey) {
			t.Errorf("bad key accepted: %v", err)
		}
	}
}

func TestFromRequest(t *testing.T) {
	tests := []struct{ auth, cookie, want string }{
		{"Bearer abc", "", "abc"},
		{"bearer  abc ", "", "abc"},
		{"Basic abc", "ck", ""},
		{"", "ck", "ck"},
		{"", "", ""},
	}
	for _, tt := range tests {
		var ctx fasthttp.RequestCtx
		if tt.auth != "" {
			ctx.Request.Header.Set("Authorization", tt.auth)
		}
		if tt.cookie != "" {
			ctx.Request.Header.SetCookie(CookieAccess, tt.cookie)
		}
		if got := FromRequest(&ctx); got != tt.want {
			t.Errorf("auth %q cookie %q: got %q want %q", tt.auth, tt.cookie, got, tt.want)
		}
	}
}

func FuzzVerifyAccess(f *testing.F) {
	k, _ := NewHS256([]byte(secret))
	tok, _ := k.IssueAccess(1, RoleShopper)
	f.Add(tok)
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := k.VerifyAccess(s)
		if err == nil && (p.UserID <= 0 || (p.Role != RoleShopper && p.Role != RoleStaff)) {
			t.Fatalf("accepted %+v", p)
		}
	})
}
