package proxy

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/novashop/edge/proxy/config"
	"golang.org/x/crypto/ocsp"
)

// TestOCSPStapling: a certificate that names a local OCSP responder gets its
// Good answer stapled to handshakes; a Revoked answer is not stapled and
// GET /admin/tls says why.
func TestOCSPStapling(t *testing.T) {
	ca := newTestCA(t)
	var status atomic.Int64 // ocsp.Good (0) or ocsp.Revoked
	var asked atomic.Int64
	responder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		b, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
		req, err := ocsp.ParseRequest(b)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		tmpl := ocsp.Response{Status: int(status.Load()), SerialNumber: req.SerialNumber,
			ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour)}
		if tmpl.Status == ocsp.Revoked {
			tmpl.RevokedAt = time.Now().Add(-time.Minute)
		}
		der, err := ocsp.CreateResponse(ca.cert, ca.cert, tmpl, ca.key)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		_, _ = w.Write(der)
	}))
	defer responder.Close()

	good := ca.issue("good", []string{"shop.test"}, leafOpts{ocsp: responder.URL, cn: "good"})
	o := newOrigin(t, "o1", nil)
	e := startTLSEdge(t, tlsTestConfig([]config.Certificate{good}, o), Options{})
	staple := func() []byte {
		c, err := tls.Dial("tcp", e.tlsAddr, &tls.Config{RootCAs: ca.pool, ServerName: "shop.test"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().OCSPResponse
	}
	waitUntil(t, "a stapled OCSP answer", 5*time.Second, func() bool { return staple() != nil })
	resp, err := ocsp.ParseResponse(staple(), ca.cert)
	if err != nil || resp.Status != ocsp.Good {
		t.Fatalf("staple: %v, status %d", err, resp.Status)
	}
	if st := e.s.TLSStatus().Certificates[0].OCSP; !st.Stapled || st.Error != "" {
		t.Fatalf("status %+v", st)
	}

	// A revoked certificate: no staple, and the reason is reported.
	status.Store(ocsp.Revoked)
	bad := ca.issue("bad", []string{"bad.test"}, leafOpts{ocsp: responder.URL, cn: "bad"})
	e2 := startTLSEdge(t, tlsTestConfig([]config.Certificate{bad}, o), Options{})
	waitUntil(t, "the OCSP fetch", 5*time.Second, func() bool { return e2.s.TLSStatus().Certificates[0].OCSP.Error != "" })
	if st := e2.s.TLSStatus().Certificates[0].OCSP; st.Stapled || !strings.Contains(st.Error, "revoked") {
		t.Fatalf("revoked certificate: %+v", st)
	}
}
