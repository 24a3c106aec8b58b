package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/novashop/edge/proxy/certstore"
	"github.com/novashop/edge/proxy/config"
	"github.com/redis/rueidis"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// ACME: certmagic obtains and renews certificates for tls.acme.domains. Its
// storage is Redis (proxy/certstore) when the cache has one, so the edges of a
// fleet share one account, one certificate per name and one lock per renewal;
// the challenge answers live there too, so whichever edge the ACME server
// reaches can answer. HTTP-01 is answered on the plaintext listener
// (/.well-known/acme-challenge/), TLS-ALPN-01 on the TLS listener (ALPN
// acme-tls/1, connection closed after the handshake).

const acmeTLS1 = "acme-tls/1"

type acmeState struct {
	magic   *certmagic.Config
	cache   *certmagic.Cache
	issuer  *certmagic.ACMEIssuer
	domains map[string]bool
	names   []string // the managed names in configuration order
	rc      rueidis.Client
	cancel  context.CancelFunc
	// answered counts challenges this edge answered (http-01 requests,
	// tls-alpn-01 handshakes), for tests and GET /admin/tls.
	answered atomic.Int64

	// mu guards the renewal record below, written by certmagic's events.
	mu          sync.Mutex
	obtained    int64     // certificates this edge obtained (first issuance)
	renewed     int64     // certificates this edge renewed
	lastRenewal time.Time // when this edge last renewed one
	lastErr     string    // the last failed obtain or renewal, with its name
	lastErrAt   time.Time
}

// onEvent records certmagic's issuance events for GET /admin/tls and the
// renewal test: only the edge that held the renewal lock sees cert_obtained
// with renewal=true; its fleet peers reload the stored certificate quietly.
func (a *acmeState) onEvent(_ context.Context, event string, data map[string]any) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch event {
	case "cert_obtained":
		if r, _ := data["renewal"].(bool); r {
			a.renewed++
			a.lastRenewal = time.Now()
		} else {
			a.obtained++
		}
	case "cert_failed":
		a.lastErr = fmt.Sprintf("%v: %v", data["identifier"], data["error"])
		a.lastErrAt = time.Now()
	}
	return nil
}

// ACMEStatus is the acme section of GET /admin/tls.
type ACMEStatus struct {
	DirectoryURL string           `json:"directory_url"`
	Shared       bool             `json:"shared_storage"` // storage on Redis, shared by the fleet
	Managed      []ACMECertStatus `json:"managed"`
	// Obtained and Renewed count the certificates this edge obtained or
	// renewed itself; a peer's renewal shows as a new serial, not here.
	Obtained           int64     `json:"obtained"`
	Renewed            int64     `json:"renewed"`
	LastRenewal        time.Time `json:"last_renewal,omitzero"`
	LastError          string    `json:"last_error,omitempty"`
	LastErrorAt        time.Time `json:"last_error_at,omitzero"`
	ChallengesAnswered int64     `json:"challenges_answered"`
}

// ACMECertStatus is one managed name: the certificate served for it now
// (empty fields while none is issued yet).
type ACMECertStatus struct {
	Name      string    `json:"name"`
	Serial    string    `json:"serial,omitempty"`
	Issuer    string    `json:"issuer,omitempty"`
	NotBefore time.Time `json:"not_before,omitzero"`
	NotAfter  time.Time `json:"not_after,omitzero"`
}

func (a *acmeState) status(directory string) *ACMEStatus {
	st := &ACMEStatus{DirectoryURL: directory, Shared: a.rc != nil, ChallengesAnswered: a.answered.Load()}
	a.mu.Lock()
	st.Obtained, st.Renewed, st.LastRenewal, st.LastError, st.LastErrorAt = a.obtained, a.renewed, a.lastRenewal, a.lastErr, a.lastErrAt
	a.mu.Unlock()
	for _, name := range a.names {
		cs := ACMECertStatus{Name: name}
		// The newest of the cached certificates for the name is the one served.
		for _, c := range a.cache.AllMatchingCertificates(name) {
			if c.Leaf != nil && c.Leaf.NotAfter.After(cs.NotAfter) {
				cs.Serial, cs.Issuer = c.Leaf.SerialNumber.Text(16), c.Leaf.Issuer.CommonName
				cs.NotBefore, cs.NotAfter = c.Leaf.NotBefore, c.Leaf.NotAfter
			}
		}
		st.Managed = append(st.Managed, cs)
	}
	return st
}

func (t *tlsFront) setupACME(cfg config.Config, plain fasthttp.RequestHandler) (fasthttp.RequestHandler, error) {
	ac := cfg.TLS.ACME
	a := &acmeState{domains: map[string]bool{}}
	for _, d := range ac.Domains {
		a.domains[strings.ToLower(d)] = true
		a.names = append(a.names, strings.ToLower(d))
	}
	var storage certmagic.Storage
	if cfg.Cache.Enabled && cfg.Cache.RedisURL != "" {
		opt, err := rueidis.ParseURL(cfg.Cache.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("%w: tls.acme: %v", ErrInvalidOptions, err)
		}
		opt.DisableCache = true
		rc, err := rueidis.NewClient(opt)
		if err != nil {
			return nil, fmt.Errorf("tls.acme: redis: %w", err)
		}
		a.rc = rc
		storage = certstore.New(rc, certstore.Options{})
	}
	var roots *x509.CertPool
	if ac.CARoot != "" {
		b, err := os.ReadFile(ac.CARoot)
		if err != nil {
			return nil, fmt.Errorf("%w: tls.acme.ca_root: %v", ErrInvalidOptions, err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("%w: tls.acme.ca_root %s holds no PEM certificate", ErrInvalidOptions, ac.CARoot)
		}
	}
	log := t.log.Named("acme")
	var magic *certmagic.Config
	a.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		RenewCheckInterval: ac.RenewCheckInterval, // zero: certmagic's default
		Logger:             log,
	})
	magic = certmagic.New(a.cache, certmagic.Config{Storage: storage, Logger: log,
		RenewalWindowRatio: ac.RenewalWindowRatio, OnEvent: a.onEvent})
	port := func(addr string) int {
		_, p, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(p)
		return n
	}
	tmpl := certmagic.ACMEIssuer{
		CA: ac.DirectoryURL, TestCA: ac.DirectoryURL, Email: ac.Email, Agreed: true,
		TrustedRoots: roots, Logger: log,
		// The edge's own listeners answer the challenges (through the shared
		// storage); these ports only keep certmagic off 80 and 443.
		AltHTTPPort: port(cfg.Listen), AltTLSALPNPort: port(cfg.TLS.Listen),
	}
	if len(ac.Challenges) > 0 {
		tmpl.DisableHTTPChallenge = !slices.Contains(ac.Challenges, "http-01")
		tmpl.DisableTLSALPNChallenge = !slices.Contains(ac.Challenges, "tls-alpn-01")
	}
	a.issuer = certmagic.NewACMEIssuer(magic, tmpl)
	magic.Issuers = []certmagic.Issuer{a.issuer}
	a.magic = magic
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	if err := magic.ManageAsync(ctx, ac.Domains); err != nil {
		cancel()
		return nil, fmt.Errorf("tls.acme: %w", err)
	}
	t.acme = a
	t.config.NextProtos = append(t.config.NextProtos, acmeTLS1)
	challenge := fasthttpadaptor.NewFastHTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.issuer.HandleHTTPChallenge(w, r) {
			a.answered.Add(1)
		} else {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"no such challenge"}`))
		}
	}))
	return func(ctx *fasthttp.RequestCtx) {
		if strings.HasPrefix(string(ctx.Path()), "/.well-known/acme-challenge/") {
			challenge(ctx)
			return
		}
		plain(ctx)
	}, nil
}

// wants reports whether the ClientHello is for certmagic: a TLS-ALPN-01
// challenge, or a name it manages.
func (a *acmeState) wants(hello *tls.ClientHelloInfo) bool {
	if slices.Contains(hello.SupportedProtos, acmeTLS1) {
		return true
	}
	return a.domains[strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))]
}

func (a *acmeState) close() {
	a.cancel()
	a.cache.Stop()
	if a.rc != nil {
		a.rc.Close()
	}
}
