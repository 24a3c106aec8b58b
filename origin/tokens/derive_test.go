package tokens

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"testing"
)

func TestDerive(t *testing.T) {
	hs, err := NewHS256([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	hs2, err := NewHS256([]byte(secret + "x"))
	if err != nil {
		t.Fatal(err)
	}
	ed, priv := edKeys(t)
	ed2, _ := edKeys(t)
	same, err := NewEdDSA(priv)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		a, b   *Keys
		la, lb string
		equal  bool
	}{
		{"same secret same label", hs, hs, "csrf", "csrf", true},
		{"same secret other label", hs, hs, "csrf", "session", false},
		{"other secret same label", hs, hs2, "csrf", "csrf", false},
		{"same ed25519 key, two Keys values", ed, same, "csrf", "csrf", true},
		{"other ed25519 key", ed, ed2, "csrf", "csrf", false},
		{"hs256 vs ed25519", hs, ed, "csrf", "csrf", false},
		{"empty label differs", hs, hs, "", "csrf", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := tt.a.Derive(tt.la), tt.b.Derive(tt.lb)
			if len(a) != 32 || len(b) != 32 {
				t.Fatalf("lengths %d, %d; want 32", len(a), len(b))
			}
			if bytes.Equal(a, b) != tt.equal {
				t.Fatalf("equal = %v, want %v", !tt.equal, tt.equal)
			}
		})
	}
}

// TestDeriveIsHKDF pins Derive to RFC 5869 HKDF-SHA256, checked against the
// standard library's implementation.
func TestDeriveIsHKDF(t *testing.T) {
	hs, err := NewHS256([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	ed, priv := edKeys(t)
	for _, c := range []struct {
		k   *Keys
		ikm []byte
	}{{hs, []byte(secret)}, {ed, priv.Seed()}} {
		want, err := hkdf.Key(sha256.New, c.ikm, []byte(deriveSalt), "storefront csrf v1", 32)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.k.Derive("storefront csrf v1"); !bytes.Equal(got, want) {
			t.Fatalf("%s: Derive = %x, HKDF = %x", c.k.Algorithm(), got, want)
		}
	}
}
