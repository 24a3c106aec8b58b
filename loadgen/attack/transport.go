package attack

import (
	"io"
	"net"
	"net/http"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// newClient builds the attacker's HTTP client: vegeta's defaults (keep-
// alive, up to vegeta.DefaultConnections idle connections per host), the
// campaign's timeout, redirects not followed (a 303 is the answer being
// measured), and bodies dropped unread unless keep says the targeter
// extracts from them.
func newClient(timeout time.Duration, keep func(label string) bool) *http.Client {
	dialer := &net.Dialer{KeepAlive: 30 * time.Second, Timeout: timeout}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         dialer.DialContext,
		MaxIdleConnsPerHost: vegeta.DefaultConnections,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: discardBodies{next: tr, keep: keep},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// discardBodies drains the body of every answer whose request label (the
// URL fragment) is not kept, so vegeta's io.ReadAll sees an empty body:
// at thousands of HTML pages a second, reading them into fresh buffers
// would make the generator's garbage collector compete with the target for
// the CPU. The metrics take the size from Content-Length instead.
type discardBodies struct {
	next http.RoundTripper
	keep func(label string) bool
}

func (d discardBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := d.next.RoundTrip(req)
	if err != nil || d.keep == nil || d.keep(req.URL.Fragment) {
		return resp, err
	}
	resp.Body = &drained{rc: resp.Body}
	return resp, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// wrapped transport.
func (d discardBodies) CloseIdleConnections() {
	if c, ok := d.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// drained reads its body to the end into io.Discard (pooled buffers, no
// allocation) on the first Read, and then reports EOF; a read error is
// still reported, so a cut answer counts as an error.
type drained struct {
	rc   io.ReadCloser
	done bool
}

func (d *drained) Read([]byte) (int, error) {
	if !d.done {
		d.done = true
		if _, err := io.Copy(io.Discard, d.rc); err != nil {
			return 0, err
		}
	}
	return 0, io.EOF
}

func (d *drained) Close() error { return d.rc.Close() }
