//lint:file-ignore SA1019 the tests use x/net http2's Transport as the peer (h2c prior knowledge over a dialled connection).

package h2srv

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// startServer serves h2c (prior knowledge) on a loopback listener.
func startServer(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(cfg)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.ServeConn(c, nil)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s, ln.Addr().String()
}

// goClient is Go's own HTTP/2 client, speaking h2c by prior knowledge.
func goClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
}

func echoHandler(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/big":
		ctx.SetBody(bytes.Repeat([]byte("x"), 300<<10))
	case "/stream":
		ctx.SetBodyStream(strings.NewReader(strings.Repeat("s", 100<<10)), -1)
	case "/broken":
		ctx.SetBodyStream(io.MultiReader(strings.NewReader("partial"), errReader{}), -1)
	case "/panic":
		panic("boom")
	default:
		ctx.Response.Header.Set("X-Method", string(ctx.Method()))
		ctx.Response.Header.Set("X-Host", string(ctx.Host()))
		ctx.Response.Header.Set("X-Cookie", string(ctx.Request.Header.Peek("Cookie")))
		ctx.Response.Header.Set("X-Query", string(ctx.QueryArgs().Peek("q")))
		ctx.SetBody(ctx.Request.Body())
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, fmt.Errorf("origin went away") }

// TestServerWithGoClient: requests from Go's HTTP/2 client reach the
// handler as fasthttp requests and their answers come back whole, on the
// worker path and on the inline path.
func TestServerWithGoClient(t *testing.T) {
	for _, inline := range []bool{false, true} {
		t.Run(fmt.Sprintf("inline=%v", inline), func(t *testing.T) {
			cfg := Config{Handler: echoHandler, MaxBodyBytes: 1 << 20}
			var inlined atomic.Int64
			if inline {
				cfg.Inline = func(ctx *fasthttp.RequestCtx) (bool, fasthttp.RequestHandler) {
					if string(ctx.Method()) != "GET" || string(ctx.Path()) == "/stream" || string(ctx.Path()) == "/broken" {
						return false, nil
					}
					inlined.Add(1)
					echoHandler(ctx)
					return true, nil
				}
			}
			_, addr := startServer(t, cfg)
			cl := goClient()
			base := "http://" + addr
			cases := []struct {
				name, method, path, body string
				cookies                  []string
				wantStatus               int
				wantLen                  int
				check                    func(*http.Response, []byte) error
			}{
				{name: "get", method: "GET", path: "/x?q=1", wantStatus: 200, check: func(r *http.Response, _ []byte) error {
					if r.Header.Get("X-Method") != "GET" || r.Header.Get("X-Query") != "1" || !strings.HasPrefix(r.Header.Get("X-Host"), "127.0.0.1:") {
						return fmt.Errorf("headers %v", r.Header)
					}
					if r.Header.Get("Date") == "" {
						return fmt.Errorf("no date")
					}
					return nil
				}},
				{name: "cookies joined", method: "GET", path: "/c", cookies: []string{"a=1", "b=2"}, wantStatus: 200, check: func(r *http.Response, _ []byte) error {
					if got := r.Header.Get("X-Cookie"); got != "a=1; b=2" {
						return fmt.Errorf("cookie %q", got)
					}
					return nil
				}},
				{name: "post echo", method: "POST", path: "/e", body: strings.Repeat("p", 200<<10), wantStatus: 200, wantLen: 200 << 10},
				{name: "big answer past the windows", method: "GET", path: "/big", wantStatus: 200, wantLen: 300 << 10},
				{name: "streamed answer", method: "GET", path: "/stream", wantStatus: 200, wantLen: 100 << 10},
				{name: "head", method: "HEAD", path: "/big", wantStatus: 200, check: func(r *http.Response, b []byte) error {
					if r.ContentLength != 300<<10 || len(b) != 0 {
						return fmt.Errorf("HEAD: length %d, body %d", r.ContentLength, len(b))
					}
					return nil
				}},
				{name: "body too large", method: "POST", path: "/e", body: strings.Repeat("p", 2<<20), wantStatus: 413},
				{name: "handler panic", method: "POST", path: "/panic", wantStatus: 500},
			}
			for _, tc := range cases {
				req, _ := http.NewRequest(tc.method, base+tc.path, nil)
				if tc.body != "" {
					req, _ = http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
				}
				for _, c := range tc.cookies {
					req.Header.Add("Cookie", c)
				}
				resp, err := cl.Do(req)
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				b, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if err != nil {
					t.Fatalf("%s: body: %v", tc.name, err)
				}
				if resp.StatusCode != tc.wantStatus {
					t.Errorf("%s: status %d, want %d (%s)", tc.name, resp.StatusCode, tc.wantStatus, b)
				}
				if tc.wantLen > 0 && len(b) != tc.wantLen {
					t.Errorf("%s: %d bytes, want %d", tc.name, len(b), tc.wantLen)
				}
				if tc.check != nil {
					if err := tc.check(resp, b); err != nil {
						t.Errorf("%s: %v", tc.name, err)
					}
				}
			}
			// A body that breaks mid-way resets the stream: an error, never
			// a short body taken for the whole.
			resp, err := cl.Get(base + "/broken")
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				_ = resp.Body.Close()
			}
			if err == nil {
				t.Error("/broken: no error")
			}
			// Many concurrent streams on one connection.
			var wg sync.WaitGroup
			errs := make(chan error, 200)
			for i := 0; i < 200; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					want := fmt.Sprintf("body-%d", i)
					resp, err := cl.Post(base+"/e", "text/plain", strings.NewReader(want))
					if err != nil {
						errs <- err
						return
					}
					b, _ := io.ReadAll(resp.Body)
					_ = resp.Body.Close()
					if string(b) != want {
						errs <- fmt.Errorf("got %q want %q", b, want)
					}
				}(i)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if inline && inlined.Load() == 0 {
				t.Error("nothing was answered inline")
			}
		})
	}
}

// rawClient drives the server frame by frame.
type rawClient struct {
	t   *testing.T
	c   net.Conn
	fr  *http2.Framer
	enc *hpack.Encoder
	buf bytes.Buffer
}

func dialRaw(t *testing.T, addr string, settings ...http2.Setting) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	r := &rawClient{t: t, c: c, fr: http2.NewFramer(c, c)}
	r.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	r.enc = hpack.NewEncoder(&r.buf)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := r.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rawClient) block(fields ...string) []byte {
	r.buf.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		_ = r.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return append([]byte(nil), r.buf.Bytes()...)
}

func (r *rawClient) get(path string) []byte {
	return r.block(":method", "GET", ":scheme", "http", ":path", path, ":authority", "t")
}

// until reads frames until pred says stop or the connection ends; it
// returns the frames read.
func (r *rawClient) until(pred func(http2.Frame) bool) (frames []string, ended bool) {
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			return frames, true
		}
		desc := f.Header().Type.String()
		switch f := f.(type) {
		case *http2.SettingsFrame:
			// Not acknowledged: the server does not need it, and until
			// may run beside a writing goroutine.
			if f.IsAck() {
				desc += "+ACK"
			}
		case *http2.RSTStreamFrame:
			desc += " " + f.ErrCode.String()
		case *http2.GoAwayFrame:
			desc += " " + f.ErrCode.String()
		case *http2.MetaHeadersFrame:
			desc += " " + f.PseudoValue("status")
		case *http2.PingFrame:
			if f.IsAck() {
				desc += "+ACK"
			}
		}
		frames = append(frames, desc)
		if pred(f) {
			return frames, false
		}
	}
}

func isType(t http2.FrameType) func(http2.Frame) bool {
	return func(f http2.Frame) bool { return f.Header().Type == t }
}

// TestServerFrames: the protocol's rules at frame level, each case on a
// fresh connection: what the client sends and the frame the server must
// answer with.
func TestServerFrames(t *testing.T) {
	var calls atomic.Int64
	_, addr := startServer(t, Config{Handler: func(ctx *fasthttp.RequestCtx) {
		calls.Add(1)
		ctx.SetBodyString("ok")
	}, IdleTimeout: 5 * time.Second})
	cases := []struct {
		name string
		send func(r *rawClient)
		want string // the frame description awaited
	}{
		{"ping is acked", func(r *rawClient) { _ = r.fr.WritePing(false, [8]byte{1}) }, "PING+ACK"},
		{"get answered", func(r *rawClient) {
			_ = r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: r.get("/"), EndStream: true, EndHeaders: true})
		}, "HEADERS 200"},
		{"missing :path", func(r *rawClient) {
			_ = r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: r.block(":method", "GET", ":scheme", "http"), EndStream: true, EndHeaders: true})
		}, "RST_STREAM PROTOCOL_ERROR"},
		{"path not in origin form", func(r *rawClient) {
			_ = r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: r.block(":method", "GET", ":scheme", "http", ":path", "http://a/b"), EndStream: true, EndHeaders: true})
		}, "RST_STREAM PROTOCOL_ERROR"},
		{"connection header", func(r *rawClient) {
			_ = r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: r.block(":method", "GET", ":scheme", "http", ":path", "/", "connection", "close"), EndStream: true, EndHeaders: true})
		}, "RST_STREAM PROTOCOL_ERROR"},
		{"te not trailers", func(r *rawClient) {
			_ = r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: r.block(":method", "GET", ":scheme", "http", ":path", "/", "te", "gzip"), EndStream: true, EndHeaders: true})
		}, "RST_STREAM PROTOCOL_ERROR"},
		{"status in a request", func(r *rawClient) {
			_ = r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: r.block(":status", "200"), EndStream: true, EndHeaders: true})
		}, "RST_STREAM PROTOCOL_ERROR"},
		{"even stream id", func(r *rawClient) {
			_ = r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 2, BlockFragment: r.get("/"), EndStream: true, EndHeaders: true})
		}, "GOAWAY PROTOCOL_ERROR"},
		{"data on idle stream", func(r *rawClient) { _ = r.fr.WriteData(5, true, []byte("x")) }, "GOAWAY PROTOCOL_ERROR"},
		{"window overflow", func(r *rawClient) { _ = r.fr.WriteWindowUpdate(0, 1<<31-1) }, "GOAWAY FLOW_CONTROL_ERROR"},
		{"bad initial window", func(r *rawClient) {
			_ = r.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 31})
		}, "GOAWAY FLOW_CONTROL_ERROR"},
		{"priority on itself", func(r *rawClient) {
			_ = r.fr.WritePriority(3, http2.PriorityParam{StreamDep: 3, Weight: 1})
		}, "RST_STREAM PROTOCOL_ERROR"},
		{"content-length mismatch", func(r *rawClient) {
			blk := r.block(":method", "POST", ":scheme", "http", ":path", "/", "content-length", "5")
			_ = r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk, EndHeaders: true})
			_ = r.fr.WriteData(1, true, []byte("abc"))
		}, "RST_STREAM PROTOCOL_ERROR"},
		{"continuation without headers", func(r *rawClient) {
			_ = r.fr.WriteContinuation(1, true, r.get("/"))
		}, "GOAWAY PROTOCOL_ERROR"},
		{"frame too large", func(r *rawClient) {
			_ = r.fr.WriteRawFrame(http2.FrameData, 0, 1, make([]byte, 17<<10))
		}, "GOAWAY FRAME_SIZE_ERROR"},
		{"headers on a closed stream", func(r *rawClient) {
			_ = r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: r.get("/"), EndStream: true, EndHeaders: true})
			_ = r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: r.get("/"), EndStream: true, EndHeaders: true})
		}, "GOAWAY PROTOCOL_ERROR"},
		{"duplicate settings are fine", func(r *rawClient) {
			_ = r.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100}, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 200})
		}, "SETTINGS+ACK"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, addr)
			// Past the server's SETTINGS and the ACK of ours.
			r.until(func(f http2.Frame) bool { sf, ok := f.(*http2.SettingsFrame); return ok && sf.IsAck() })
			tc.send(r)
			frames, _ := r.until(func(f http2.Frame) bool {
				desc := f.Header().Type.String()
				return strings.HasPrefix(tc.want, desc)
			})
			if len(frames) == 0 || frames[len(frames)-1] != tc.want {
				t.Errorf("frames %v, want %q last", frames, tc.want)
			}
		})
	}
}

// TestServerLimits: the bounds against known attacks.
func TestServerLimits(t *testing.T) {
	t.Run("rapid reset", func(t *testing.T) {
		var running, peak, calls atomic.Int64
		release := make(chan struct{})
		_, addr := startServer(t, Config{MaxConcurrentStreams: 8, Handler: func(ctx *fasthttp.RequestCtx) {
			n := running.Add(1)
			defer running.Add(-1)
			calls.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			<-release
		}})
		r := dialRaw(t, addr)
		go r.until(func(http2.Frame) bool { return false })
		blk := r.get("/")
		for id := uint32(1); id < 2*500; id += 2 {
			if r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: blk, EndStream: true, EndHeaders: true}) != nil {
				break
			}
			if r.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
		close(release)
		deadline := time.Now().Add(5 * time.Second)
		for running.Load() > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if peak.Load() > 8 || calls.Load() > 8 {
			t.Errorf("%d handlers at once, %d in all; want at most 8 (the rest were reset while queued or refused)", peak.Load(), calls.Load())
		}
	})
	t.Run("header list too large", func(t *testing.T) {
		var calls atomic.Int64
		_, addr := startServer(t, Config{MaxHeaderListSize: 1024, Handler: func(*fasthttp.RequestCtx) { calls.Add(1) }})
		r := dialRaw(t, addr)
		r.until(func(f http2.Frame) bool { sf, ok := f.(*http2.SettingsFrame); return ok && sf.IsAck() })
		blk := r.block(":method", "GET", ":scheme", "http", ":path", "/", "x-a", strings.Repeat("a", 600), "x-b", strings.Repeat("b", 600))
		_ = r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk, EndStream: true, EndHeaders: true})
		frames, _ := r.until(isType(http2.FrameHeaders))
		if frames[len(frames)-1] != "HEADERS 431" || calls.Load() != 0 {
			t.Errorf("frames %v, %d handler calls; want 431 and none", frames, calls.Load())
		}
	})
	t.Run("window never opened", func(t *testing.T) {
		_, addr := startServer(t, Config{WriteTimeout: 300 * time.Millisecond, Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBody(make([]byte, 1<<20)) }})
		r := dialRaw(t, addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		_ = r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: r.get("/"), EndStream: true, EndHeaders: true})
		frames, ended := r.until(isType(http2.FrameRSTStream))
		if ended || frames[len(frames)-1] != "RST_STREAM CANCEL" {
			t.Errorf("frames %v, want RST_STREAM CANCEL after the write timeout", frames)
		}
	})
	t.Run("ping flood from a client that never reads", func(t *testing.T) {
		// Each PING wants an ACK; with nobody reading, the ACKs must stall
		// the connection (closed after WriteTimeout), not pile up.
		s := New(Config{WriteTimeout: 200 * time.Millisecond, Handler: func(*fasthttp.RequestCtx) {}})
		a, b := net.Pipe()
		done := make(chan struct{})
		go func() {
			s.ServeConn(a, nil)
			close(done)
		}()
		go func() {
			fr := http2.NewFramer(b, b)
			_, _ = io.WriteString(b, http2.ClientPreface)
			// Read the server's SETTINGS and WINDOW_UPDATE, then never again.
			for i := 0; i < 2; i++ {
				if _, err := fr.ReadFrame(); err != nil {
					return
				}
			}
			_ = fr.WriteSettings()
			for i := 0; i < 1e6; i++ {
				if fr.WritePing(false, [8]byte{}) != nil {
					return
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("the connection of a client that never reads was not closed")
		}
		_ = b.Close()
	})
	t.Run("busy connection not idled out", func(t *testing.T) {
		// Inline answers change no deadline mode; the idle deadline must
		// still move on with them.
		h := func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }
		_, addr := startServer(t, Config{IdleTimeout: 300 * time.Millisecond, Handler: h,
			Inline: func(ctx *fasthttp.RequestCtx) (bool, fasthttp.RequestHandler) { h(ctx); return true, nil }})
		r := dialRaw(t, addr)
		end := time.Now().Add(time.Second)
		for id := uint32(1); time.Now().Before(end); id += 2 {
			if err := r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: r.get("/"), EndStream: true, EndHeaders: true}); err != nil {
				t.Fatalf("stream %d: %v", id, err)
			}
			frames, ended := r.until(isType(http2.FrameData))
			if ended {
				t.Fatalf("stream %d: connection closed (%v)", id, frames)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	t.Run("idle connection closed", func(t *testing.T) {
		s, addr := startServer(t, Config{IdleTimeout: 200 * time.Millisecond, Handler: func(*fasthttp.RequestCtx) {}})
		r := dialRaw(t, addr)
		start := time.Now()
		frames, ended := r.until(func(http2.Frame) bool { return false })
		if !ended || time.Since(start) > 5*time.Second {
			t.Errorf("frames %v, ended %v", frames, ended)
		}
		deadline := time.Now().Add(5 * time.Second)
		for s.Open.Load() != 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if s.Open.Load() != 0 {
			t.Errorf("%d connections still open", s.Open.Load())
		}
	})
	t.Run("shutdown sends goaway and lets a stream finish", func(t *testing.T) {
		started := make(chan struct{})
		s := New(Config{Handler: func(ctx *fasthttp.RequestCtx) {
			close(started)
			time.Sleep(200 * time.Millisecond)
			ctx.SetBodyString("done")
		}})
		a, b := net.Pipe()
		go s.ServeConn(a, nil)
		r := &rawClient{t: t, c: b, fr: http2.NewFramer(b, b)}
		r.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		r.enc = hpack.NewEncoder(&r.buf)
		go func() {
			_, _ = io.WriteString(b, http2.ClientPreface)
			_ = r.fr.WriteSettings()
			_ = r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: r.get("/"), EndStream: true, EndHeaders: true})
		}()
		go func() {
			<-started
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = s.Shutdown(ctx)
		}()
		frames, _ := r.until(func(http2.Frame) bool { return false })
		got := strings.Join(frames, ",")
		if !strings.Contains(got, "GOAWAY NO_ERROR") || !strings.Contains(got, "HEADERS 200") || !strings.Contains(got, "DATA") {
			t.Errorf("frames %v", frames)
		}
	})
}

// TestFieldCounter: a field counts as its HTTP/1.1 line, "name: value";
// cookie crumbs as the one joined Cookie line.
func TestFieldCounter(t *testing.T) {
	type kv struct{ k, v string }
	cases := []struct {
		name   string
		limits FieldLimits
		fields []kv
		want   string
	}{
		{"no limits", FieldLimits{}, []kv{{"a", strings.Repeat("x", 1<<16)}}, ""},
		{"count at the limit", FieldLimits{MaxFields: 2}, []kv{{"a", "1"}, {"b", "2"}}, ""},
		{"count over", FieldLimits{MaxFields: 2}, []kv{{"a", "1"}, {"b", "2"}, {"c", "3"}}, "header_fields_too_many"},
		{"line at the limit", FieldLimits{MaxFieldBytes: 10}, []kv{{"abc", "12345"}}, ""},
		{"line over", FieldLimits{MaxFieldBytes: 10}, []kv{{"abc", "123456"}}, "header_field_too_large"},
		{"crumbs are one field", FieldLimits{MaxFields: 2}, []kv{{"cookie", "a=1"}, {"cookie", "b=2"}, {"cookie", "c=3"}, {"x", "y"}}, ""},
		// "cookie: a=1; b=2" is 16 bytes.
		{"crumbs joined at the limit", FieldLimits{MaxFieldBytes: 16}, []kv{{"cookie", "a=1"}, {"cookie", "b=2"}}, ""},
		{"crumbs joined over", FieldLimits{MaxFieldBytes: 15}, []kv{{"cookie", "a=1"}, {"cookie", "b=2"}}, "header_field_too_large"},
		{"canonical Cookie (net/http)", FieldLimits{MaxFields: 1}, []kv{{"Cookie", "a=1"}, {"Cookie", "b=2"}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.limits.Counter()
			got := ""
			for _, f := range tc.fields {
				if got = c.Add(f.k, f.v); got != "" {
					break
				}
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
