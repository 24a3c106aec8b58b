package proxy

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/ocsp"
)

// OCSP stapling: for every certificate that names a responder (the leaf's
// OCSPServer) and carries its issuer in the chain, the background loop fetches a
// signed status, checks it against the issuer, and staples a Good answer into a
// copy of the tls.Certificate, swapped in atomically. The answer is fetched again
// past half its validity; a failure keeps the staple in force while it is valid.

const (
	ocspCheckEvery   = time.Minute
	ocspFetchTimeout = 10 * time.Second
	ocspMaxBytes     = 64 << 10
)

// ocspState is one certificate's staple state.
type ocspState struct {
	mu         sync.Mutex
	staple     []byte
	thisUpdate time.Time
	nextUpdate time.Time
	fetched    time.Time
	err        string
}

// OCSPStatus is one certificate's staple in GET /admin/tls.
type OCSPStatus struct {
	Responder  string    `json:"responder,omitempty"`
	Stapled    bool      `json:"stapled"`
	ThisUpdate time.Time `json:"this_update,omitzero"`
	NextUpdate time.Time `json:"next_update,omitzero"`
	Fetched    time.Time `json:"fetched,omitzero"`
	Error      string    `json:"error,omitempty"`
}

func (o *ocspState) copyFrom(p *ocspState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	o.staple, o.thisUpdate, o.nextUpdate, o.fetched, o.err = p.staple, p.thisUpdate, p.nextUpdate, p.fetched, p.err
}

func (o *ocspState) status() *OCSPStatus {
	o.mu.Lock()
	defer o.mu.Unlock()
	return &OCSPStatus{Stapled: o.staple != nil, ThisUpdate: o.thisUpdate, NextUpdate: o.nextUpdate, Fetched: o.fetched, Error: o.err}
}

var ocspClient = &http.Client{Timeout: ocspFetchTimeout}

// refreshOCSP fetches the staples that are missing or past half their life.
func (t *tlsFront) refreshOCSP() {
	now := time.Now()
	for _, c := range t.certs.Load().all {
		cert := c.cert.Load()
		if cert.Leaf == nil || len(cert.Leaf.OCSPServer) == 0 || len(cert.Certificate) < 2 {
			continue
		}
		c.ocsp.mu.Lock()
		due := c.ocsp.staple == nil || now.After(c.ocsp.thisUpdate.Add(c.ocsp.nextUpdate.Sub(c.ocsp.thisUpdate)/2))
		c.ocsp.mu.Unlock()
		if !due {
			continue
		}
		der, resp, err := fetchOCSP(cert.Leaf, cert.Certificate[1])
		c.ocsp.mu.Lock()
		c.ocsp.fetched = now
		if err != nil {
			c.ocsp.err = err.Error()
			if c.ocsp.staple != nil && now.After(c.ocsp.nextUpdate) {
				// An expired staple would make clients fail; drop it.
				c.ocsp.staple = nil
				cp := *cert
				cp.OCSPStaple = nil
				c.cert.Store(&cp)
			}
			c.ocsp.mu.Unlock()
			t.log.Warn("edge: ocsp staple not refreshed", zap.String("cert_file", c.conf.CertFile), zap.Error(err))
			continue
		}
		c.ocsp.staple, c.ocsp.thisUpdate, c.ocsp.nextUpdate, c.ocsp.err = der, resp.ThisUpdate, resp.NextUpdate, ""
		cp := *cert
		cp.OCSPStaple = der
		c.cert.Store(&cp)
		c.ocsp.mu.Unlock()
	}
}

// fetchOCSP asks the leaf's first responder for its status and checks the
// answer's signature against the issuer; only a Good status is returned.
func fetchOCSP(leaf *x509.Certificate, issuerDER []byte) ([]byte, *ocsp.Response, error) {
	issuer, err := x509.ParseCertificate(issuerDER)
	if err != nil {
		return nil, nil, fmt.Errorf("ocsp: issuer: %w", err)
	}
	req, err := ocsp.CreateRequest(leaf, issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		return nil, nil, fmt.Errorf("ocsp: request: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ocspFetchTimeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, leaf.OCSPServer[0], bytes.NewReader(req))
	if err != nil {
		return nil, nil, fmt.Errorf("ocsp: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/ocsp-request")
	hresp, err := ocspClient.Do(hreq)
	if err != nil {
		return nil, nil, fmt.Errorf("ocsp: %w", err)
	}
	defer hresp.Body.Close()
	if hresp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("ocsp: responder answered %d", hresp.StatusCode)
	}
	der, err := io.ReadAll(io.LimitReader(hresp.Body, ocspMaxBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("ocsp: %w", err)
	}
	if len(der) > ocspMaxBytes {
		return nil, nil, errors.New("ocsp: answer too large")
	}
	resp, err := ocsp.ParseResponseForCert(der, leaf, issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("ocsp: %w", err)
	}
	if resp.Status != ocsp.Good {
		return nil, nil, fmt.Errorf("ocsp: certificate status is %s", ocspStatusName(resp.Status))
	}
	if !resp.NextUpdate.IsZero() && time.Now().After(resp.NextUpdate) {
		return nil, nil, errors.New("ocsp: answer already expired")
	}
	if resp.NextUpdate.IsZero() {
		// No nextUpdate: treat the answer as good for an hour.
		resp.NextUpdate = resp.ThisUpdate.Add(time.Hour)
	}
	return der, resp, nil
}

func ocspStatusName(s int) string {
	switch s {
	case ocsp.Revoked:
		return "revoked"
	case ocsp.Unknown:
		return "unknown"
	}
	return "good"
}
