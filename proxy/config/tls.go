package config

import (
	"fmt"
	"net"
	"time"
)

// TLS configures the HTTPS listener (proxy/tls.go). An empty Listen turns it off.
type TLS struct {
	// Listen is the HTTPS address, host:port; empty means no TLS listener.
	Listen string `yaml:"listen"`
	// Certificates are PEM certificate chains and their keys (ECDSA, RSA or
	// Ed25519). The client's SNI picks among them; the first is the default for
	// clients that send no SNI or a name no certificate covers.
	Certificates []Certificate `yaml:"certificates"`
	// RedirectHTTP makes the plaintext listener answer 308 to the same URL over
	// https instead of serving.
	RedirectHTTP bool `yaml:"redirect_http"`
	// HSTS is the Strict-Transport-Security header sent on HTTPS answers.
	HSTS HSTS `yaml:"hsts"`
	// ReloadInterval is how often the certificate and key files are checked for
	// a change (size or modification time); negative turns polling off (SIGHUP
	// still reloads).
	ReloadInterval time.Duration `yaml:"reload_interval"`
	// HandshakeTimeout bounds a TLS handshake, so a client that stops mid-way
	// holds a connection for at most this long.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
	// MaxHandshakes bounds the TLS handshakes in progress at once. Each one
	// holds a goroutine, a connection and crypto state for up to
	// HandshakeTimeout, so a flood of clients that connect and stall (or
	// start handshakes faster than the CPU finishes them) would otherwise grow
	// without bound; beyond it a new connection is closed at once and counted
	// (edge_tls_handshakes_refused_total), as HAProxy's maxsslconn does.
	MaxHandshakes int `yaml:"max_handshakes"`
	// StrictSNI refuses a handshake whose SNI names no configured
	// certificate (nor an ACME domain) with an alert, instead of answering
	// with the default certificate (nginx's ssl_reject_handshake). A
	// ClientHello without SNI (a client dialling an IP) still gets the default.
	StrictSNI bool `yaml:"strict_sni"`
	// SessionTickets configures resumption keys.
	SessionTickets SessionTickets `yaml:"session_tickets"`
	// OCSPStapling fetches OCSP answers in the background for certificates that
	// name a responder and staples them to handshakes.
	OCSPStapling bool `yaml:"ocsp_stapling"`
	// HTTP2 offers HTTP/2 by ALPN (h2, with http/1.1 as the fallback).
	HTTP2 bool `yaml:"http2"`
	// HTTP2Server picks the HTTP/2 server behind ALPN h2: "native"
	// (proxy/h2srv, which feeds the handler directly and answers cache hits
	// on the connection's reading goroutine; the default: 2.4x the bridge's
	// req/s at 0.3x its CPU, h2spec 146/146) or "xnet" (golang.org/x/net/http2
	// bridged into the handler, kept as a fallback). Empty means native.
	HTTP2Server string `yaml:"http2_server"`
	// HTTP3 serves HTTP/3 over QUIC on tls.listen's port over UDP and
	// advertises it with Alt-Svc; it needs HTTP2 (it shares its bridge).
	HTTP3 bool `yaml:"http3"`
	// ACME gets certificates automatically (certmagic) for its domains.
	ACME ACME `yaml:"acme"`
}

// ACME configures automatic certificates. With the cache's Redis the account,
// certificates and locks live there, shared by every edge of a fleet.
type ACME struct {
	// DirectoryURL is the ACME server's directory; required with Domains.
	DirectoryURL string `yaml:"directory_url"`
	// Email is the account's contact.
	Email string `yaml:"email"`
	// Domains get certificates from the ACME server; empty turns ACME off.
	Domains []string `yaml:"domains"`
	// CARoot is a PEM file of roots trusted for the ACME server's own HTTPS
	// (a private ACME server); empty trusts the system roots.
	CARoot string `yaml:"ca_root"`
	// Challenges are the challenge types offered: http-01 (on listen) and
	// tls-alpn-01 (on tls.listen); empty offers both.
	Challenges []string `yaml:"challenges"`
	// RenewCheckInterval is how often certmagic looks for certificates due
	// for renewal (and for ones a fleet peer renewed in the shared storage);
	// zero keeps certmagic's 10 minutes. Short values are for tests with an
	// ACME server that issues short-lived certificates.
	RenewCheckInterval time.Duration `yaml:"renew_check_interval"`
	// RenewalWindowRatio is the share of a certificate's lifetime, counted
	// back from its expiry, in which it is renewed; zero keeps certmagic's
	// 1/3 (a 90-day certificate renews 30 days before it expires). An ACME
	// server's renewal information (ARI) may pick an earlier time.
	RenewalWindowRatio float64 `yaml:"renewal_window_ratio"`
}

// Certificate is one certificate chain and its private key.
type Certificate struct {
	// CertFile is the PEM chain, leaf first.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key.
	KeyFile string `yaml:"key_file"`
}

// HSTS is the Strict-Transport-Security policy (RFC 6797).
type HSTS struct {
	// MaxAge is max-age; zero sends no header.
	MaxAge time.Duration `yaml:"max_age"`
	// IncludeSubdomains adds includeSubDomains.
	IncludeSubdomains bool `yaml:"include_subdomains"`
	// Preload adds preload.
	Preload bool `yaml:"preload"`
}

// SessionTickets configures TLS session ticket keys. With the cache's Redis
// (cache.enabled), the keys live in Redis so that every edge of a fleet can
// resume the sessions of the others; without it they are local to the process.
type SessionTickets struct {
	// Disabled turns session tickets off (every handshake is a full one).
	Disabled bool `yaml:"disabled"`
	// Rotate is the life of one encryption key; a key still decrypts for one
	// more period after it stops encrypting.
	Rotate time.Duration `yaml:"rotate"`
	// Namespace prefixes the keys in Redis; edges that share sessions must agree.
	Namespace string `yaml:"namespace"`
}

// The HTTP/2 servers tls.http2_server and h2c_server choose between.
const (
	H2ServerXNet   = "xnet"
	H2ServerNative = "native"
)

// tlsDefaults are TLS's defaults, used by Default.
func tlsDefaults() TLS {
	return TLS{
		ReloadInterval:   10 * time.Second,
		HandshakeTimeout: 10 * time.Second,
		MaxHandshakes:    1024,
		SessionTickets:   SessionTickets{Rotate: time.Hour, Namespace: "novashop:tlstk:"},
		OCSPStapling:     true,
		HTTP2:            true,
		HTTP2Server:      H2ServerNative,
		HTTP3:            true,
	}
}

// tlsProblems checks the tls section (c.Listen and c.AdminListen for clashes).
func (c Config) tlsProblems() []string {
	var p []string
	bad := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	t := c.TLS
	if t.Listen == "" {
		if len(t.Certificates) > 0 {
			bad("tls.certificates are set but tls.listen is empty")
		}
		if t.RedirectHTTP {
			bad("tls.redirect_http needs tls.listen")
		}
		return p
	}
	if _, port, err := net.SplitHostPort(t.Listen); err != nil {
		bad("tls.listen %q is not host:port", t.Listen)
	} else if port != "0" && (t.Listen == c.Listen || t.Listen == c.AdminListen) {
		bad("tls.listen must differ from listen and admin_listen")
	}
	if len(t.Certificates) == 0 && len(t.ACME.Domains) == 0 {
		bad("tls.certificates: at least one certificate (or tls.acme.domains) is required with tls.listen")
	}
	if len(t.ACME.Domains) > 0 && t.ACME.DirectoryURL == "" {
		bad("tls.acme.directory_url is required with tls.acme.domains")
	}
	if a := t.ACME; a.RenewCheckInterval < 0 || (a.RenewCheckInterval > 0 && a.RenewCheckInterval < 100*time.Millisecond) {
		bad("tls.acme.renew_check_interval %v must be 0 (certmagic's 10m) or at least 100ms", a.RenewCheckInterval)
	}
	if r := t.ACME.RenewalWindowRatio; r < 0 || r >= 1 {
		bad("tls.acme.renewal_window_ratio %v must be in [0, 1) (0: certmagic's 1/3)", r)
	}
	for i, ch := range t.ACME.Challenges {
		if ch != "http-01" && ch != "tls-alpn-01" {
			bad("tls.acme.challenges[%d] %q must be http-01 or tls-alpn-01", i, ch)
		}
	}
	for i, cert := range t.Certificates {
		if cert.CertFile == "" || cert.KeyFile == "" {
			bad("tls.certificates[%d]: cert_file and key_file are both required", i)
		}
	}
	switch t.HTTP2Server {
	case "", H2ServerXNet, H2ServerNative:
	default:
		bad("tls.http2_server %q must be %s or %s", t.HTTP2Server, H2ServerXNet, H2ServerNative)
	}
	if t.HTTP3 && !t.HTTP2 {
		bad("tls.http3 needs tls.http2 (they share the bridge into the handler)")
	}
	if t.HSTS.MaxAge < 0 {
		bad("tls.hsts.max_age %v must not be negative", t.HSTS.MaxAge)
	}
	if t.HandshakeTimeout <= 0 || t.HandshakeTimeout > time.Minute {
		bad("tls.handshake_timeout %v must be in (0, 1m]", t.HandshakeTimeout)
	}
	if t.MaxHandshakes < 1 || t.MaxHandshakes > 1<<20 {
		bad("tls.max_handshakes %d must be in [1, 1048576]", t.MaxHandshakes)
	}
	if t.ReloadInterval >= 0 && t.ReloadInterval < 100*time.Millisecond {
		bad("tls.reload_interval %v must be at least 100ms (negative turns polling off)", t.ReloadInterval)
	}
	if !t.SessionTickets.Disabled {
		if t.SessionTickets.Rotate < time.Second || t.SessionTickets.Rotate > 7*24*time.Hour {
			bad("tls.session_tickets.rotate %v must be 1s..168h", t.SessionTickets.Rotate)
		}
		if t.SessionTickets.Namespace == "" {
			bad("tls.session_tickets.namespace must not be empty")
		}
	}
	return p
}
