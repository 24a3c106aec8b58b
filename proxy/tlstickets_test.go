package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/proxy/config"
)

// TestTLSTicketKeysRedisOutage: with a real Redis that is down when two edges
// start, each serves with local ticket keys (a session from one does not
// resume on the other); once Redis starts they converge on the shared keys
// and resume each other's sessions. Redis then dies (and comes back empty, as
// a restart without persistence does): the edges keep serving throughout and
// converge again.
func TestTLSTicketKeysRedisOutage(t *testing.T) {
	r := testenv.FreshRedis(t)
	r.Kill()
	ca := newTestCA(t)
	cc := ca.issue("s", []string{"shop.test"}, leafOpts{})
	o := newOrigin(t, "o1", nil)
	ns := fmt.Sprintf("tkout-%d:", time.Now().UnixNano())
	mk := func() *tlsEdge {
		cfg := tlsTestConfig([]config.Certificate{cc}, o)
		cfg.TLS.SessionTickets.Namespace = ns
		// Refreshes every 500ms, so convergence takes about that long.
		cfg.TLS.SessionTickets.Rotate = 2 * time.Second
		cfg.Cache.Enabled, cfg.Cache.RedisURL = true, r.URL
		return startTLSEdge(t, cfg, Options{})
	}
	a, b := mk(), mk()
	// resumesAcross: a session from edge a is resumed on edge b; both answer 200.
	resumesAcross := func() bool {
		hc := httpsClient(ca, "shop.test")
		hc.Transport.(*http.Transport).DisableKeepAlives = true
		hc.Transport.(*http.Transport).TLSClientConfig.MaxVersion = tls.VersionTLS13
		ra, _ := get(t, hc, "https://"+a.tlsAddr+"/")
		rb, _ := get(t, hc, "https://"+b.tlsAddr+"/")
		if ra.StatusCode != 200 || rb.StatusCode != 200 {
			t.Fatalf("answers %d and %d, want 200: the edges must serve whatever Redis does", ra.StatusCode, rb.StatusCode)
		}
		return rb.TLS.DidResume
	}
	shared := func(e *tlsEdge) bool {
		st := e.s.TLSStatus().SessionTickets
		return st.Shared && st.Error == ""
	}

	// Down at start: local keys, said so in the status.
	for _, e := range []*tlsEdge{a, b} {
		if st := e.s.TLSStatus().SessionTickets; st.Shared || st.Error == "" {
			t.Fatalf("Redis down at start: ticket status %+v, want local keys and the reason", st)
		}
	}
	if resumesAcross() {
		t.Fatal("a session resumed across edges with local keys")
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "both edges to share keys after Redis started", 15*time.Second, func() bool { return shared(a) && shared(b) })
	if !resumesAcross() {
		t.Fatal("no resumption across edges once Redis is back")
	}

	// Down later: status says so, both keep serving.
	r.Kill()
	waitUntil(t, "the edges to notice Redis is gone", 15*time.Second, func() bool { return !shared(a) && !shared(b) })
	time.Sleep(2 * time.Second) // a whole period on local keys
	resumesAcross()

	// Back, and empty: the edges re-seed Redis and converge.
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "both edges to share keys after Redis restarted", 15*time.Second, func() bool { return shared(a) && shared(b) })
	waitUntil(t, "resumption across edges after the restart", 10*time.Second, resumesAcross)
}
