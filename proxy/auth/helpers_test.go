package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// now is the fixed clock of these tests.
var now = time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)

var testSecret = []byte("novashop-test-secret-0123456789abcdef")

// edKey derives a deterministic Ed25519 key from a name.
func edKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("ed25519 test key " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

var rsaKeys sync.Map // name -> *rsa.PrivateKey

// rsaKey generates (once per name and test binary) a 2048-bit RSA key.
func rsaKey(t testing.TB, name string) *rsa.PrivateKey {
	t.Helper()
	if k, ok := rsaKeys.Load(name); ok {
		return k.(*rsa.PrivateKey)
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	actual, _ := rsaKeys.LoadOrStore(name, k)
	return actual.(*rsa.PrivateKey)
}

// pemPublic encodes a public key as a PKIX "PUBLIC KEY" PEM block.
func pemPublic(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// claimsAt is a valid shopper token's claims issued at at.
func claimsAt(at time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"sub":  "42",
		"role": RoleShopper,
		"iss":  DefaultIssuer,
		"aud":  DefaultAudience,
		"iat":  at.Unix(),
		"exp":  at.Add(15 * time.Minute).Unix(),
	}
}

// with returns a copy of c with the given changes; a nil value deletes.
func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(out, k)
		} else {
			out[k] = kv[i+1]
		}
	}
	return out
}

// sign makes a token with method and key; kid is set when not empty.
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("signing %s token: %v", method.Alg(), err)
	}
	return s
}

func newVerifier(t testing.TB, cfg Config) *Verifier {
	t.Helper()
	v, err := NewVerifier(cfg, nil)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	t.Cleanup(v.Close)
	return v
}
