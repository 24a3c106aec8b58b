package proxy

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/novashop/edge/proxy/config"
	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2raw is a hand-driven HTTP/2 client: a Framer over TLS, for the attack tests.
type h2raw struct {
	t   *testing.T
	c   net.Conn
	fr  *http2.Framer
	enc *hpack.Encoder
	buf bytes.Buffer

	mu      sync.Mutex
	rst     map[http2.ErrCode]int
	goaway  *http2.ErrCode
	status  map[string]int
	closed  bool
	done    chan struct{}
	settled chan struct{} // the server's SETTINGS arrived
}

func dialH2Raw(t *testing.T, addr string, settings ...http2.Setting) *h2raw {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN %q, want h2", p)
	}
	return startH2Raw(t, c, settings...)
}

// startH2Raw speaks HTTP/2 on c (TLS with h2, or plaintext for h2c): the
// preface, SETTINGS, and a reader recording the server's frames.
func startH2Raw(t *testing.T, c net.Conn, settings ...http2.Setting) *h2raw {
	t.Helper()
	h := &h2raw{t: t, c: c, rst: map[http2.ErrCode]int{}, status: map[string]int{}, done: make(chan struct{}), settled: make(chan struct{})}
	h.enc = hpack.NewEncoder(&h.buf)
	h.fr = http2.NewFramer(c, c)
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.fr.MaxHeaderListSize = 1 << 20
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := h.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	go h.read()
	select {
	case <-h.settled:
	case <-time.After(5 * time.Second):
		t.Fatal("no SETTINGS from the server")
	}
	return h
}

// read records what the server sends until the connection ends.
func (h *h2raw) read() {
	defer close(h.done)
	var once sync.Once
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			h.mu.Lock()
			h.closed = true
			h.mu.Unlock()
			return
		}
		h.mu.Lock()
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = h.fr.WriteSettingsAck()
				once.Do(func() { close(h.settled) })
			}
		case *http2.RSTStreamFrame:
			h.rst[f.ErrCode]++
		case *http2.GoAwayFrame:
			code := f.ErrCode
			h.goaway = &code
		case *http2.MetaHeadersFrame:
			h.status[f.PseudoValue("status")]++
		}
		h.mu.Unlock()
	}
}

// block encodes a request's header block (plus extra fields).
func (h *h2raw) block(method string, extra ...hpack.HeaderField) []byte {
	h.buf.Reset()
	for _, f := range append([]hpack.HeaderField{
		{Name: ":method", Value: method}, {Name: ":scheme", Value: "https"},
		{Name: ":path", Value: "/"}, {Name: ":authority", Value: "shop.test"},
	}, extra...) {
		_ = h.enc.WriteField(f)
	}
	return append([]byte(nil), h.buf.Bytes()...)
}

// waitEnd waits until the server closed the connection, or d passed.
func (h *h2raw) waitEnd(d time.Duration) bool {
	select {
	case <-h.done:
		return true
	case <-time.After(d):
		return false
	}
}

func (h *h2raw) snapshot() (rst map[http2.ErrCode]int, goaway *http2.ErrCode, status map[string]int, closed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	rst, status = map[http2.ErrCode]int{}, map[string]int{}
	for k, v := range h.rst {
		rst[k] = v
	}
	for k, v := range h.status {
		status[k] = v
	}
	return rst, h.goaway, status, h.closed
}

// attackEdge is an edge whose origin takes slow to answer, so handlers pile
// up if the server lets them.
func attackEdge(t *testing.T, kind string, slow time.Duration, tweak func(*config.Config)) (*tlsEdge, *origin) {
	o := newOrigin(t, "o1", func(ctx *fasthttp.RequestCtx) {
		time.Sleep(slow)
		ctx.SetBodyString("ok")
	})
	e, _ := newH2Edge(t, kind, o, tweak)
	return e, o
}

// TestH2RapidReset (CVE-2023-44487): thousands of HEADERS+RST_STREAM pairs
// run at most MaxConcurrentStreams handlers at once and at most 5× that in
// all; the server sends GOAWAY ENHANCE_YOUR_CALM and closes when its queue
// overflows. Streams reset while queued never reach the pipeline (nor the
// origin).
func TestH2RapidReset(t *testing.T) { forH2Servers(t, testH2RapidReset) }

func testH2RapidReset(t *testing.T, kind string) {
	const slow = 300 * time.Millisecond
	e, o := attackEdge(t, kind, slow, nil)
	h := dialH2Raw(t, e.tlsAddr)
	blk := h.block("GET")
	sent := 0
	start := time.Now()
	for id := uint32(1); id < 2*5000; id += 2 {
		if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: blk, EndStream: true, EndHeaders: true}); err != nil {
			break
		}
		if err := h.fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			break
		}
		sent++
	}
	// How long the server took to take the attack in (writes block once its
	// reading falls behind).
	sending := time.Since(start)
	// Either x/net's queue overflowed (GOAWAY ENHANCE_YOUR_CALM, closed), or
	// the bridge drained the queue by skipping reset streams (a loaded
	// machine starts handlers slower than the resets arrive); either way the
	// work must stop and stay bounded.
	f := e.s.tls.h2
	closed := h.waitEnd(3 * time.Second)
	waitUntil(t, "the handlers to finish", 5*time.Second, func() bool { return f.inFlight.Load() == 0 })
	_, goaway, _, _ := h.snapshot()
	t.Logf("sent %d reset streams; handlers called %d, at most %d at once; GOAWAY %v, closed %v; origin hits %d", sent, f.calls.Load(), f.peak.Load(), goaway, closed, o.hits.Load())
	if closed && (goaway == nil || *goaway != http2.ErrCodeEnhanceYourCalm) {
		t.Errorf("closed with GOAWAY %v, want ENHANCE_YOUR_CALM", goaway)
	}
	if f.peak.Load() > h2MaxStreams {
		t.Errorf("%d handlers at once, bound %d", f.peak.Load(), h2MaxStreams)
	}
	// x/net runs at most MaxConcurrentStreams handlers and queues at most 4×
	// that before its GOAWAY; the bridge skips queued streams already reset
	// (on an idle machine only the first 128 reach the origin). A reset
	// stream frees its slot while its handler still waits on the origin, so
	// while a slow reader (a loaded box, the race detector) is still taking
	// the attack in, x/net starts new handlers as old ones end: each slot
	// can run one per origin answer time more. Those stay within the
	// concurrency bound above; beyond them the total is still 5× the bound,
	// far below one handler per reset stream.
	allowed := int64(5*h2MaxStreams) + int64(h2MaxStreams)*int64(sending/slow)
	if f.calls.Load() > allowed || o.hits.Load() > allowed {
		t.Errorf("%d handlers and %d origin requests for %d reset streams taken in over %s, want at most %d", f.calls.Load(), o.hits.Load(), sent, sending.Round(time.Millisecond), allowed)
	}
}

// TestH2ContinuationFlood: a header block that never ends (CONTINUATION after
// CONTINUATION) is cut at the header limit: the connection closes before the
// flood is sent, and no handler runs.
func TestH2ContinuationFlood(t *testing.T) { forH2Servers(t, testH2ContinuationFlood) }

func testH2ContinuationFlood(t *testing.T, kind string) {
	e, _ := attackEdge(t, kind, 0, nil)
	h := dialH2Raw(t, e.tlsAddr)
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.block("GET"), EndStream: true}); err != nil {
		t.Fatal(err)
	}
	h.buf.Reset()
	_ = h.enc.WriteField(hpack.HeaderField{Name: "x-flood", Value: strings.Repeat("a", 8000), Sensitive: true})
	frag := append([]byte(nil), h.buf.Bytes()...)
	_ = h.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	sentBytes := 0
	for i := 0; i < 1000; i++ { // up to 8 MB of header block
		if err := h.fr.WriteContinuation(1, false, frag); err != nil {
			break
		}
		sentBytes += len(frag)
	}
	if !h.waitEnd(5 * time.Second) {
		t.Fatal("connection still open during a CONTINUATION flood")
	}
	_, goaway, _, _ := h.snapshot()
	t.Logf("sent %d bytes of CONTINUATION before the close; GOAWAY %v", sentBytes, goaway)
	if sentBytes >= 1000*len(frag) {
		t.Errorf("the whole 8 MB flood was accepted")
	}
	if n := e.s.tls.h2.calls.Load(); n != 0 {
		t.Errorf("%d handlers ran for an unfinished header block", n)
	}
}

// TestH2HPACKBomb: one 4 KB field in the dynamic table referenced a thousand
// times (4 MB decoded from ~1 KB sent) is refused (431) without running the
// handler.
func TestH2HPACKBomb(t *testing.T) { forH2Servers(t, testH2HPACKBomb) }

func testH2HPACKBomb(t *testing.T, kind string) {
	e, _ := attackEdge(t, kind, 0, nil)
	h := dialH2Raw(t, e.tlsAddr)
	h.buf.Reset()
	for _, f := range []hpack.HeaderField{
		{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
		{Name: ":path", Value: "/"}, {Name: ":authority", Value: "shop.test"},
		{Name: "x-bomb", Value: strings.Repeat("b", 4000)},
	} {
		_ = h.enc.WriteField(f)
	}
	blk := append([]byte(nil), h.buf.Bytes()...)
	// Indexed references to dynamic entry 62 (the x-bomb field): 0x80|62.
	blk = append(blk, bytes.Repeat([]byte{0x80 | 62}, 1000)...)
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk[:min(len(blk), 16000)], EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		rst, goaway, status, closed := h.snapshot()
		if status["431"] > 0 || len(rst) > 0 || goaway != nil || closed {
			t.Logf("answer: status %v, rst %v, goaway %v, closed %v", status, rst, goaway, closed)
			if n := e.s.tls.h2.calls.Load(); n != 0 {
				t.Fatalf("%d handlers ran for a 4 MB header list", n)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no refusal of a 4 MB header list")
}

// TestH2TooManyStreams: streams past MaxConcurrentStreams are refused with
// RST_STREAM, and at most MaxConcurrentStreams handlers run.
func TestH2TooManyStreams(t *testing.T) { forH2Servers(t, testH2TooManyStreams) }

func testH2TooManyStreams(t *testing.T, kind string) {
	e, _ := attackEdge(t, kind, 0, nil)
	h := dialH2Raw(t, e.tlsAddr)
	const streams = h2MaxStreams + 72
	blk := h.block("POST")
	for i := 0; i < streams; i++ {
		// No END_STREAM: each stream waits for a body that never comes.
		if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: blk, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "refusals of the extra streams", 5*time.Second, func() bool {
		rst, goaway, _, closed := h.snapshot()
		return rst[http2.ErrCodeRefusedStream]+rst[http2.ErrCodeProtocol] >= streams-h2MaxStreams || goaway != nil || closed
	})
	rst, goaway, _, _ := h.snapshot()
	t.Logf("rst %v, goaway %v, handlers at once %d", rst, goaway, e.s.tls.h2.peak.Load())
	if p := e.s.tls.h2.peak.Load(); p > h2MaxStreams {
		t.Errorf("%d handlers at once, bound %d", p, h2MaxStreams)
	}
}

// TestH2WindowUpdateAbuse: a window pushed past 2^31-1 or a zero increment is
// a connection error, and a client that never opens its window for a large
// answer has the stream cut by the write timeout instead of holding a handler.
func TestH2WindowUpdateAbuse(t *testing.T) { forH2Servers(t, testH2WindowUpdateAbuse) }

func testH2WindowUpdateAbuse(t *testing.T, kind string) {
	e, _ := attackEdge(t, kind, 0, func(c *config.Config) { c.Timeouts.Write = 500 * time.Millisecond })
	cases := []struct {
		name string
		incr uint32
		want http2.ErrCode
	}{
		{"overflow", 1<<31 - 1, http2.ErrCodeFlowControl},
		{"zero increment", 0, http2.ErrCodeProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := dialH2Raw(t, e.tlsAddr)
			// Raw, since the Framer refuses to write a zero increment.
			incr := []byte{byte(tc.incr >> 24), byte(tc.incr >> 16), byte(tc.incr >> 8), byte(tc.incr)}
			if err := h.fr.WriteRawFrame(http2.FrameWindowUpdate, 0, 0, incr); err != nil {
				t.Fatal(err)
			}
			if !h.waitEnd(3 * time.Second) {
				t.Fatal("connection still open")
			}
			if _, goaway, _, _ := h.snapshot(); goaway == nil || *goaway != tc.want {
				t.Fatalf("GOAWAY %v, want %v", goaway, tc.want)
			}
		})
	}
	t.Run("window never opened", func(t *testing.T) {
		o := newOrigin(t, "big", func(ctx *fasthttp.RequestCtx) { ctx.SetBody(make([]byte, 1<<20)) })
		e, _ := newH2Edge(t, kind, o, func(c *config.Config) { c.Timeouts.Write = 500 * time.Millisecond })
		h := dialH2Raw(t, e.tlsAddr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.block("GET"), EndStream: true, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "the stalled stream to be cut", 5*time.Second, func() bool {
			rst, goaway, _, closed := h.snapshot()
			return len(rst) > 0 || goaway != nil || closed
		})
		waitUntil(t, "the handler to return", 5*time.Second, func() bool { return e.s.tls.h2.inFlight.Load() == 0 })
	})
}

// TestH2IdleFlood: connections that open HTTP/2 and then say nothing are closed
// after timeouts.idle.
func TestH2IdleFlood(t *testing.T) { forH2Servers(t, testH2IdleFlood) }

func testH2IdleFlood(t *testing.T, kind string) {
	e, _ := attackEdge(t, kind, 0, func(c *config.Config) { c.Timeouts.Idle = 300 * time.Millisecond })
	var conns []*h2raw
	for i := 0; i < 30; i++ {
		conns = append(conns, dialH2Raw(t, e.tlsAddr))
	}
	for i, h := range conns {
		if !h.waitEnd(3 * time.Second) {
			t.Fatalf("idle connection %d still open", i)
		}
	}
	waitUntil(t, "no open h2 connections", 3*time.Second, func() bool { return e.s.tls.h2.open.Load() == 0 })
}

// TestH2StalledReader: a client that opens every flow-control window and then
// stops reading the socket cannot make the edge buffer without bound: writes
// to it stop at the batching writer's bound, time out after timeouts.write,
// the connection is closed and every handler returns.
func TestH2StalledReader(t *testing.T) { forH2Servers(t, testH2StalledReader) }

func testH2StalledReader(t *testing.T, kind string) {
	o := newOrigin(t, "big", func(ctx *fasthttp.RequestCtx) { ctx.SetBody(make([]byte, 1<<20)) })
	e, _ := newH2Edge(t, kind, o, func(c *config.Config) {
		c.Timeouts.Write = time.Second
		// On a slow machine the streams' own write timeouts may reset them
		// all before the socket fills; the connection is then idle and the
		// idle timeout ends it. Either way it must end, boundedly.
		c.Timeouts.Idle = 2 * time.Second
	})
	// A small receive buffer, so the edge's socket fills quickly.
	tcp, err := net.DialTimeout("tcp", e.tlsAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = tcp.(*net.TCPConn).SetReadBuffer(4 << 10)
	c := tls.Client(tcp, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	defer c.Close()
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"}, {Name: ":authority", Value: "shop.test"}, {Name: ":path", Value: "/big"}} {
		_ = enc.WriteField(f)
	}
	fr := http2.NewFramer(c, c)
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1}); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteWindowUpdate(0, 1<<31-1-65535); err != nil {
		t.Fatal(err)
	}
	const streams = 48 // 48 MiB of answers: more than loopback's socket buffers hold
	for i := 0; i < streams; i++ {
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "handlers to start", 10*time.Second, func() bool { return e.s.tls.h2.calls.Load() > 0 })
	waitUntil(t, "the stalled connection to be closed", 15*time.Second, func() bool { return e.s.tls.h2.open.Load() == 0 })
	waitUntil(t, "every handler to return", 5*time.Second, func() bool { return e.s.tls.h2.inFlight.Load() == 0 })
}
