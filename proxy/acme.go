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
	"sync/atomic"

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
	rc      rueidis.Client
	cancel  context.CancelFunc
	// answered counts challenges this edge answered (http-01 requests,
	// tls-alpn-01 handshakes), for tests and GET /admin/tls.
	answered atomic.Int64
}

func (t *tlsFront) setupACME(cfg config.Config, plain fasthttp.RequestHandler) (fasthttp.RequestHandler, error) {
	ac := cfg.TLS.ACME
	a := &acmeState{domains: map[string]bool{}}
	for _, d := range ac.Domains {
		a.domains[strings.ToLower(d)] = true
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
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		Logger:           log,
	})
	magic = certmagic.New(a.cache, certmagic.Config{Storage: storage, Logger: log})
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
