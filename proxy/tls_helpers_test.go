package proxy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/novashop/edge/proxy/config"
)

// testCA is a throwaway certificate authority made in the test.
type testCA struct {
	t    testing.TB
	cert *x509.Certificate
	key  crypto.Signer
	pool *x509.CertPool
	dir  string
}

var serial atomic.Int64

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: "novashop test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{t: t, cert: cert, key: key, pool: pool, dir: t.TempDir()}
}

// leafOpts shape one leaf certificate.
type leafOpts struct {
	rsa  bool
	ocsp string // responder URL
	cn   string // subject CN, to tell certificates apart
}

// issue makes a leaf for names (DNS names, or IPs), writes the chain (leaf,
// CA) and key as PEM files under the CA's directory and returns their paths.
func (ca *testCA) issue(base string, names []string, o leafOpts) config.Certificate {
	ca.t.Helper()
	var key crypto.Signer
	var err error
	if o.rsa {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		ca.t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: o.cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if o.ocsp != "" {
		tmpl.OCSPServer = []string{o.ocsp}
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		ca.t.Fatal(err)
	}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})...)
	c := config.Certificate{CertFile: filepath.Join(ca.dir, base+".crt"), KeyFile: filepath.Join(ca.dir, base+".key")}
	writeFileAtomic(ca.t, c.CertFile, chain)
	writeFileAtomic(ca.t, c.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	return c
}

// writeFileAtomic replaces path by rename, as deployment tools do, with an
// mtime that differs from the previous file's even on coarse clocks.
func writeFileAtomic(t testing.TB, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	mt := time.Now().Add(time.Duration(serial.Add(1)) * time.Second)
	_ = os.Chtimes(tmp, mt, mt)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// tlsEdge is an edge with its TLS listener running.
type tlsEdge struct {
	*edge
	tlsAddr string
}

// tlsTestConfig is testConfig with a TLS listener over certs.
func tlsTestConfig(certs []config.Certificate, origins ...*origin) config.Config {
	c := testConfig(origins...)
	c.TLS.Listen = "127.0.0.1:0"
	c.TLS.Certificates = certs
	c.TLS.ReloadInterval = 100 * time.Millisecond
	c.TLS.HandshakeTimeout = time.Second
	return c
}

func startTLSEdge(t testing.TB, cfg config.Config, opt Options) *tlsEdge {
	t.Helper()
	e := startEdge(t, cfg, opt)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go e.s.ServeTLS(ln) //nolint:errcheck
	t.Cleanup(func() { _ = ln.Close() })
	return &tlsEdge{edge: e, tlsAddr: ln.Addr().String()}
}

// httpsClient is an HTTP/1.1 client trusting ca, sending SNI serverName.
func httpsClient(ca *testCA, serverName string) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: ca.pool, ServerName: serverName, ClientSessionCache: tls.NewLRUClientSessionCache(8)},
			// HTTP/1.1 only: ALPN h2 is tested on its own.
			TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
