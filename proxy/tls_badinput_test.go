package proxy

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/novashop/edge/proxy/config"
)

// stallAfterHello is a client connection that passes the ClientHello out and
// then never delivers the server's answer to the TLS client, so the client
// never sends its Finished: a client that stops mid-handshake.
type stallAfterHello struct {
	net.Conn
	wrote chan struct{}
	once  sync.Once
	stop  chan struct{}
}

func (c *stallAfterHello) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.once.Do(func() { close(c.wrote) })
	return n, err
}

func (c *stallAfterHello) Read([]byte) (int, error) {
	<-c.stop
	return 0, io.EOF
}

// TestTLSBadInput: each kind of bad TLS input ends in an alert (or, for
// plain HTTP, a 400) and a closed connection, within the handshake timeout,
// and the edge serves normally afterwards:
//   - a ClientHello record whose body is garbage: a decode alert;
//   - plain HTTP sent to the HTTPS port: HTTP/1.0 400 JSON;
//   - a client that sent a real ClientHello and then stops: closed after
//     tls.handshake_timeout;
//   - an unknown SNI under tls.strict_sni: an alert (without it, and without
//     SNI, the default certificate).
func TestTLSBadInput(t *testing.T) {
	const timeout = 400 * time.Millisecond
	ca := newTestCA(t)
	o := newOrigin(t, "o1", nil)
	cfg := tlsTestConfig([]config.Certificate{ca.issue("s", []string{"shop.test"}, leafOpts{})}, o)
	cfg.TLS.HandshakeTimeout = timeout
	cfg.TLS.StrictSNI = true
	e := startTLSEdge(t, cfg, Options{})

	// readAll reads what the edge sends until it closes, failing if it has
	// not closed within d.
	readAll := func(t *testing.T, c net.Conn, d time.Duration) ([]byte, time.Duration) {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(d))
		start := time.Now()
		b, err := io.ReadAll(c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection still open after %v (read %q)", d, b)
		}
		return b, time.Since(start)
	}
	dial := func(t *testing.T) net.Conn {
		c, err := net.Dial("tcp", e.tlsAddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}

	t.Run("garbage ClientHello", func(t *testing.T) {
		c := dial(t)
		// A handshake record (0x16, TLS 1.0 framing, 40 bytes) holding a
		// ClientHello (type 1, length 36) whose body is nonsense.
		rec := []byte{0x16, 0x03, 0x01, 0x00, 0x28, 0x01, 0x00, 0x00, 0x24}
		rec = append(rec, []byte(strings.Repeat("\xff", 36))...)
		_, _ = c.Write(rec)
		b, _ := readAll(t, c, 3*time.Second)
		if len(b) < 7 || b[0] != 0x15 || b[5] != 2 {
			t.Fatalf("answer %x, want a fatal TLS alert record", b)
		}
		t.Logf("alert %d", b[6])
	})

	t.Run("plain HTTP", func(t *testing.T) {
		c := dial(t)
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n")
		b, _ := readAll(t, c, 3*time.Second)
		if !strings.HasPrefix(string(b), "HTTP/1.0 400 ") || !strings.Contains(string(b), `{"error":`) {
			t.Fatalf("answer %q, want a 400 JSON", b)
		}
	})

	t.Run("stops mid-handshake", func(t *testing.T) {
		raw := dial(t)
		sc := &stallAfterHello{Conn: raw, wrote: make(chan struct{}), stop: make(chan struct{})}
		defer close(sc.stop)
		go func() { _ = tls.Client(sc, &tls.Config{ServerName: "shop.test", RootCAs: ca.pool}).Handshake() }()
		<-sc.wrote
		b, took := readAll(t, raw, timeout+3*time.Second)
		if len(b) == 0 || b[0] != 0x16 {
			t.Fatalf("no ServerHello before the close: %x", b)
		}
		if took < timeout/2 {
			t.Fatalf("closed after %v, before the handshake timeout %v", took, timeout)
		}
		t.Logf("closed %v after the ClientHello (timeout %v)", took.Round(time.Millisecond), timeout)
	})

	t.Run("unknown SNI", func(t *testing.T) {
		c, err := tls.Dial("tcp", e.tlsAddr, &tls.Config{ServerName: "other.test", InsecureSkipVerify: true})
		if err == nil {
			c.Close()
			t.Fatal("handshake for an unknown name succeeded under strict_sni")
		}
		if !strings.Contains(err.Error(), "remote error: tls:") {
			t.Fatalf("unknown SNI: %v, want a TLS alert", err)
		}
		// No SNI (an IP): the default certificate.
		c, err = tls.Dial("tcp", e.tlsAddr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("no SNI: %v", err)
		}
		if c.ConnectionState().PeerCertificates[0].VerifyHostname("shop.test") != nil {
			t.Error("no SNI: not the default certificate")
		}
		c.Close()
	})

	// Without strict_sni an unknown name gets the default certificate.
	cfg.TLS.StrictSNI = false
	lax := startTLSEdge(t, cfg, Options{})
	c, err := tls.Dial("tcp", lax.tlsAddr, &tls.Config{ServerName: "other.test", InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("unknown SNI without strict_sni: %v", err)
	}
	c.Close()

	if n := e.s.tls.handshakeFailures.Get(); n < 4 {
		t.Errorf("handshake failures counted: %d, want at least 4", n)
	}
	if r, _ := get(t, httpsClient(ca, "shop.test"), "https://"+e.tlsAddr+"/"); r.StatusCode != 200 {
		t.Fatalf("after bad input: %d", r.StatusCode)
	}
}

// TestTLSMaxHandshakes: with tls.max_handshakes in progress (clients that
// connect and say nothing), a further connection is closed at once and
// counted, rather than holding another goroutine and connection for the
// handshake timeout; once the stalled ones end, handshakes go through again.
func TestTLSMaxHandshakes(t *testing.T) {
	ca := newTestCA(t)
	o := newOrigin(t, "o1", nil)
	cfg := tlsTestConfig([]config.Certificate{ca.issue("s", []string{"shop.test"}, leafOpts{})}, o)
	cfg.TLS.MaxHandshakes = 2
	cfg.TLS.HandshakeTimeout = 20 * time.Second // the stalled clients hold their slots
	e := startTLSEdge(t, cfg, Options{})

	var stalled []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", e.tlsAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		stalled = append(stalled, c)
	}
	// The two are accepted and in their handshakes once the edge counts
	// them; a third is refused: closed with nothing written.
	deadline := time.Now().Add(10 * time.Second)
	for e.s.tls.inHandshake.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d handshakes in progress, want 2", e.s.tls.inHandshake.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	c, err := net.Dial("tcp", e.tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	n, err := c.Read(make([]byte, 1))
	if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("third connection: read %d, %v after %v; want it closed at once", n, err, time.Since(start))
	}
	if got := e.s.tls.handshakesRefused.Get(); got != 1 {
		t.Fatalf("edge_tls_handshakes_refused_total = %d, want 1", got)
	}
	for _, c := range stalled {
		c.Close()
	}
	deadline = time.Now().Add(10 * time.Second)
	for e.s.tls.inHandshake.Load() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d handshakes still in progress after their clients left", e.s.tls.inHandshake.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r, _ := get(t, httpsClient(ca, "shop.test"), "https://"+e.tlsAddr+"/"); r.StatusCode != 200 {
		t.Fatalf("after the stalled clients left: %d", r.StatusCode)
	}
}
