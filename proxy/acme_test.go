package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/novashop/edge/internal/stack"
	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/proxy/config"
)

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// loopbackDNS answers every A question with 127.0.0.1, so Pebble's validation
// of any test name reaches the edge on loopback.
func loopbackDNS(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		for _, q := range r.Question {
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: net.IPv4(127, 0, 0, 1)})
			}
		}
		_ = w.WriteMsg(m)
	})}
	go srv.ActivateAndServe() //nolint:errcheck
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

// startPebble runs Debian's pebble (installed when missing) on loopback with
// its HTTPS certificate from ca, validating challenges on httpPort/tlsPort.
func startPebble(t *testing.T, ca *testCA, httpPort, tlsPort int) string {
	return startPebbleValidity(t, ca, httpPort, tlsPort, 0)
}

// startPebbleValidity is startPebble with certificates that last validity
// (Pebble's certificateValidityPeriod, whole seconds; zero keeps its five
// years), so that renewal before expiry can be tested in seconds.
func startPebbleValidity(t *testing.T, ca *testCA, httpPort, tlsPort int, validity time.Duration) string {
	paths, err := stack.Ensure(io.Discard, "pebble")
	if err != nil {
		t.Fatalf("pebble: %v", err)
	}
	dir := t.TempDir()
	cc := ca.issue("pebble", []string{"localhost", "127.0.0.1"}, leafOpts{cn: "pebble"})
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	conf := fmt.Sprintf(`{"pebble": {"listenAddress": %q, "managementListenAddress": "127.0.0.1:%d",
		"certificate": %q, "privateKey": %q, "httpPort": %d, "tlsPort": %d, "ocspResponderURL": "",
		"externalAccountBindingRequired": false, "certificateValidityPeriod": %d}}`, listen, freePort(t), cc.CertFile, cc.KeyFile, httpPort, tlsPort, int64(validity/time.Second))
	file := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, paths["pebble"], "-config", file, "-dnsserver", loopbackDNS(t))
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("pebble:\n%s", out.String())
		}
	})
	waitUntil(t, "pebble to listen", 10*time.Second, func() bool {
		c, err := net.Dial("tcp", listen)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return "https://" + listen + "/dir"
}

// acmeEdge starts an edge on fixed ports whose ACME issuer is Pebble.
func acmeEdge(t *testing.T, ca *testCA, dir string, plainPort, tlsPort int, domains, challenges []string) *tlsEdge {
	return acmeEdgeWith(t, ca, dir, plainPort, tlsPort, domains, challenges, nil)
}

// acmeEdgeWith is acmeEdge with tune applied to the configuration first.
func acmeEdgeWith(t *testing.T, ca *testCA, dir string, plainPort, tlsPort int, domains, challenges []string, tune func(*config.Config)) *tlsEdge {
	o := newOrigin(t, "o1", nil)
	cfg := testConfig(o)
	cfg.Listen = fmt.Sprintf("127.0.0.1:%d", plainPort)
	cfg.TLS.Listen = fmt.Sprintf("127.0.0.1:%d", tlsPort)
	cfg.TLS.HandshakeTimeout = 5 * time.Second
	cfg.TLS.ACME = config.ACME{DirectoryURL: dir, Email: "ops@shop.test", Domains: domains, Challenges: challenges,
		CARoot: filepath.Join(ca.dir, "ca.pem")}
	cfg.Cache.Enabled, cfg.Cache.RedisURL = true, testenv.Redis(t)
	if tune != nil {
		tune(&cfg)
	}
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	tln, err := net.Listen("tcp", cfg.TLS.Listen)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)     //nolint:errcheck
	go s.ServeTLS(tln) //nolint:errcheck
	e := &tlsEdge{edge: &edge{s: s, addr: ln.Addr().String()}, tlsAddr: tln.Addr().String()}
	t.Cleanup(func() { stopEdge(e) })
	return e
}

func stopEdge(e *tlsEdge) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = e.s.Shutdown(ctx)
}

// leafFor handshakes with SNI name and returns the served leaf.
func leafFor(t *testing.T, addr, name string) *x509.Certificate {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true})
	if err != nil {
		return nil
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

// writeCAPEM writes the test CA's certificate where acmeEdge's ca_root points.
func writeCAPEM(t *testing.T, ca *testCA) {
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
	if err := os.WriteFile(filepath.Join(ca.dir, "ca.pem"), caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestACMERenewal: Pebble issues certificates that last 40 seconds; two edges
// share the Redis storage and renew when half the lifetime is left, checking
// every second. The certificate is renewed once, by the one edge that holds
// the shared lock, before it expires, and both edges then serve the renewed
// certificate; GET /admin/tls's acme section shows the managed name, its
// expiry and the renewal.
func TestACMERenewal(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Pebble; skipped with -short")
	}
	const validity = 40 * time.Second
	ca := newTestCA(t)
	writeCAPEM(t, ca)
	plainPort, tlsPort := freePort(t), freePort(t)
	dir := startPebbleValidity(t, ca, plainPort, tlsPort, validity)
	name := fmt.Sprintf("renew-%d.shop.test", time.Now().UnixNano())
	tune := func(c *config.Config) {
		c.TLS.ACME.RenewCheckInterval = time.Second
		c.TLS.ACME.RenewalWindowRatio = 0.5
	}
	// a answers Pebble's challenges (Pebble validates on its ports); b shares
	// the storage and so answers nothing but may win the renewal lock.
	a := acmeEdgeWith(t, ca, dir, plainPort, tlsPort, []string{name}, []string{"http-01"}, tune)
	var first *x509.Certificate
	waitUntil(t, "a first certificate", 60*time.Second, func() bool {
		first = leafFor(t, a.tlsAddr, name)
		return first != nil && strings.Contains(first.Issuer.CommonName, "Pebble")
	})
	if life := first.NotAfter.Sub(first.NotBefore); life > 2*validity {
		t.Fatalf("Pebble issued a certificate for %v; certificateValidityPeriod was not applied", life)
	}
	b := acmeEdgeWith(t, ca, dir, freePort(t), freePort(t), []string{name}, []string{"http-01"}, tune)
	waitUntil(t, "the second edge to serve the stored certificate", 30*time.Second, func() bool {
		l := leafFor(t, b.tlsAddr, name)
		return l != nil && l.SerialNumber.Cmp(first.SerialNumber) == 0
	})
	if st := b.s.TLSStatus().ACME; st.Obtained != 0 {
		t.Fatalf("the second edge obtained %d certificates; it should have loaded the stored one", st.Obtained)
	}

	// Renewal is due when 20s are left; wait until both serve a newer one,
	// before the old one expires.
	renewed := func(e *tlsEdge) *x509.Certificate {
		l := leafFor(t, e.tlsAddr, name)
		if l == nil || l.SerialNumber.Cmp(first.SerialNumber) == 0 {
			return nil
		}
		return l
	}
	var na, nb *x509.Certificate
	waitUntil(t, "both edges to serve a renewed certificate", time.Until(first.NotAfter)+5*time.Second, func() bool {
		na, nb = renewed(a), renewed(b)
		return na != nil && nb != nil
	})
	if na.SerialNumber.Cmp(nb.SerialNumber) != 0 {
		t.Fatalf("the edges serve different renewed certificates (%s, %s): both renewed", na.SerialNumber, nb.SerialNumber)
	}
	if time.Now().After(first.NotAfter) {
		t.Fatalf("renewed only after the first certificate expired (%v)", first.NotAfter)
	}
	sa, sb := a.s.TLSStatus().ACME, b.s.TLSStatus().ACME
	if sa.Renewed+sb.Renewed != 1 {
		t.Fatalf("%d renewals (a %d, b %d); the shared lock should allow exactly one", sa.Renewed+sb.Renewed, sa.Renewed, sb.Renewed)
	}
	t.Logf("renewed by edge %s %v before the old certificate's expiry; new serial %s",
		map[bool]string{true: "a", false: "b"}[sa.Renewed == 1], first.NotAfter.Sub(maxTime(sa.LastRenewal, sb.LastRenewal)).Round(time.Second), na.SerialNumber)
	for _, st := range []*ACMEStatus{sa, sb} {
		if len(st.Managed) != 1 || st.Managed[0].Name != name || st.Managed[0].Serial != na.SerialNumber.Text(16) ||
			!st.Managed[0].NotAfter.Equal(na.NotAfter) || !st.Shared {
			t.Fatalf("admin acme section: %+v, want %s serial %s until %v on shared storage", st, name, na.SerialNumber.Text(16), na.NotAfter)
		}
	}
	if sa.Renewed == 1 && sa.LastRenewal.IsZero() || sb.Renewed == 1 && sb.LastRenewal.IsZero() {
		t.Fatal("the renewing edge reports no last_renewal time")
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// TestACMEPebble: against Pebble over loopback, an edge obtains a certificate
// through HTTP-01 on its plaintext listener, another through TLS-ALPN-01 on
// its TLS listener, and a second edge sharing the Redis storage serves the
// first certificate without a new issuance.
func TestACMEPebble(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Pebble; skipped with -short")
	}
	ca := newTestCA(t)
	writeCAPEM(t, ca)
	plainPort, tlsPort := freePort(t), freePort(t)
	dir := startPebble(t, ca, plainPort, tlsPort)
	run := fmt.Sprint(time.Now().UnixNano())

	issued := func(e *tlsEdge, name string) *x509.Certificate {
		var leaf *x509.Certificate
		waitUntil(t, "a certificate for "+name, 60*time.Second, func() bool {
			leaf = leafFor(t, e.tlsAddr, name)
			return leaf != nil && strings.Contains(leaf.Issuer.CommonName, "Pebble") && leaf.VerifyHostname(name) == nil
		})
		return leaf
	}

	h1 := "h1-" + run + ".shop.test"
	e := acmeEdge(t, ca, dir, plainPort, tlsPort, []string{h1}, []string{"http-01"})
	first := issued(e, h1)
	t.Logf("http-01: %s issued by %q, serial %s", h1, first.Issuer.CommonName, first.SerialNumber)
	if e.s.tls.acme.answered.Load() == 0 {
		t.Fatal("the edge's plaintext listener answered no http-01 challenge")
	}
	stopEdge(e)

	alpn := "alpn-" + run + ".shop.test"
	e = acmeEdge(t, ca, dir, plainPort, tlsPort, []string{alpn}, []string{"tls-alpn-01"})
	leaf := issued(e, alpn)
	t.Logf("tls-alpn-01: %s issued by %q", alpn, leaf.Issuer.CommonName)
	if e.s.tls.acme.answered.Load() == 0 {
		t.Fatal("the edge's TLS listener answered no tls-alpn-01 challenge")
	}
	stopEdge(e)

	// Another edge of the fleet (same Redis) serves the stored certificate.
	e = acmeEdge(t, ca, dir, plainPort, tlsPort, []string{h1}, []string{"http-01"})
	again := issued(e, h1)
	if n := e.s.tls.acme.answered.Load(); n != 0 {
		t.Errorf("the second edge answered %d challenges; it should have found the certificate in Redis", n)
	}
	if again.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatalf("the second edge got a new certificate (serial %s, first %s), not the shared one", again.SerialNumber, first.SerialNumber)
	}
}
