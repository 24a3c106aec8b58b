package auth

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"
)

// FuzzVerify feeds arbitrary bytes to an HS256 verifier. It must never
// panic, every refusal must be a package sentinel, and anything it accepts
// must be one of the genuinely signed seeds (the fuzzer cannot forge
// HMAC-SHA256), with a well-formed identity.
func FuzzVerify(f *testing.F) {
	good := sign(f, jwt.SigningMethodHS256, testSecret, "", claimsAt(now))
	staff := sign(f, jwt.SigningMethodHS256, testSecret, "", with(claimsAt(now), "role", RoleStaff))
	genuine := map[string]bool{good: true, staff: true}
	for _, seed := range []string{
		good, staff, "", "a.b.c", "...", good + "x", strings.ToUpper(good),
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiI0MiJ9.",
		sign(f, jwt.SigningMethodHS256, []byte("wrong-secret-wrong-secret-wrong-!!"), "", claimsAt(now)),
		strings.Repeat("A", MaxTokenSize+1),
	} {
		f.Add([]byte(seed), int64(0))
	}
	v, err := NewVerifier(Config{Secret: testSecret, CacheSize: 128}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(v.Close)
	f.Fuzz(func(t *testing.T, token []byte, offset int64) {
		at := now.Add(time.Duration(offset%int64(time.Hour)) * time.Nanosecond)
		id, err := v.Verify(token, at)
		if err != nil {
			if !errors.Is(err, ErrNoToken) && !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("refusal %v matches no sentinel", err)
			}
			if id != (Identity{}) {
				t.Fatalf("refusal came with identity %+v", id)
			}
			return
		}
		if !genuine[string(token)] {
			t.Fatalf("forged token %q accepted as %+v", token, id)
		}
		if id.UserID == "" || (id.Role != RoleShopper && id.Role != RoleStaff) {
			t.Fatalf("malformed identity %+v", id)
		}
	})
}

// FuzzTokenFromRequest parses arbitrary header lines into a request and
// compares TokenFromRequest with a plain reference implementation.
func FuzzTokenFromRequest(f *testing.F) {
	for _, seed := range []string{
		"Authorization: Bearer abc\r\n",
		"Authorization: bearer \t abc \r\nCookie: session=x\r\n",
		"Authorization: Basic abc\r\nCookie: a=1; session=tok\r\n",
		"Cookie: session=\r\n",
		"Authorization: Bearer\r\n",
		"Authorization: BEARER  \r\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, headers []byte) {
		raw := append([]byte("GET / HTTP/1.1\r\nHost: shop\r\n"), headers...)
		raw = append(raw, "\r\n"...)
		var req fasthttp.Request
		if err := req.Read(bufio.NewReader(bytes.NewReader(raw))); err != nil {
			return // not a request fasthttp would hand us
		}
		got := TokenFromRequest(&req, "session")
		want := referenceToken(string(req.Header.Peek("Authorization")), string(req.Header.Cookie("session")))
		if (got == nil) != (want == "") || string(got) != want {
			t.Fatalf("TokenFromRequest = %q, reference = %q", got, want)
		}
	})
}

// referenceToken is TokenFromRequest written for clarity, not speed.
func referenceToken(auth, cookie string) string {
	if len(auth) > 7 && strings.EqualFold(auth[:6], "bearer") && (auth[6] == ' ' || auth[6] == '\t') {
		if tok := strings.Trim(auth[7:], " \t"); tok != "" {
			return tok
		}
	}
	return cookie
}

// FuzzParseJWKS: a hostile key server must not crash the edge, and a set
// that parses must hold only usable, correctly classified keys.
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"a"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","alg":"RS256"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ks, _, err := parseJWKS(body)
		if err != nil {
			return
		}
		if len(ks.all) == 0 || len(ks.all) > maxJWKSKeys {
			t.Fatalf("parsed set has %d keys", len(ks.all))
		}
		for _, k := range ks.all {
			if _, alg, err := classifyKey(k.key); err != nil || alg != k.alg {
				t.Fatalf("key %q kept with alg %s: %v", k.kid, k.alg, err)
			}
		}
	})
}

// FuzzParsePublicKeyPEM: a corrupt key file gives an error, never a panic
// or a key of an unexpected type.
func FuzzParsePublicKeyPEM(f *testing.F) {
	f.Add(pemPublic(f, edKey("a").Public()))
	f.Add([]byte("-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n"))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\n\n-----END PUBLIC KEY-----\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		key, alg, err := parsePublicKeyPEM(data)
		if err != nil {
			return
		}
		if _, want, err := classifyKey(key); err != nil || want != alg {
			t.Fatalf("parsed key %T with alg %q: %v", key, alg, err)
		}
	})
}
