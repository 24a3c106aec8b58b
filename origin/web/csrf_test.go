package web

import (
	"bytes"
	"strings"
	"testing"

	"github.com/novashop/edge/origin/tokens"
)

func TestCSRF(t *testing.T) {
	c := csrf{key: bytes.Repeat([]byte("k"), 32)}
	other := csrf{key: bytes.Repeat([]byte("o"), 32)}
	tok := c.issue()
	if !c.valid(tok) || other.valid(tok) {
		t.Fatalf("token %q: valid=%v under its key, %v under another", tok, c.valid(tok), other.valid(tok))
	}
	if c.issue() == tok {
		t.Fatal("two tokens are equal")
	}
	nonce, _, _ := strings.Cut(tok, ".")
	forged := nonce + "." + strings.Repeat("A", 43)
	tests := []struct {
		name, cookie, sub string
		ok                bool
	}{
		{"match", tok, tok, true},
		{"no cookie", "", tok, false},
		{"no field", tok, "", false},
		{"mismatch", tok, c.issue(), false},
		{"forged pair", forged, forged, false},
		{"unsigned pair", nonce, nonce, false},
		{"other key", other.issue(), "", false},
		{"garbage", "a.b", "a.b", false},
		{"huge", strings.Repeat("a", 500), strings.Repeat("a", 500), false},
	}
	for _, tt := range tests {
		if err := c.check(tt.cookie, tt.sub); (err == nil) != tt.ok {
			t.Errorf("%s: check = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func FuzzCSRFCheck(f *testing.F) {
	c := csrf{key: bytes.Repeat([]byte("k"), 32)}
	// A fixed nonce: fuzz workers are separate processes, so a random
	// token would differ between the corpus and the checks.
	const nonce = "AAAAAAAAAAAAAAAAAAAAAA"
	good := nonce + "." + b64(c.mac(nonce))
	f.Add(good, good)
	f.Add("", "")
	f.Add("a.b", "a.b")
	f.Add(good[:22]+".", good[:22]+".")
	f.Fuzz(func(t *testing.T, cookie, sub string) {
		err := c.check(cookie, sub)
		if err == nil && (cookie != sub || !c.valid(cookie)) {
			t.Fatalf("accepted cookie %q with field %q", cookie, sub)
		}
		if err == nil && cookie != good {
			// Any other accepted token would be a forged MAC.
			t.Fatalf("accepted a token the key never issued: %q", cookie)
		}
	})
}

func TestDeriveCSRFKey(t *testing.T) {
	k1, _ := tokens.NewHS256([]byte(strings.Repeat("s", 32)))
	k1b, _ := tokens.NewHS256([]byte(strings.Repeat("s", 32)))
	k2, _ := tokens.NewHS256([]byte(strings.Repeat("t", 32)))
	a := deriveCSRFKey(k1)
	b := deriveCSRFKey(k1b)
	c := deriveCSRFKey(k2)
	if !bytes.Equal(a, b) {
		t.Fatal("two origins sharing a secret derive different CSRF keys")
	}
	if bytes.Equal(a, c) || len(a) != 32 {
		t.Fatalf("different secrets derive the same key (or a short one: %d bytes)", len(a))
	}
	if bytes.Equal(a, k1.Derive("another purpose")) {
		t.Fatal("the CSRF key equals another label's key")
	}
}
