package e2e

import (
	"crypto/tls"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/novashop/edge/internal/stack"
	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/internal/testenv/browsertest"
)

// TestStorefrontOverHTTPSInChromium: the edge as `make up` / `make demo`
// runs it (configs/edge.yaml, the Redis cache, an HTTPS listener with a
// certificate from the stack's throwaway local CA) serves the storefront to
// headless Chromium over HTTPS with HTTP/2 negotiated. Chromium trusts the
// leaf by its SPKI pin (--ignore-certificate-errors-spki-list), the way the
// stack prints it; a Go client trusts it through the CA file. QUIC is off in
// testenv's Chromium flags, so the page must come over h2, not h3.
func TestStorefrontOverHTTPSInChromium(t *testing.T) {
	bin := testenv.Chromium(t) // installs chromium before any deadline
	s := newShop(t)
	redis := testenv.Redis(t)
	o := s.startOrigin("origin-1", redis)
	ca, err := stack.NewLocalCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	addr, admin, tlsAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	args := []string{"--config", filepath.Join(moduleRoot(t), "configs", "edge.yaml"),
		"--listen", addr, "--admin-listen", admin, "--redis-url", redis,
		"--upstream", o.name + "=http://" + o.addr,
		"--tls-listen", tlsAddr, "--tls-cert", ca.CertFile, "--tls-key", ca.KeyFile}
	s.start("edge", "edge", tlsAddr, args)
	base := "https://" + tlsAddr

	// A Go client trusting only the local CA gets the page over HTTP/2.
	pool, err := ca.Pool()
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	resp, err := hc.Get(base + "/")
	if err != nil {
		t.Fatalf("GET %s/ trusting the local CA: %v", base, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 || !strings.Contains(string(b), "<html") {
		t.Fatalf("GET %s/: %d over %s, %d bytes", base, resp.StatusCode, resp.Proto, len(b))
	}

	ctx := browsertest.Start(t, bin, 45*time.Second, chromedp.Flag("ignore-certificate-errors-spki-list", ca.SPKIHash))

	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(".grid .card"))); err != nil {
		t.Fatalf("storefront over HTTPS in Chromium: %v", err)
	}
	eval := func(what string, act chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(ctx, act)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	proto := eval("nextHopProtocol", chromedp.Evaluate[string](`performance.getEntriesByType("navigation")[0].nextHopProtocol`))
	location := eval("location", chromedp.Location())
	title := eval("title", chromedp.Title())
	cards, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(".grid .card").length`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Chromium: %s %q, %d product cards, nextHopProtocol %q", location, title, cards, proto)
	if !strings.HasPrefix(location, base) {
		t.Fatalf("Chromium ended at %s, not on %s", location, base)
	}
	if proto != "h2" {
		t.Fatalf("nextHopProtocol %q, want h2", proto)
	}
	if cards == 0 {
		t.Fatal("the home page shows no product cards")
	}
}
