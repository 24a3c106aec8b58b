package auth

import (
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/golang-jwt/jwt/v5"
)

// maxKeyFileSize bounds how much of a key file is read; a public key PEM is
// well under 2 KiB even for RSA-4096.
const maxKeyFileSize = 64 << 10

// loadPublicKeyFile reads an Ed25519 or RSA public key from a PEM file and
// says which algorithm tokens signed with it must use.
func loadPublicKeyFile(path string) (key any, alg string, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, "", fmt.Errorf("%w: public key file: %v", ErrConfig, err)
	}
	if st.Size() > maxKeyFileSize {
		return nil, "", fmt.Errorf("%w: public key file %s is %d bytes, not a PEM public key", ErrConfig, path, st.Size())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("%w: public key file: %v", ErrConfig, err)
	}
	key, alg, err = parsePublicKeyPEM(data)
	if err != nil {
		return nil, "", fmt.Errorf("%w: public key file %s: %v", ErrConfig, path, err)
	}
	return key, alg, nil
}

// parsePublicKeyPEM decodes the first PEM block of data as a public key.
// Private keys are refused on purpose: the edge only verifies, and a private
// key on the edge's disk is one more place for it to leak from.
func parsePublicKeyPEM(data []byte) (any, string, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, "", fmt.Errorf("no PEM block found")
	}
	var pub any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY":
		return nil, "", fmt.Errorf("holds a private key (%s); give the edge the public key only (openssl pkey -pubout)", block.Type)
	default:
		return nil, "", fmt.Errorf("PEM block type %q is not a public key", block.Type)
	}
	if err != nil {
		return nil, "", err
	}
	return classifyKey(pub)
}

// classifyKey maps a parsed public key to the one algorithm it may verify.
func classifyKey(pub any) (any, string, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, "", fmt.Errorf("public Ed25519 key has %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
		return k, jwt.SigningMethodEdDSA.Alg(), nil
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return nil, "", fmt.Errorf("RSA key has %d bits, want at least %d", k.N.BitLen(), MinRSABits)
		}
		return k, jwt.SigningMethodRS256.Alg(), nil
	default:
		return nil, "", fmt.Errorf("key type %T is not supported; use Ed25519 (EdDSA) or RSA (RS256)", pub)
	}
}
