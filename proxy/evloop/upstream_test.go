//go:build linux

package evloop

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// rawOrigin is a TCP origin on 127.0.0.1 that answers each request read from a
// connection with answer(i, j) (i: connection number, j: request on it); an
// empty answer closes the connection without a word, and close after the
// answer when closeAfter.
type rawOrigin struct {
	ln    net.Listener
	conns atomic.Int64
}

func startRawOrigin(t *testing.T, answer func(conn, req int) (string, bool)) *rawOrigin {
	t.Helper()
	o := &rawOrigin{}
	o.ln = acceptEach(t, func(c net.Conn) {
		i := int(o.conns.Add(1)) - 1
		go func() {
			defer c.Close()
			br := bufio.NewReader(c)
			for j := 0; ; j++ {
				var req fasthttp.Request
				if err := req.Read(br); err != nil {
					return
				}
				a, closeAfter := answer(i, j)
				if a == "" {
					return
				}
				if _, err := c.Write([]byte(a)); err != nil || closeAfter {
					return
				}
			}
		}()
	})
	return o
}

// acceptEach listens on 127.0.0.1 and calls onConn, on the accepting
// goroutine, for every connection until the test ends (test origins).
func acceptEach(t *testing.T, onConn func(net.Conn)) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			onConn(c)
		}
	}()
	return ln
}

// forwardAll is a loop config whose Inline forwards every request to addr with
// timeout and answers what came back (the error as 502, ErrTooLarge handed off
// to slow).
func forwardAll(addr string, timeout time.Duration, slow fasthttp.RequestHandler) Config {
	return Config{Loops: 1, ReadTimeout: 5 * time.Second, IdleTimeout: 10 * time.Second, WriteTimeout: 5 * time.Second,
		Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(500) },
		Inline: func(ctx *fasthttp.RequestCtx) (bool, fasthttp.RequestHandler) {
			if err := Forward(ctx, addr, timeout); err != nil {
				ctx.SetStatusCode(502)
				ctx.SetBodyString("forward: " + err.Error())
				return true, nil
			}
			return false, nil
		},
		Forwarded: func(ctx *fasthttp.RequestCtx, err error) fasthttp.RequestHandler {
			switch {
			case errors.Is(err, ErrTooLarge):
				return slow
			case errors.Is(err, fasthttp.ErrTimeout):
				ctx.Response.Reset()
				ctx.SetStatusCode(504)
			case err != nil:
				ctx.Response.Reset()
				ctx.SetStatusCode(502)
				ctx.SetBodyString(err.Error())
			}
			return nil
		},
	}
}

func TestForwardFraming(t *testing.T) {
	big := strings.Repeat("b", 70<<10) // more than one read of the loop's buffer
	answers := map[string]string{
		"/cl":      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-O: 1\r\n\r\nhello",
		"/big":     "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(big)) + "\r\n\r\n" + big,
		"/chunked": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
		"/close":   "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
		"/204":     "HTTP/1.1 204 No Content\r\n\r\n",
		"/304":     "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
		"/interim": "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"/bad":     "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
	}
	var path atomic.Value
	o := startRawOrigin(t, func(int, int) (string, bool) {
		p := path.Load().(string)
		return answers[p], p == "/close"
	})
	s, addr := startLoops(t, forwardAll(o.ln.Addr().String(), 2*time.Second, nil))
	tests := []struct {
		path, method string
		status       int
		body         string
	}{
		{"/cl", "GET", 200, "hello"},
		{"/cl", "HEAD", 200, ""},
		{"/big", "GET", 200, big},
		{"/chunked", "GET", 200, "abcde"},
		{"/close", "GET", 200, "until the end"},
		{"/204", "GET", 204, ""},
		{"/304", "GET", 304, ""},
		{"/interim", "GET", 200, "ok"},
		{"/bad", "GET", 502, ""},
		{"/cl", "GET", 200, "hello"},
	}
	c := &fasthttp.HostClient{Addr: addr}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			path.Store(tt.path)
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			req.SetRequestURI("http://x" + tt.path)
			req.Header.SetMethod(tt.method)
			if err := c.DoTimeout(req, resp, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode() != tt.status {
				t.Fatalf("status %d, want %d (%q)", resp.StatusCode(), tt.status, resp.Body())
			}
			if tt.status != 502 && string(resp.Body()) != tt.body {
				t.Fatalf("body %.40q (%d bytes), want %.40q", resp.Body(), len(resp.Body()), tt.body)
			}
			if tt.path == "/cl" && tt.method == "GET" && string(resp.Header.Peek("X-O")) != "1" {
				t.Fatalf("origin header lost: %s", resp.Header.String())
			}
		})
	}
	st := s.Stats()
	if st.Forwards != uint64(len(tests)) || st.Handoffs != 0 {
		t.Fatalf("stats %+v: want %d forwards and no hand-off", st, len(tests))
	}
	// Keep-alive: one client at a time needs one connection, except after
	// the answers that closed it (/close, /bad) and HEAD, to which this raw
	// origin sends a body anyway (bytes after the answer: never reused).
	if n := o.conns.Load(); n > 4 {
		t.Fatalf("%d origin connections for %d sequential requests", n, len(tests))
	}
}

// A pooled connection the origin closed before the next request is retried
// once on a fresh connection; a connection closed after the answer began is
// an error.
func TestForwardStaleKeepAlive(t *testing.T) {
	o := startRawOrigin(t, func(conn, req int) (string, bool) {
		if req > 0 {
			return "", false // every connection answers only its first request
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false
	})
	s, addr := startLoops(t, forwardAll(o.ln.Addr().String(), 2*time.Second, nil))
	c := &fasthttp.HostClient{Addr: addr}
	for i := 0; i < 3; i++ {
		code, body, err := c.Get(nil, "http://x/")
		if err != nil || code != 200 || string(body) != "ok" {
			t.Fatalf("request %d: %d %q %v", i, code, body, err)
		}
	}
	if st := s.Stats(); st.ForwardRetries != 2 {
		t.Fatalf("stats %+v: want 2 retries on fresh connections", st)
	}
}

func TestForwardTimeoutAndRefused(t *testing.T) {
	o := startRawOrigin(t, func(int, int) (string, bool) {
		time.Sleep(2 * time.Second)
		return "", false
	})
	_, addr := startLoops(t, forwardAll(o.ln.Addr().String(), 300*time.Millisecond, nil))
	start := time.Now()
	code, _, err := fasthttp.GetTimeout(nil, "http://"+addr+"/", 5*time.Second)
	if err != nil || code != 504 {
		t.Fatalf("slow origin: %d %v, want 504", code, err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("per-try timeout of 300ms took %v", d)
	}

	// A port nobody listens on: the try fails as a dial error.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	_, addr2 := startLoops(t, forwardAll(dead, time.Second, nil))
	code, body, err := fasthttp.GetTimeout(nil, "http://"+addr2+"/", 5*time.Second)
	if err != nil || code != 502 || !strings.Contains(string(body), "dial") {
		t.Fatalf("refused: %d %q %v, want 502 with a dial error", code, body, err)
	}
}

// An answer above MaxForwardBytes is not buffered on the loop: Forwarded gets
// ErrTooLarge and hands the request off.
func TestForwardTooLargeHandsOff(t *testing.T) {
	big := strings.Repeat("z", 3<<20)
	o := startRawOrigin(t, func(int, int) (string, bool) {
		return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + strconv.FormatInt(int64(len(big)), 16) + "\r\n" + big + "\r\n0\r\n\r\n", false
	})
	cfg := forwardAll(o.ln.Addr().String(), 2*time.Second, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("handed off") })
	s, addr := startLoops(t, cfg)
	code, body, err := fasthttp.GetTimeout(nil, "http://"+addr+"/", 5*time.Second)
	if err != nil || code != 200 || string(body) != "handed off" {
		t.Fatalf("%d %.30q %v", code, body, err)
	}
	if st := s.Stats(); st.Handoffs != 1 {
		t.Fatalf("stats %+v: want one hand-off", st)
	}
}

// Forwarded requests from many clients at once share the loop with no
// mix-up: each answer carries its own path back.
func TestForwardConcurrent(t *testing.T) {
	origin := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/slow" {
			time.Sleep(50 * time.Millisecond)
		}
		ctx.SetBodyString("path " + string(ctx.Path()))
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go origin.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = origin.Shutdown() })
	s, addr := startLoops(t, forwardAll(ln.Addr().String(), 2*time.Second, nil))
	c := &fasthttp.HostClient{Addr: addr, MaxConns: 64}
	errs := make(chan error, 32)
	for g := 0; g < 32; g++ {
		go func() {
			for i := 0; i < 20; i++ {
				p := "/p" + strconv.Itoa(g) + "-" + strconv.Itoa(i)
				if i%5 == 0 {
					p = "/slow"
				}
				code, body, err := c.GetTimeout(nil, "http://x"+p, 5*time.Second)
				if err == nil && (code != 200 || string(body) != "path "+p) {
					err = errors.New("wrong answer " + strconv.Itoa(code) + " " + string(body) + " for " + p)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 32; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Forwards != 32*20 || st.Handoffs != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// frameAll frames b as the loop would when it arrives split at k.
func testFramer() *loop {
	s := New(Config{})
	l := &loop{s: s}
	l.ubu = bufio.NewReaderSize(&l.ubr, s.cfg.UpstreamHeaderBytes)
	return l
}

// FuzzResponseFraming: however an answer's bytes are split across reads, the
// loop frames it as it does from one read: a prefix is either incomplete, an
// error the whole also is, or the same complete answer.
func FuzzResponseFraming(f *testing.F) {
	seeds := []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\nto the end",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nabcde\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s), uint16(len(s)/2), false)
		f.Add([]byte(s), uint16(len(s)/3), true)
	}
	f.Fuzz(func(t *testing.T, b []byte, k uint16, head bool) {
		if len(b) > 8<<10 {
			return
		}
		l := testFramer()
		var whole, part fasthttp.Response
		var need int
		wDone, wUsed, wErr := l.frameResponse(&whole, b, true, head, &need)
		cut := int(k) % (len(b) + 1)
		need = 0
		pDone, pUsed, pErr := l.frameResponse(&part, b[:cut], false, head, &need)
		switch {
		case pErr != nil:
			if wErr == nil {
				t.Fatalf("prefix %d: error %v, whole: none (done %v)", cut, pErr, wDone)
			}
		case pDone:
			if wErr != nil || !wDone {
				t.Fatalf("prefix %d complete, whole: %v %v", cut, wDone, wErr)
			}
			if pUsed != wUsed || part.StatusCode() != whole.StatusCode() || !bytes.Equal(part.Body(), whole.Body()) {
				t.Fatalf("prefix %d: used %d status %d body %q; whole: used %d status %d body %q",
					cut, pUsed, part.StatusCode(), part.Body(), wUsed, whole.StatusCode(), whole.Body())
			}
		default:
			if need <= cut {
				t.Fatalf("prefix %d incomplete but needs only %d bytes", cut, need)
			}
		}
		if wDone && wUsed > len(b) {
			t.Fatalf("used %d of %d bytes", wUsed, len(b))
		}
	})
}

// A loop holds at most MaxUpstreamConns connections to one origin: a request
// that finds them all busy fails at once with fasthttp.ErrNoFreeConns (as a
// HostClient without a wait does), and the cap frees as answers come back.
func TestForwardMaxUpstreamConns(t *testing.T) {
	o := startRawOrigin(t, func(int, int) (string, bool) {
		time.Sleep(600 * time.Millisecond)
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false
	})
	cfg := forwardAll(o.ln.Addr().String(), 3*time.Second, nil)
	cfg.MaxUpstreamConns = 2
	_, addr := startLoops(t, cfg)
	type res struct {
		code int
		body string
		err  error
	}
	out := make(chan res, 3)
	for i := 0; i < 3; i++ {
		go func() {
			code, body, err := fasthttp.GetTimeout(nil, "http://"+addr+"/", 5*time.Second)
			out <- res{code, string(body), err}
		}()
		time.Sleep(50 * time.Millisecond) // in order: two take the connections
	}
	var ok, refused int
	for i := 0; i < 3; i++ {
		r := <-out
		switch {
		case r.err == nil && r.code == 200:
			ok++
		case r.err == nil && r.code == 502 && strings.Contains(r.body, fasthttp.ErrNoFreeConns.Error()):
			refused++
		default:
			t.Fatalf("unexpected %d %q %v", r.code, r.body, r.err)
		}
	}
	if ok != 2 || refused != 1 {
		t.Fatalf("%d answered, %d refused; want 2 and 1 with a cap of 2", ok, refused)
	}
	if n := o.conns.Load(); n != 2 {
		t.Fatalf("origin saw %d connections, want 2", n)
	}
	// The cap counts open connections, and the two are idle now: reused.
	code, _, err := fasthttp.GetTimeout(nil, "http://"+addr+"/", 5*time.Second)
	if err != nil || code != 200 || o.conns.Load() != 2 {
		t.Fatalf("after: %d %v, %d origin connections", code, err, o.conns.Load())
	}
}

// Connecting is bounded by UpstreamDialTimeout within the try: an origin whose
// accept queue is full (its SYNs dropped) fails as a dial timeout, which the
// edge may retry elsewhere whatever the method, long before the try's timeout.
func TestForwardDialTimeout(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	full := "127.0.0.1:" + strconv.Itoa(sa.(*unix.SockaddrInet4).Port)
	// Fill the accept queue (never accepted) until a connect no longer completes.
	var fillers []net.Conn
	defer func() {
		for _, c := range fillers {
			c.Close()
		}
	}()
	for i := 0; i < 8; i++ {
		c, err := net.DialTimeout("tcp", full, 200*time.Millisecond)
		if err != nil {
			break
		}
		fillers = append(fillers, c)
	}
	if len(fillers) == 8 {
		t.Fatal("the accept queue never filled: cannot make a connect hang")
	}
	cfg := forwardAll(full, 3*time.Second, nil)
	cfg.UpstreamDialTimeout = 300 * time.Millisecond
	_, addr := startLoops(t, cfg)
	start := time.Now()
	code, body, err := fasthttp.GetTimeout(nil, "http://"+addr+"/", 5*time.Second)
	d := time.Since(start)
	if err != nil || code != 502 || !strings.Contains(string(body), fasthttp.ErrDialTimeout.Error()) {
		t.Fatalf("%d %q %v after %v, want 502 with a dial timeout", code, body, err, d)
	}
	if d > 2*time.Second {
		t.Fatalf("a 300ms dial timeout took %v (the try's timeout is 3s)", d)
	}
}

// lightSeeds are origin answers for the light-answer tests: ordinary ones the
// loop passes through and the shapes that must take fasthttp's path.
var lightSeeds = []string{
	"HTTP/1.1 200 OK\r\nServer: o\r\nDate: Sun, 06 Dec 2026 10:00:00 GMT\r\nContent-Type: application/json\r\nContent-Length: 5\r\nX-A: 1\r\nCache-Tag: p:1\r\nX-B: 2\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\nNovashop-Edge-Cache-Control: max-age=5\r\nVary: Accept\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nCache-Tag: a\r\nX-1: 1\r\nNovashop-Edge-Cache-Control: x\r\nDate: Sun, 06 Dec 2026 10:00:00 GMT\r\nX-2: 2\r\nCache-Tag: b\r\nX-3: 3\r\nContent-Type: text/plain\r\nX-4: 4\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nbad",
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Fold: a\r\n b\r\nContent-Length: 3\r\n\r\nabc",
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nContent-Length: 3\r\n\r\nabc",
	"HTTP/1.1 200 Fine\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nabc",
	"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nContent-Length: 3\r\n\r\nabc",
	"HTTP/1.1 200 OK\r\nContent-Type:text/plain\r\nContent-Length: 3\r\n\r\nabc",
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Request-Id: x\r\nContent-Length: 3\r\n\r\nabc",
	"HTTP/1.1 204 No Content\r\nContent-Type: text/plain\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 01\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: +1\r\n\r\nx",
	"HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Length: 1\n\nx",
	"HTTP/1.1 200 OK\r\nSet-Cookie: a=b\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Big: " + strings.Repeat("v", 3000) + "\r\nContent-Length: 1\r\n\r\nx",
}

var lightDateLine = regexp.MustCompile(`\r\nDate: [^\r]*\r\n`)

// lightBoth frames b both ways, as the handler would leave the answer (the
// dropped fields deleted, X-Request-Id set), and returns what each path writes
// for the client; light is nil when the scanner declined, old nil when
// fasthttp's framer did not complete the answer.
func lightBoth(t *testing.T, l *loop, b []byte, eof bool) (old, light []byte, oldUsed, lightUsed int) {
	t.Helper()
	cfg := &l.s.cfg
	handler := func(resp *fasthttp.Response) {
		for _, k := range cfg.DropAnswerFields {
			resp.Header.Del(k)
		}
		resp.Header.SetCanonical([]byte("X-Request-Id"), []byte("rid"))
	}
	var resp fasthttp.Response
	var need int
	if done, used, err := l.frameResponse(&resp, b, eof, false, &need); done && err == nil {
		handler(&resp)
		var w bytes.Buffer
		bw := bufio.NewWriter(&w)
		if err := resp.Write(bw); err != nil {
			t.Fatal(err)
		}
		_ = bw.Flush()
		old, oldUsed = lightDateLine.ReplaceAll(w.Bytes(), []byte("\r\nDate: D\r\n")), used
	}
	var ctx fasthttp.RequestCtx
	if st, n := scanLight(b, eof, cfg.UpstreamHeaderBytes/2, cfg.MaxForwardBytes, cfg.DropAnswerFields, cfg.SetAnswerFields, &l.scan); st == lightDone {
		l.setLight(&ctx, b, nil, &l.scan)
		handler(&ctx.Response)
		if !l.lightFor(&ctx) {
			t.Fatal("light answer lost")
		}
		light, lightUsed = lightDateLine.ReplaceAll(l.writeLight(nil, &ctx), []byte("\r\nDate: D\r\n")), n
	}
	return old, light, oldUsed, lightUsed
}

func testLightLoop() *loop {
	s := New(Config{LightAnswers: true, DropAnswerFields: []string{"Cache-Tag", "Novashop-Edge-Cache-Control"}, SetAnswerFields: []string{"X-Request-Id"}})
	l := &loop{s: s}
	l.ubu = bufio.NewReaderSize(&l.ubr, s.cfg.UpstreamHeaderBytes)
	return l
}

// TestLightAnswerTable: the ordinary answers pass the light path and the
// client gets the bytes fasthttp's path writes; the rest take fasthttp's path.
func TestLightAnswerTable(t *testing.T) {
	l := testLightLoop()
	for i, s := range lightSeeds {
		old, light, ou, lu := lightBoth(t, l, []byte(s), false)
		wantLight := i < 6
		if (light != nil) != wantLight {
			t.Errorf("%d: light %v, want %v: %q", i, light != nil, wantLight, s)
			continue
		}
		if light == nil {
			continue
		}
		if old == nil || ou != lu || !bytes.Equal(old, light) {
			t.Errorf("%d: fasthttp's path (used %d):\n%q\nlight path (used %d):\n%q", i, ou, old, lu, light)
		}
	}
}

// FuzzLightAnswer: whatever the scanner passes as an ordinary answer,
// fasthttp's framer completes with the same length and the client receives
// the same bytes from both paths; a prefix it calls complete is the whole.
func FuzzLightAnswer(f *testing.F) {
	for _, s := range lightSeeds {
		f.Add([]byte(s), uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, b []byte, k uint16) {
		if len(b) > 8<<10 {
			return
		}
		l := testLightLoop()
		for _, eof := range []bool{false, true} {
			old, light, ou, lu := lightBoth(t, l, b, eof)
			if light != nil && (old == nil || ou != lu || !bytes.Equal(old, light)) {
				t.Fatalf("eof %v: fasthttp's path (used %d):\n%q\nlight path (used %d):\n%q", eof, ou, old, lu, light)
			}
		}
		cut := int(k) % (len(b) + 1)
		var s lightScan
		st, n := scanLight(b[:cut], false, 2048, 1<<20, nil, nil, &s)
		if st == lightNeed && n <= cut {
			t.Fatalf("prefix %d incomplete but needs only %d bytes", cut, n)
		}
		if st == lightDone {
			if st2, n2 := scanLight(b, false, 2048, 1<<20, nil, nil, &s); st2 != lightDone || n2 != n {
				t.Fatalf("prefix %d complete (%d), whole: %d %d", cut, n, st2, n2)
			}
		}
	})
}

// BenchmarkAnswerPaths: the user-space cost of taking a 2 KB origin answer
// (the bench's fixed origin's fields) from the read buffer to the client's
// output, fasthttp's path against the light one.
func BenchmarkAnswerPaths(b *testing.B) {
	answer := []byte("HTTP/1.1 200 OK\r\nServer: fixed-origin\r\nContent-Type: application/json\r\nContent-Length: 2048\r\nX-Served-By: f1\r\nCache-Control: no-store\r\nCache-Tag: product:1\r\n\r\n" + strings.Repeat("x", 2048))
	handler := func(resp *fasthttp.Response) {
		resp.Header.Del("Cache-Tag")
		resp.Header.Del("Novashop-Edge-Cache-Control")
		resp.Header.SetCanonical([]byte("X-Request-Id"), []byte("rid"))
		if len(resp.Header.Peek("Date")) == 0 {
			resp.Header.Set("Date", "Sun, 06 Dec 2026 10:00:00 GMT")
		}
	}
	b.Run("fasthttp", func(b *testing.B) {
		l := testLightLoop()
		l.bw = bufio.NewWriterSize(&l.app, 16<<10)
		var resp fasthttp.Response
		out := make([]byte, 0, 8192)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var need int
			if done, _, err := l.frameResponse(&resp, answer, false, false, &need); !done || err != nil {
				b.Fatal(done, err)
			}
			handler(&resp)
			l.app.dst = out[:0]
			l.bw.Reset(&l.app)
			_ = resp.Write(l.bw)
			_ = l.bw.Flush()
			out = l.app.dst
		}
	})
	b.Run("light", func(b *testing.B) {
		l := testLightLoop()
		cfg := &l.s.cfg
		var ctx fasthttp.RequestCtx
		out := make([]byte, 0, 8192)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if st, _ := scanLight(answer, false, cfg.UpstreamHeaderBytes/2, cfg.MaxForwardBytes, cfg.DropAnswerFields, cfg.SetAnswerFields, &l.scan); st != lightDone {
				b.Fatal(st)
			}
			l.setLight(&ctx, answer, nil, &l.scan)
			handler(&ctx.Response)
			if !l.lightFor(&ctx) {
				b.Fatal("lost")
			}
			out = l.writeLight(out[:0], &ctx)
		}
	})
}

// A light answer carries a Date for the handler to see (the origin's, or the
// loop's when it sent none), so the handler does not add one per request.
func TestLightAnswerHasDate(t *testing.T) {
	for _, a := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 200 OK\r\nDate: Sun, 06 Dec 2026 10:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nx",
	} {
		l := testLightLoop()
		l.now = time.Now().UnixNano()
		if st, _ := scanLight([]byte(a), false, 2048, 1<<20, nil, nil, &l.scan); st != lightDone {
			t.Fatalf("%q: not light", a)
		}
		var ctx fasthttp.RequestCtx
		l.setLight(&ctx, []byte(a), nil, &l.scan)
		if d := ctx.Response.Header.Peek("Date"); len(d) == 0 || len(ctx.Response.Header.Peek("Trailer")) != 0 {
			t.Fatalf("%q: Date %q, Trailer %q", a, d, ctx.Response.Header.Peek("Trailer"))
		}
	}
}
