package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/novashop/edge/proxy/config"
	"github.com/valyala/fasthttp"
)

// genBody is a deterministic body of n bytes (n < 0: until limit) that hashes as
// it goes, so neither side of a transfer ever holds the whole body.
type genBody struct {
	left  int64
	state uint64
	sum   hash.Hash
}

func newGenBody(n int64) *genBody {
	return &genBody{left: n, state: 0x9e3779b97f4a7c15, sum: sha256.New()}
}

func (g *genBody) Read(p []byte) (int, error) {
	if g.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	for i := range p {
		g.state ^= g.state << 13
		g.state ^= g.state >> 7
		g.state ^= g.state << 17
		p[i] = byte(g.state)
	}
	g.sum.Write(p)
	g.left -= int64(len(p))
	return len(p), nil
}

func (g *genBody) hex() string { return hex.EncodeToString(g.sum.Sum(nil)) }

// heapPeak samples HeapInuse until stop is called and returns the largest growth
// over the level when it started.
//
// The figure is meant to catch a body held in memory, not to measure the
// collector's pacing: at the default GOGC the heap may hold garbage up to the
// live heap's size again before a cycle starts, and on a loaded box (or under
// the race detector) marking lags further behind, which read as 12-13 MiB of
// "growth" for a stream that holds under 1 MiB. So the collector runs at
// GOGC=10 while measuring, which keeps garbage to a tenth of the live heap:
// a body buffered whole (50 MiB) still shows in full.
func heapPeak() (stop func() uint64) {
	old := debug.SetGCPercent(10)
	goruntime.GC()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m goruntime.MemStats
		for {
			goruntime.ReadMemStats(&m)
			if m.HeapInuse > base && m.HeapInuse-base > peak.Load() {
				peak.Store(m.HeapInuse - base)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		debug.SetGCPercent(old)
		return peak.Load()
	}
}

// streamOrigin is an origin that never buffers a body: it hashes uploads as they
// arrive and answers GET /download?n=N (chunked=1 for no length) with a generated
// body. hits counts requests.
type streamOrigin struct {
	url  string
	srv  *fasthttp.Server
	hits atomic.Int64
	// status, when set, answers every request with it after reading the body.
	status atomic.Int64
}

func newStreamOrigin(t *testing.T) *streamOrigin {
	t.Helper()
	o := &streamOrigin{}
	srv := &fasthttp.Server{
		StreamRequestBody: true,
		Logger:            quiet{},
		Handler: func(ctx *fasthttp.RequestCtx) {
			o.hits.Add(1)
			if string(ctx.Path()) == "/download" {
				n, err := strconv.ParseInt(string(ctx.QueryArgs().Peek("n")), 10, 64)
				if err != nil {
					ctx.Error("bad n", fasthttp.StatusBadRequest)
					return
				}
				size := int(n)
				if string(ctx.QueryArgs().Peek("chunked")) == "1" {
					size = -1
				}
				if string(ctx.QueryArgs().Peek("cacheable")) == "1" {
					ctx.Response.Header.Set("Cache-Control", "public, max-age=600")
				}
				ctx.SetBodyStream(newGenBody(n), size)
				return
			}
			h := sha256.New()
			var n int64
			var err error
			if s := ctx.RequestBodyStream(); s != nil {
				n, err = io.Copy(h, s)
			} else {
				var k int
				k, err = h.Write(ctx.PostBody())
				n = int64(k)
			}
			if err != nil {
				ctx.Error("body read: "+err.Error(), fasthttp.StatusBadRequest)
				return
			}
			if code := o.status.Load(); code != 0 {
				ctx.SetStatusCode(int(code))
			}
			ctx.Response.Header.Set("X-Body-Len", strconv.FormatInt(n, 10))
			ctx.Response.Header.Set("X-Content-Length", strconv.Itoa(ctx.Request.Header.ContentLength()))
			ctx.SetBodyString(hex.EncodeToString(h.Sum(nil)))
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = srv.Shutdown() })
	o.url = "http://" + ln.Addr().String()
	o.srv = srv
	return o
}

func streamConfig(origins ...*streamOrigin) config.Config {
	c := testConfig()
	for i, o := range origins {
		c.Upstreams = append(c.Upstreams, config.Upstream{Name: fmt.Sprintf("s%d", i), URL: o.url, Weight: 1})
	}
	c.Health.Active = false
	// Timeouts bound a whole exchange, streamed body included, as they did when
	// every body was held; the race detector slows 50 MiB down to seconds.
	c.Timeouts.Request = 30 * time.Second
	c.Retries.PerTryTimeout = 30 * time.Second
	c.Limits.MaxBodyBytes = 32 << 20
	c.Limits.MaxResponseBytes = 64 << 20
	c.Limits.StreamResponseBytes = 4 << 20
	return c
}

// TestStreamUpload sends a 20 MiB body through the edge: it arrives byte-identical
// and the process's heap never grows by anything near the body's size.
func TestStreamUpload(t *testing.T) {
	const size = 20 << 20
	o := newStreamOrigin(t)
	e := startEdge(t, streamConfig(o), Options{})
	for _, tc := range []struct {
		name    string
		bodyLen int // -1: chunked
	}{{"content-length", size}, {"chunked", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.Header.SetMethod(fasthttp.MethodPost)
			req.SetRequestURI("http://" + e.addr + "/api/upload")
			body := newGenBody(size)
			req.SetBodyStream(body, tc.bodyLen)
			stop := heapPeak()
			err := e.client.DoTimeout(req, resp, 30*time.Second)
			peak := stop()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode() != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode(), resp.Body())
			}
			if got := header(resp, "X-Body-Len"); got != strconv.Itoa(size) {
				t.Fatalf("origin read %s bytes, want %d", got, size)
			}
			if got := string(resp.Body()); got != body.hex() {
				t.Fatalf("origin's hash %s, sent %s", got, body.hex())
			}
			if peak > 8<<20 {
				t.Fatalf("heap grew by %d bytes while streaming a %d byte upload", peak, size)
			}
		})
	}
}

// TestStreamDownload fetches a 50 MiB body through the edge, with and without a
// Content-Length, reading it as a stream on the client side too.
func TestStreamDownload(t *testing.T) {
	const size = 50 << 20
	o := newStreamOrigin(t)
	e := startEdge(t, streamConfig(o), Options{})
	for _, chunked := range []string{"0", "1"} {
		t.Run("chunked="+chunked, func(t *testing.T) {
			downloadGen(t, e.addr, fmt.Sprintf("/download?n=%d&chunked=%s", size, chunked), size, 12<<20)
		})
	}
}

// downloadGen fetches target from the edge at addr as a stream and checks
// that it is genBody's size bytes, byte-identical, and that the test
// process's heap grew by at most maxHeap meanwhile. It returns the answer's
// header (the body stream is consumed).
func downloadGen(t *testing.T, addr, target string, size int64, maxHeap uint64) *fasthttp.ResponseHeader {
	t.Helper()
	c := &fasthttp.HostClient{Addr: addr, StreamResponseBody: true, ReadTimeout: 30 * time.Second}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + addr + target)
	stop := heapPeak()
	if err := c.Do(req, resp); err != nil {
		stop()
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.BodyStream())
	peak := stop()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != 200 || n != size {
		t.Fatalf("status %d, %d bytes, want 200 and %d", resp.StatusCode(), n, size)
	}
	want := newGenBody(size)
	if _, err := io.Copy(io.Discard, want); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want.hex() {
		t.Fatalf("downloaded body hash %s, want %s", got, want.hex())
	}
	if peak > maxHeap {
		t.Fatalf("heap grew by %d bytes while streaming a %d byte download", peak, size)
	}
	var hdr fasthttp.ResponseHeader
	resp.Header.CopyTo(&hdr)
	return &hdr
}

// TestStreamLimits keeps max_body_bytes on streamed uploads and max_response_bytes
// on declared response lengths.
func TestStreamLimits(t *testing.T) {
	o := newStreamOrigin(t)
	cfg := streamConfig(o)
	cfg.Limits.MaxBodyBytes = 1 << 20
	cfg.Limits.MaxResponseBytes = 8 << 20
	e := startEdge(t, cfg, Options{})
	for _, tc := range []struct {
		name    string
		send    int64
		bodyLen int
		want    int
	}{
		{"declared length over the limit", 2 << 20, 2 << 20, fasthttp.StatusRequestEntityTooLarge},
		{"chunked body over the limit", 3 << 20, -1, fasthttp.StatusRequestEntityTooLarge},
		{"chunked body at the limit", 1 << 20, -1, fasthttp.StatusOK},
		{"streamed length at the limit", 1 << 20, 1 << 20, fasthttp.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &fasthttp.HostClient{Addr: e.addr, ReadTimeout: 10 * time.Second}
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.Header.SetMethod(fasthttp.MethodPost)
			req.SetRequestURI("http://" + e.addr + "/api/upload")
			req.SetBodyStream(newGenBody(tc.send), tc.bodyLen)
			err := c.DoTimeout(req, resp, 10*time.Second)
			if tc.want == fasthttp.StatusOK {
				if err != nil || resp.StatusCode() != 200 || header(resp, "X-Body-Len") != strconv.FormatInt(tc.send, 10) {
					t.Fatalf("err %v, status %d, origin read %s", err, resp.StatusCode(), header(resp, "X-Body-Len"))
				}
				return
			}
			// The edge may answer before the client finished sending, and close;
			// either the 413 arrives or the connection is cut, never a 200.
			if err == nil {
				wantJSONError(t, resp, tc.want)
			} else if !errors.Is(err, io.EOF) && !errors.Is(err, fasthttp.ErrConnectionClosed) && !isConnReset(err) {
				t.Fatalf("unexpected error %v", err)
			}
		})
	}
	resp := e.do(t, fasthttp.MethodGet, fmt.Sprintf("/download?n=%d", 9<<20), "")
	wantJSONError(t, resp, fasthttp.StatusBadGateway)
}

func isConnReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

// TestStreamSmallBodiesStayRetryable: a small body is read whole, so a GET carrying
// one is still retried on another origin after a 503, while a streamed body goes to
// one origin only.
func TestStreamSmallBodiesStayRetryable(t *testing.T) {
	setup := func() (bad, good *streamOrigin, e *edge) {
		bad, good = newStreamOrigin(t), newStreamOrigin(t)
		bad.status.Store(fasthttp.StatusServiceUnavailable)
		cfg := streamConfig(bad, good)
		cfg.Balancer.Policy = "round-robin"
		cfg.Retries.Attempts = 2
		return bad, good, startEdge(t, cfg, Options{})
	}

	t.Run("small body retried", func(t *testing.T) {
		bad, _, e := setup()
		small := newGenBody(1000)
		var body [1000]byte
		if _, err := io.ReadFull(small, body[:]); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			resp := e.do(t, fasthttp.MethodGet, "/api/products/", string(body[:]))
			if resp.StatusCode() != 200 || string(resp.Body()) != small.hex() {
				t.Fatalf("small GET body: status %d, body %q, want 200 and %s", resp.StatusCode(), resp.Body(), small.hex())
			}
		}
		if bad.hits.Load() == 0 {
			t.Fatal("no request met the failing origin, so no retry was shown")
		}
	})

	t.Run("streamed body sent once", func(t *testing.T) {
		bad, good, e := setup()
		c := &fasthttp.HostClient{Addr: e.addr, ReadTimeout: 10 * time.Second}
		unavailable := 0
		for range 2 {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			req.SetRequestURI("http://" + e.addr + "/api/products/")
			req.SetBodyStream(newGenBody(256<<10), -1)
			err := c.Do(req, resp)
			code := resp.StatusCode()
			fasthttp.ReleaseRequest(req)
			fasthttp.ReleaseResponse(resp)
			if err != nil {
				t.Fatal(err)
			}
			switch code {
			case 200:
			case fasthttp.StatusServiceUnavailable:
				unavailable++
			default:
				t.Fatalf("streamed GET: status %d", code)
			}
		}
		if got := bad.hits.Load() + good.hits.Load(); got != 2 || unavailable != 1 {
			t.Fatalf("2 streamed requests reached origins %d times with %d answers 503, want 2 and 1 (no retry)", got, unavailable)
		}
	})
}

// TestSmallBodiesReadWhole covers bodies around fasthttp's 8 KiB prefetch and the
// 64 KiB threshold: each reaches the origin intact with its Content-Length, that
// is, held whole by the edge rather than streamed.
func TestSmallBodiesReadWhole(t *testing.T) {
	o := newStreamOrigin(t)
	e := startEdge(t, streamConfig(o), Options{})
	for _, n := range []int{1, 8 << 10, 8<<10 + 1, 40000, 64 << 10} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			g := newGenBody(int64(n))
			body := make([]byte, n)
			if _, err := io.ReadFull(g, body); err != nil {
				t.Fatal(err)
			}
			resp := e.do(t, fasthttp.MethodPost, "/api/upload", string(body))
			if resp.StatusCode() != 200 || string(resp.Body()) != g.hex() {
				t.Fatalf("status %d, hash %q, want 200 and %s", resp.StatusCode(), resp.Body(), g.hex())
			}
			if got := header(resp, "X-Content-Length"); got != strconv.Itoa(n) {
				t.Fatalf("origin saw Content-Length %s, want %d", got, n)
			}
		})
	}
}

func TestSettleStream(t *testing.T) {
	for _, tc := range []struct {
		name       string
		bodyLen    int
		above, max int
		wantErr    error
		wantStream bool
	}{
		{"small body is read whole", 100, 1000, 10000, nil, false},
		{"large body stays a stream", 5000, 1000, 10000, nil, true},
		{"chunked body stays a stream", -1, 1000, 10000, nil, true},
		{"declared length over the limit", 20000, 1000, 10000, fasthttp.ErrBodyTooLarge, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := fasthttp.AcquireResponse()
			defer fasthttp.ReleaseResponse(resp)
			n := tc.bodyLen
			if n < 0 {
				n = 3000
			}
			resp.SetBodyStream(newGenBody(int64(n)), tc.bodyLen)
			err := settleStream(resp, tc.above, tc.max)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if resp.IsBodyStream() != tc.wantStream {
				t.Fatalf("stream %v, want %v", resp.IsBodyStream(), tc.wantStream)
			}
			if err == nil && !tc.wantStream && len(resp.Body()) != n {
				t.Fatalf("body %d bytes, want %d", len(resp.Body()), n)
			}
		})
	}
}

func TestBodyLimiter(t *testing.T) {
	for _, tc := range []struct {
		name         string
		size, limit  int64
		wantExceeded bool
	}{
		{"under", 10, 20, false},
		{"exact", 20, 20, false},
		{"over by one", 21, 20, true},
		{"far over", 1 << 16, 20, true},
		{"empty", 0, 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &bodyLimiter{r: newGenBody(tc.size), left: tc.limit}
			n, err := io.Copy(io.Discard, l)
			if l.exceeded != tc.wantExceeded {
				t.Fatalf("exceeded %v, want %v (n %d, err %v)", l.exceeded, tc.wantExceeded, n, err)
			}
			if tc.wantExceeded && !errors.Is(err, errBodyLimit) {
				t.Fatalf("err %v, want errBodyLimit", err)
			}
			if !tc.wantExceeded && (err != nil || n != tc.size) {
				t.Fatalf("copied %d, err %v; want %d, nil", n, err, tc.size)
			}
		})
	}
}
