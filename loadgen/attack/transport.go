package attack

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// maxConnsPerHost bounds the connections the generator opens to one
// target. The load is open-model, so under overload the count grows with
// the backlog; the bound only stops a runaway from exhausting file
// descriptors (net/http, which this transport replaced, had none).
const maxConnsPerHost = 16384

// maxResponseBytes bounds one answer the generator reads.
const maxResponseBytes = 64 << 20

// newClient builds the attacker's HTTP client: vegeta drives an
// *http.Client, whose transport here is a fasthttp client (keep-alive,
// the campaign's timeout per request), redirects not followed (a 303 is
// the answer being measured), and bodies dropped unread unless keep says
// the targeter extracts from them.
//
// Why not net/http's Transport: on a two-core machine the generator shares
// the CPU with the system under test, and profiles of a browse run showed
// net/http's per-connection read and write goroutines, their channel
// hand-offs and wake-ups, and its header maps costing about half of the
// generator's 115 µs of CPU per request. fasthttp does a request on the
// calling goroutine with pooled buffers.
func newClient(timeout time.Duration, keep func(label string) bool) *http.Client {
	return &http.Client{
		// The transport enforces the timeout: http.Client's own would arm
		// a second timer per request.
		Transport: &fastTransport{
			c: &fasthttp.Client{
				MaxConnsPerHost:               maxConnsPerHost,
				MaxIdleConnDuration:           90 * time.Second,
				MaxResponseBodySize:           maxResponseBytes,
				ReadBufferSize:                16 << 10,
				NoDefaultUserAgentHeader:      true,
				DisableHeaderNamesNormalizing: true,
				DisablePathNormalizing:        true,
			},
			timeout: timeout,
			keep:    keep,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// fastTransport is an http.RoundTripper over a fasthttp.Client. Answers
// whose request label (the URL fragment) keep does not name get an empty
// body, so vegeta's io.ReadAll copies nothing: at thousands of HTML pages
// a second, copying them into fresh buffers would make the generator's
// garbage collector compete with the target for the CPU. The metrics take
// the size from Content-Length instead.
type fastTransport struct {
	c       *fasthttp.Client
	timeout time.Duration
	keep    func(label string) bool
}

func (t *fastTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)

	u := r.URL
	req.SetRequestURI(u.RequestURI())
	req.URI().SetScheme(u.Scheme)
	req.URI().SetHost(u.Host)
	req.Header.SetMethod(r.Method)
	if r.Host != "" {
		req.Header.SetHost(r.Host)
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		req.SetBodyRaw(b)
	}

	var err error
	if t.timeout > 0 {
		err = t.c.DoTimeout(req, resp, t.timeout)
	} else {
		err = t.c.Do(req, resp)
	}
	if err != nil {
		return nil, err
	}

	code := resp.StatusCode()
	h := make(http.Header, resp.Header.Len())
	for k, v := range resp.Header.All() {
		// Canonical keys, as net/http gives them (the client does not
		// normalise names), so Values("Cache-Status") finds any spelling.
		key := http.CanonicalHeaderKey(string(k))
		h[key] = append(h[key], string(v))
	}
	body := resp.Body()
	out := &http.Response{
		Status:        statusText(code),
		StatusCode:    code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		ContentLength: int64(len(body)),
		Request:       r,
		Body:          http.NoBody,
	}
	if t.keep != nil && t.keep(u.Fragment) && len(body) > 0 {
		out.Body = io.NopCloser(bytes.NewReader(bytes.Clone(body)))
	}
	return out, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// fasthttp client, so idle keep-alive connections do not linger on a
// target while the next target of a comparison runs.
func (t *fastTransport) CloseIdleConnections() { t.c.CloseIdleConnections() }

var statuses sync.Map // int -> string

// statusText is net/http's Status spelling ("502 Bad Gateway"), which
// vegeta records as the error of an unsuccessful answer; cached so an
// answer costs no allocation for it.
func statusText(code int) string {
	if s, ok := statuses.Load(code); ok {
		return s.(string)
	}
	s := strconv.Itoa(code) + " " + http.StatusText(code)
	if code >= 100 && code <= 999 {
		// Only real status codes are kept, so a target inventing codes
		// cannot grow the map.
		statuses.Store(code, s)
	}
	return s
}
