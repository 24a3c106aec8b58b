package tokens

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
)

// deriveSalt is HKDF's salt (RFC 5869 §2.2). It is fixed and public: the
// secret is the key material itself; the salt only separates this use of
// the key from any other HKDF over it.
const deriveSalt = "novashop-derive-v1"

// Derive returns a 32-byte key for one purpose (label, e.g. "storefront
// csrf v1"), derived from the signing key with HKDF-SHA256 (RFC 5869):
// every origin holding the same JWT_SECRET or Ed25519 key derives the same
// key for the same label, so no second secret has to be configured, while a
// derived key reveals nothing about the signing key nor about the keys of
// other labels. The label is HKDF's info; use a new label (or a version
// suffix) for every new purpose.
//
// Both HKDF steps are written out with HMAC because one 32-byte block of
// output needs exactly one Expand round (T(1) = HMAC(PRK, info | 0x01)), and
// so Derive has no error to return.
func (k *Keys) Derive(label string) []byte {
	var ikm []byte
	switch s := k.sign.(type) {
	case []byte:
		ikm = s
	case ed25519.PrivateKey:
		ikm = s.Seed()
	}
	ext := hmac.New(sha256.New, []byte(deriveSalt))
	ext.Write(ikm)
	prk := ext.Sum(nil)
	exp := hmac.New(sha256.New, prk)
	exp.Write([]byte(label))
	exp.Write([]byte{1})
	return exp.Sum(nil)
}
