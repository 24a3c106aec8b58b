package stack

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// LocalCA is a throwaway certificate authority that `make up` and `make demo`
// create for the edge's HTTPS listener: one ECDSA P-256 CA and one ECDSA P-256
// leaf for 127.0.0.1, ::1 and localhost, valid for a week, written as PEM
// files into a directory of the stack. Nothing is added to the system's trust
// store: curl takes --cacert CAFile, a browser the SPKI pin (SPKIHash) or an
// exception. The same certificate serves the benchmark's edge and nginx.
type LocalCA struct {
	CAFile, CertFile, KeyFile string
	// SPKIHash is base64(SHA-256(leaf SubjectPublicKeyInfo)), what Chromium's
	// --ignore-certificate-errors-spki-list takes.
	SPKIHash string
	// Leaf is the parsed leaf certificate.
	Leaf *x509.Certificate
}

// NewLocalCA makes the CA and the leaf in dir (ca.pem, localhost.pem,
// localhost-key.pem; keys readable by the owner only).
func NewLocalCA(dir string) (*LocalCA, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("stack: local CA: %w", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Novashop local stack CA " + now.UTC().Format("2006-01-02 15:04:05")},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("stack: local CA: %w", err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("stack: local CA: %w", err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("stack: local CA leaf: %w", err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("stack: local CA leaf key: %w", err)
	}
	l := &LocalCA{
		CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "localhost.pem"),
		KeyFile: filepath.Join(dir, "localhost-key.pem"), Leaf: leaf,
	}
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	l.SPKIHash = base64.StdEncoding.EncodeToString(sum[:])
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{l.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644},
		{l.CertFile, chain, 0o644},
		// nginx's master reads it before dropping privileges; its workers never do.
		{l.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600},
	} {
		if err := os.WriteFile(f.path, f.data, f.mode); err != nil {
			return nil, fmt.Errorf("stack: local CA: %w", err)
		}
	}
	return l, nil
}

// Pool is a certificate pool holding the CA, for Go clients.
func (l *LocalCA) Pool() (*x509.CertPool, error) {
	b, err := os.ReadFile(l.CAFile)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("stack: %s holds no certificate", l.CAFile)
	}
	return p, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}
