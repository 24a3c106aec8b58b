package auth

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// verifierCase is one token against one verifier, and what must come out.
type verifierCase struct {
	name    string
	token   string
	at      time.Time // zero means now
	wantErr error     // nil means the token must verify
	wantID  Identity
}

// commonCases are the refusals every verifier must make, whatever its key:
// sign(c) mints a correctly signed token for the verifier under test.
func commonCases(t *testing.T, sign func(jwt.Claims) string) []verifierCase {
	good := sign(claimsAt(now))
	parts := strings.Split(good, ".")
	tamperedPayload := parts[0] + "." + b64(
		[]byte(`{"sub":"42","role":"staff","iss":"novashop","aud":"novashop-api","iat":`+
			itoa(now.Unix())+`,"exp":`+itoa(now.Add(15*time.Minute).Unix())+`}`)) + "." + parts[2]
	sig := []byte(parts[2])
	sig[len(sig)/2] ^= 'A' ^ 'B' // stays valid base64url whatever the letter
	if sig[len(sig)/2] == parts[2][len(sig)/2] {
		t.Fatal("signature not changed")
	}
	tamperedSig := parts[0] + "." + parts[1] + "." + string(sig)

	return []verifierCase{
		{name: "valid", token: good, wantID: Identity{UserID: "42", Role: RoleShopper}},
		{name: "valid staff", token: sign(with(claimsAt(now), "role", RoleStaff, "sub", "admin-1")),
			wantID: Identity{UserID: "admin-1", Role: RoleStaff}},
		{name: "audience in a list", token: sign(with(claimsAt(now), "aud", []string{"other", DefaultAudience})),
			wantID: Identity{UserID: "42", Role: RoleShopper}},
		{name: "expired within leeway", token: good, at: now.Add(15*time.Minute + 20*time.Second),
			wantID: Identity{UserID: "42", Role: RoleShopper}},
		{name: "expired", token: good, at: now.Add(15*time.Minute + 31*time.Second), wantErr: ErrExpired},
		{name: "not yet valid", token: sign(with(claimsAt(now), "nbf", now.Add(time.Minute).Unix())), wantErr: ErrNotYetValid},
		{name: "nbf within leeway", token: sign(with(claimsAt(now), "nbf", now.Add(20*time.Second).Unix())),
			wantID: Identity{UserID: "42", Role: RoleShopper}},
		{name: "issued in the future", token: sign(with(claimsAt(now), "iat", now.Add(time.Minute).Unix())), wantErr: ErrNotYetValid},
		{name: "tampered payload", token: tamperedPayload, wantErr: ErrInvalidToken},
		{name: "tampered signature", token: tamperedSig, wantErr: ErrInvalidToken},
		{name: "signature removed", token: parts[0] + "." + parts[1] + ".", wantErr: ErrInvalidToken},
		{name: "non-canonical base64 signature", token: nonCanonical(t, good), wantErr: ErrInvalidToken},
		{name: "signature one char longer", token: good + "A", wantErr: ErrInvalidToken},
		{name: "wrong audience", token: sign(with(claimsAt(now), "aud", "someone-else")), wantErr: ErrInvalidToken},
		{name: "missing audience", token: sign(with(claimsAt(now), "aud", nil)), wantErr: ErrInvalidToken},
		{name: "wrong issuer", token: sign(with(claimsAt(now), "iss", "evil")), wantErr: ErrInvalidToken},
		{name: "missing issuer", token: sign(with(claimsAt(now), "iss", nil)), wantErr: ErrInvalidToken},
		{name: "missing exp", token: sign(with(claimsAt(now), "exp", nil)), wantErr: ErrInvalidToken},
		{name: "missing sub", token: sign(with(claimsAt(now), "sub", nil)), wantErr: ErrInvalidToken},
		{name: "numeric sub", token: sign(with(claimsAt(now), "sub", 42)), wantErr: ErrInvalidToken},
		{name: "sub with header injection", token: sign(with(claimsAt(now), "sub", "42\r\nX-User-Role: staff")), wantErr: ErrInvalidToken},
		{name: "sub too long", token: sign(with(claimsAt(now), "sub", strings.Repeat("1", 129))), wantErr: ErrInvalidToken},
		{name: "bad role", token: sign(with(claimsAt(now), "role", "admin")), wantErr: ErrInvalidToken},
		{name: "refresh token as access token", token: sign(with(claimsAt(now), "aud", "novashop-refresh", "role", nil, "jti", "r1",
			"exp", now.Add(7*24*time.Hour).Unix())), wantErr: ErrInvalidToken},
		{name: "missing role", token: sign(with(claimsAt(now), "role", nil)), wantErr: ErrInvalidToken},
		{name: "role of wrong case", token: sign(with(claimsAt(now), "role", "Staff")), wantErr: ErrInvalidToken},
		{name: "alg none", token: sign2(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claimsAt(now)), wantErr: ErrInvalidToken},
		{name: "alg none by hand", token: b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".",
			wantErr: ErrInvalidToken},
		{name: "garbage", token: "not a token", wantErr: ErrInvalidToken},
		{name: "garbage with dots", token: "a.b.c", wantErr: ErrInvalidToken},
		{name: "two segments", token: parts[0] + "." + parts[1], wantErr: ErrInvalidToken},
		{name: "header is not JSON", token: "e30x." + parts[1] + "." + parts[2], wantErr: ErrInvalidToken},
		{name: "empty", token: "", wantErr: ErrNoToken},
		{name: "huge", token: good + strings.Repeat("A", MaxTokenSize), wantErr: ErrInvalidToken},
	}
}

func sign2(t *testing.T, m jwt.SigningMethod, key any, c jwt.Claims) string {
	return sign(t, m, key, "", c)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// nonCanonical re-spells tok's signature with a non-zero unused trailing
// bit: the same signature bytes under lenient base64, a different string.
// Strict decoding must refuse it, or two spellings of one token would exist.
func nonCanonical(t *testing.T, tok string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, tok[len(tok)-1])
	if last < 0 || len(strings.Split(tok, ".")[2])%4 == 0 {
		t.Fatalf("signature of %q has no unused bits", tok)
	}
	alt := tok[:len(tok)-1] + string(alphabet[last^1])
	lenient, _ := base64.RawURLEncoding.DecodeString(strings.Split(alt, ".")[2])
	orig, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[2])
	if !bytes.Equal(lenient, orig) {
		t.Fatal("re-spelled signature decodes differently; the test would prove nothing")
	}
	return alt
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func runCases(t *testing.T, v *Verifier, cases []verifierCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			at := tc.at
			if at.IsZero() {
				at = now
			}
			// Twice: the second answer may come from the cache and must agree.
			for round := 0; round < 2; round++ {
				id, err := v.Verify([]byte(tc.token), at)
				if tc.wantErr == nil {
					if err != nil {
						t.Fatalf("round %d: Verify = %v, want success", round, err)
					}
					if id != tc.wantID {
						t.Fatalf("round %d: identity %+v, want %+v", round, id, tc.wantID)
					}
					continue
				}
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("round %d: Verify error = %v, want %v", round, err, tc.wantErr)
				}
				if id != (Identity{}) {
					t.Fatalf("round %d: refused token yielded identity %+v", round, id)
				}
				if tc.wantErr != ErrNoToken && !errors.Is(err, ErrInvalidToken) {
					t.Fatalf("round %d: refusal %v does not match ErrInvalidToken", round, err)
				}
			}
		})
	}
}

func TestVerifyHS256(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret})
	signer := func(c jwt.Claims) string { return sign(t, jwt.SigningMethodHS256, testSecret, "", c) }
	cases := commonCases(t, signer)
	cases = append(cases,
		verifierCase{name: "wrong secret", token: sign(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdefghij"), "", claimsAt(now)),
			wantErr: ErrInvalidToken},
		verifierCase{name: "HS512 with the right secret", token: sign(t, jwt.SigningMethodHS512, testSecret, "", claimsAt(now)),
			wantErr: ErrInvalidToken},
		verifierCase{name: "EdDSA token", token: sign(t, jwt.SigningMethodEdDSA, edKey("a"), "", claimsAt(now)), wantErr: ErrInvalidToken},
	)
	runCases(t, v, cases)
}

func TestVerifyEdDSA(t *testing.T) {
	priv := edKey("origin")
	pub := priv.Public().(ed25519.PublicKey)
	pubPEM := pemPublic(t, pub)
	v := newVerifier(t, Config{PublicKeyFile: writeFile(t, "ed.pem", pubPEM)})
	signer := func(c jwt.Claims) string { return sign(t, jwt.SigningMethodEdDSA, priv, "", c) }
	cases := commonCases(t, signer)
	cases = append(cases,
		verifierCase{name: "wrong key", token: sign(t, jwt.SigningMethodEdDSA, edKey("attacker"), "", claimsAt(now)), wantErr: ErrInvalidToken},
		verifierCase{name: "alg confusion: HS256 keyed with the PEM", token: sign(t, jwt.SigningMethodHS256, pubPEM, "", claimsAt(now)),
			wantErr: ErrInvalidToken},
		verifierCase{name: "alg confusion: HS256 keyed with the raw key", token: sign(t, jwt.SigningMethodHS256, []byte(pub), "", claimsAt(now)),
			wantErr: ErrInvalidToken},
		verifierCase{name: "kid header is ignored", token: sign(t, jwt.SigningMethodEdDSA, priv, "whatever", claimsAt(now)),
			wantID: Identity{UserID: "42", Role: RoleShopper}},
	)
	runCases(t, v, cases)
}

func TestVerifyRS256(t *testing.T) {
	priv := rsaKey(t, "origin")
	pubPEM := pemPublic(t, &priv.PublicKey)
	v := newVerifier(t, Config{PublicKeyFile: writeFile(t, "rsa.pem", pubPEM)})
	signer := func(c jwt.Claims) string { return sign(t, jwt.SigningMethodRS256, priv, "", c) }
	cases := commonCases(t, signer)
	cases = append(cases,
		verifierCase{name: "wrong key", token: sign(t, jwt.SigningMethodRS256, rsaKey(t, "attacker"), "", claimsAt(now)), wantErr: ErrInvalidToken},
		verifierCase{name: "alg confusion: HS256 keyed with the PEM", token: sign(t, jwt.SigningMethodHS256, pubPEM, "", claimsAt(now)),
			wantErr: ErrInvalidToken},
		verifierCase{name: "PS256 with the same key", token: sign(t, jwt.SigningMethodPS256, priv, "", claimsAt(now)), wantErr: ErrInvalidToken},
		verifierCase{name: "RS512 with the same key", token: sign(t, jwt.SigningMethodRS512, priv, "", claimsAt(now)), wantErr: ErrInvalidToken},
	)
	runCases(t, v, cases)
}

func TestCustomIssuerAudience(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret, Issuer: "shop-b", Audience: "edge-b", Leeway: time.Second})
	ok := sign(t, jwt.SigningMethodHS256, testSecret, "", with(claimsAt(now), "iss", "shop-b", "aud", "edge-b"))
	if _, err := v.Verify([]byte(ok), now); err != nil {
		t.Fatalf("custom iss/aud refused: %v", err)
	}
	if _, err := v.Verify([]byte(ok), now.Add(15*time.Minute+2*time.Second)); !errors.Is(err, ErrExpired) {
		t.Fatalf("1s leeway: Verify 2s after exp = %v, want ErrExpired", err)
	}
	def := sign(t, jwt.SigningMethodHS256, testSecret, "", claimsAt(now))
	if _, err := v.Verify([]byte(def), now); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("default iss/aud accepted by a verifier configured otherwise: %v", err)
	}
}

func TestNewVerifierConfigErrors(t *testing.T) {
	edPEM := pemPublic(t, edKey("x").Public())
	tests := []struct {
		name string
		cfg  Config
		want string // fragment of the error
	}{
		{"no key", Config{}, "no JWT verification key"},
		{"two keys", Config{Secret: testSecret, JWKSURL: "http://127.0.0.1:1/jwks"}, "exclusive"},
		{"short secret", Config{Secret: []byte("secret")}, "at least 32"},
		{"negative leeway", Config{Secret: testSecret, Leeway: -time.Second}, "leeway"},
		{"huge leeway", Config{Secret: testSecret, Leeway: time.Hour}, "leeway"},
		{"bad JWKS scheme", Config{JWKSURL: "ftp://keys/jwks"}, "http or https"},
		{"JWKS without host", Config{JWKSURL: "http:///jwks"}, "no host"},
		{"missing key file", Config{PublicKeyFile: "/nonexistent/key.pem"}, "no such file"},
		{"not PEM", Config{PublicKeyFile: writeFile(t, "k", []byte("hello"))}, "no PEM block"},
		{"private key", Config{PublicKeyFile: writeFile(t, "k", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))},
			"private key"},
		{"certificate", Config{PublicKeyFile: writeFile(t, "k", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))},
			"not a public key"},
		{"corrupt public key", Config{PublicKeyFile: writeFile(t, "k", []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))},
			"public key file"},
		{"everything wrong at once", Config{Secret: []byte("x"), PublicKeyFile: "f", Leeway: -1}, "exclusive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(tt.cfg, nil)
			if err == nil {
				v.Close()
				t.Fatal("NewVerifier succeeded, want an error")
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want ErrConfig mentioning %q", err, tt.want)
			}
		})
	}
	// A good file still loads, so the cases above fail for their own reason.
	if _, err := NewVerifier(Config{PublicKeyFile: writeFile(t, "ok.pem", edPEM)}, nil); err != nil {
		t.Fatalf("good key file refused: %v", err)
	}
}

func TestSmallRSAKeyRefused(t *testing.T) {
	// A 1024-bit modulus, built from a PKCS #1 block to avoid generating one.
	small := rsaKey(t, "origin").PublicKey
	small.N = new(big.Int).Rsh(small.N, 1024)
	_, _, err := classifyKey(&small)
	if err == nil || !strings.Contains(err.Error(), "at least 2048") {
		t.Fatalf("classifyKey(1024-bit RSA) = %v, want a size error", err)
	}
}

func TestTokenBytesNotRetained(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret})
	tok := []byte(sign(t, jwt.SigningMethodHS256, testSecret, "", claimsAt(now)))
	orig := bytes.Clone(tok)
	if _, err := v.Verify(tok, now); err != nil {
		t.Fatal(err)
	}
	for i := range tok { // the caller reuses its buffer
		tok[i] = 'x'
	}
	if _, err := v.Verify(orig, now); err != nil {
		t.Fatalf("verified token refused after the caller reused its buffer: %v", err)
	}
	if _, err := v.Verify(tok, now); err == nil {
		t.Fatal("overwritten buffer verified")
	}
}
