//go:build linux

package evloop

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// startLoops serves h on 127.0.0.1 with the event loops.
func startLoops(t testing.TB, cfg Config) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ErrorHandler == nil {
		cfg.ErrorHandler = func(ctx *fasthttp.RequestCtx, err error) {
			ctx.SetStatusCode(400)
			ctx.SetBodyString("bad: " + err.Error())
		}
	}
	if cfg.BatchWait == 0 {
		cfg.BatchWait = testBatchWait(t)
	}
	s := New(cfg)
	go s.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { s.Close(); ln.Close() })
	return s, ln.Addr().String()
}

func echo(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set("X-Path", string(ctx.Path()))
	ctx.SetBody(ctx.Request.Body())
}

// rawExchange writes raw bytes and reads n responses.
func rawExchange(t testing.TB, addr, raw string, n int) []*fasthttp.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []*fasthttp.Response
	for i := 0; i < n; i++ {
		r := new(fasthttp.Response)
		if err := r.Read(br); err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		out = append(out, r)
	}
	return out
}

func TestRequests(t *testing.T) {
	_, addr := startLoops(t, Config{Handler: echo, ReadTimeout: time.Second, MaxHeaderBytes: 1024, MaxBodyBytes: 64})
	tests := []struct {
		name   string
		raw    string
		n      int
		status []int
		check  func(t *testing.T, r []*fasthttp.Response)
	}{
		{"simple", "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", 1, []int{200}, nil},
		{"pipelined in order", "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /3 HTTP/1.1\r\nHost: x\r\n\r\n", 3, []int{200, 200, 200},
			func(t *testing.T, r []*fasthttp.Response) {
				for i, want := range []string{"/1", "/2", "/3"} {
					if got := string(r[i].Header.Peek("X-Path")); got != want {
						t.Errorf("response %d for %s, want %s", i, got, want)
					}
				}
				if string(r[1].Body()) != "abc" {
					t.Errorf("body %q", r[1].Body())
				}
			}},
		{"empty line before request line", "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n", 2, []int{200, 200}, nil},
		{"chunked body", "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 1, []int{200},
			func(t *testing.T, r []*fasthttp.Response) {
				if string(r[0].Body()) != "abc" {
					t.Errorf("body %q", r[0].Body())
				}
			}},
		{"bad request line", "GET /x HTTP/1.1 junk\r\nHost: x\r\n\r\n", 1, []int{400}, func(t *testing.T, r []*fasthttp.Response) {
			if !r[0].ConnectionClose() {
				t.Error("a parse error must close the connection")
			}
		}},
		{"header too large", "GET /x HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 2000) + "\r\n\r\n", 1, []int{400}, nil},
		{"body too large", "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", 1, []int{400}, nil},
		{"HTTP/1.0 closes", "GET /x HTTP/1.0\r\n\r\n", 1, []int{200}, func(t *testing.T, r []*fasthttp.Response) {
			if !r[0].ConnectionClose() {
				t.Error("HTTP/1.0 without keep-alive must close")
			}
		}},
		{"HTTP/1.0 keep-alive", "GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n", 2, []int{200, 200}, func(t *testing.T, r []*fasthttp.Response) {
			if string(r[0].Header.Peek("Connection")) != "keep-alive" {
				t.Errorf("Connection %q", r[0].Header.Peek("Connection"))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := rawExchange(t, addr, tt.raw, tt.n)
			for i, r := range rs {
				if r.StatusCode() != tt.status[i] {
					t.Errorf("response %d: status %d, want %d (%s)", i, r.StatusCode(), tt.status[i], r.Body())
				}
				if len(r.Header.Peek("Date")) == 0 {
					t.Errorf("response %d has no Date", i)
				}
			}
			if tt.check != nil {
				tt.check(t, rs)
			}
		})
	}
}

// TestExpectContinue: 100 Continue once the header section of an Expect
// request is in and its body is not, with a Content-Length and chunked (whose
// incomplete body makes fasthttp reset the request: the loop notes the
// expectation before reading it).
func TestExpectContinue(t *testing.T) {
	_, addr := startLoops(t, Config{Handler: echo, ReadTimeout: 2 * time.Second, MaxBodyBytes: 1 << 10})
	for _, tt := range []struct{ name, head, body string }{
		{"Content-Length", "POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n", "ok"},
		{"chunked", "POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n", "2\r\nok\r\n0\r\n\r\n"},
		{"chunked, part of a chunk with the header", "POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n2\r\no", "k\r\n0\r\n\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write([]byte(tt.head)); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			line, err := br.ReadString('\n')
			if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
				t.Fatalf("interim answer %q, %v", line, err)
			}
			_, _ = br.ReadString('\n')
			_, _ = c.Write([]byte(tt.body))
			var r fasthttp.Response
			if err := r.Read(br); err != nil || string(r.Body()) != "ok" {
				t.Fatalf("final answer %q, %v", r.Body(), err)
			}
		})
	}
}

// A slowloris client (a byte a second) and a client that never reads its answers
// hold their own connections only: others are served at once meanwhile, and the
// read timeout ends the trickler with 408.
func TestSlowClientsDoNotStall(t *testing.T) {
	big := make([]byte, 1<<20)
	s, addr := startLoops(t, Config{Loops: 1, ReadTimeout: 1500 * time.Millisecond, WriteTimeout: time.Second,
		Handler: func(ctx *fasthttp.RequestCtx) {
			if string(ctx.Path()) == "/big" {
				ctx.SetBody(big)
				return
			}
			echo(ctx)
		},
		ErrorHandler: func(ctx *fasthttp.RequestCtx, err error) {
			var op *net.OpError
			if errors.As(err, &op) && op.Timeout() {
				ctx.SetStatusCode(408)
				return
			}
			ctx.SetStatusCode(400)
		}})

	// The trickler.
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		req := "GET /slow HTTP/1.1\r\nHost: x\r\n"
		for i := 0; i < len(req); i++ {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			if _, err := slow.Write([]byte{req[i]}); err != nil {
				return
			}
		}
	}()

	// The non-reader: asks for 1 MiB answers, many times, and never reads.
	deaf, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer deaf.Close()
	for i := 0; i < 8; i++ {
		if _, err := deaf.Write([]byte("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			break
		}
	}

	// Everybody else is served at once, on the same single loop.
	client := &fasthttp.HostClient{Addr: addr}
	for i := 0; i < 50; i++ {
		start := time.Now()
		code, _, err := client.GetTimeout(nil, "http://"+addr+"/fast", time.Second)
		if err != nil || code != 200 {
			t.Fatalf("request %d: %d %v", i, code, err)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Fatalf("request %d took %v", i, d)
		}
	}

	// The trickler gets 408 when its read timeout ends, and the connection closes.
	_ = slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	var r fasthttp.Response
	if err := r.Read(bufio.NewReader(slow)); err != nil || r.StatusCode() != 408 {
		t.Fatalf("slowloris: %d %v, want 408", r.StatusCode(), err)
	}
	// The non-reader is cut off by the write timeout.
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Conns > 1 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := s.Stats().Conns; n > 1 {
		t.Fatalf("%d connections still open; the non-reader should have been closed", n)
	}
}

// An idle keep-alive connection costs its conn struct (and a table slot): keep it
// in the low hundreds of bytes.
func TestConnStateSize(t *testing.T) {
	if n := unsafe.Sizeof(conn{}); n > 192 {
		t.Fatalf("conn is %d bytes", n)
	}
}

func TestShutdownWaitsForHandoffs(t *testing.T) {
	release := make(chan struct{})
	s, addr := startLoops(t, Config{Handler: func(ctx *fasthttp.RequestCtx) {
		<-release
		ctx.SetBodyString("done")
	}})
	errc := make(chan error, 1)
	go func() {
		code, body, err := fasthttp.Get(nil, "http://"+addr+"/")
		if err == nil && (code != 200 || string(body) != "done") {
			err = fmt.Errorf("%d %s", code, body)
		}
		errc <- err
	}()
	for s.Stats().Handoffs == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	time.Sleep(50 * time.Millisecond)
	close(release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
}

// A HEAD answer carries the headers of the GET answer and no body, and the next
// pipelined answer follows it directly.
func TestHeadHasNoBody(t *testing.T) {
	_, addr := startLoops(t, Config{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("X-Path", string(ctx.Path()))
		ctx.SetBodyString("body")
	}})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /g HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	var head fasthttp.Response
	head.SkipBody = true
	if err := head.Read(br); err != nil || head.Header.ContentLength() != 4 || string(head.Header.Peek("X-Path")) != "/h" {
		t.Fatalf("HEAD: %v %s", err, head.Header.String())
	}
	var get fasthttp.Response
	if err := get.Read(br); err != nil || string(get.Body()) != "body" || string(get.Header.Peek("X-Path")) != "/g" {
		t.Fatalf("GET after HEAD: %v %q", err, get.Body())
	}
}

// TestLoopIDStableAcrossRequests: fasthttp gives the loop's ctx a new ConnID
// per request, so per-loop state (the edge's access-log shard) is keyed by
// LoopID, which must name the owning loop and stay the same on a connection.
func TestLoopIDStableAcrossRequests(t *testing.T) {
	_, addr := startLoops(t, Config{Loops: 2, Handler: func(ctx *fasthttp.RequestCtx) {
		lc, ok := ctx.Conn().(interface{ LoopID() int })
		if !ok {
			ctx.SetStatusCode(500)
			return
		}
		fmt.Fprintf(ctx, "%d %d", lc.LoopID(), ctx.ConnID())
	}})
	resps := rawExchange(t, addr, strings.Repeat("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 3), 3)
	var loops, ids []string
	for i, r := range resps {
		f := strings.Fields(string(r.Body()))
		if r.StatusCode() != 200 || len(f) != 2 {
			t.Fatalf("response %d: %d %q (the connection does not expose LoopID)", i, r.StatusCode(), r.Body())
		}
		if f[0] != "0" && f[0] != "1" {
			t.Fatalf("LoopID %s outside the 2 loops", f[0])
		}
		loops, ids = append(loops, f[0]), append(ids, f[1])
	}
	if loops[0] != loops[1] || loops[1] != loops[2] {
		t.Fatalf("LoopID changed on one connection: %v", loops)
	}
	t.Logf("LoopID %v, ConnID %v", loops, ids)
}

// A burst of connections (wrk opens all of its at once) is spread over the
// loops, not owned by whichever loop won the listener's wake-up.
func TestConnectionsSpreadOverLoops(t *testing.T) {
	_, addr := startLoops(t, Config{Loops: 2, Handler: func(ctx *fasthttp.RequestCtx) {
		lc, _ := ctx.Conn().(interface{ LoopID() int })
		if lc == nil {
			ctx.SetStatusCode(500)
			return
		}
		fmt.Fprintf(ctx, "%d", lc.LoopID())
	}})
	const n = 64
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	var per [2]int
	for i, c := range conns {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		var r fasthttp.Response
		if err := r.Read(bufio.NewReader(c)); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		switch string(r.Body()) {
		case "0":
			per[0]++
		case "1":
			per[1]++
		default:
			t.Fatalf("connection %d: %d %q", i, r.StatusCode(), r.Body())
		}
	}
	if per[0] < n/2-4 || per[1] < n/2-4 {
		t.Fatalf("connections per loop %v: want about %d each", per, n/2)
	}
	t.Logf("connections per loop: %v", per)
}

// A connection sending a deep pipeline of requests answered on the loop gets at
// most perRoundRequests of them answered per round: another connection's
// request that is ready in the same round is answered after at most one budget
// of the pipeline, not after all of it; and the whole pipeline is still
// answered, in order.
func TestPipelineDoesNotStarveOthers(t *testing.T) {
	var mu sync.Mutex
	var order []string
	hold, holding := make(chan struct{}), make(chan struct{})
	_, addr := startLoops(t, Config{Loops: 1, ReadTimeout: 5 * time.Second,
		Handler: echo,
		Inline: func(ctx *fasthttp.RequestCtx) (bool, fasthttp.RequestHandler) {
			p := string(ctx.Path())
			if p == "/hold" {
				close(holding)
				<-hold // keeps the loop busy until both others have written
			}
			mu.Lock()
			order = append(order, p)
			mu.Unlock()
			ctx.SetBodyString(p)
			return true, nil
		}})
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}
	holder, deep, single := dial(), dial(), dial()
	// The loop accepts all three before it blocks in /hold.
	for _, c := range []net.Conn{deep, single} {
		if _, err := c.Write([]byte("GET /warm HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		var r fasthttp.Response
		if err := r.Read(bufio.NewReader(c)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := holder.Write([]byte("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	<-holding
	const depth = 400 // ~12 KB: one read
	pipe := strings.Repeat("GET /deep HTTP/1.1\r\nHost: x\r\n\r\n", depth)
	if _, err := deep.Write([]byte(pipe)); err != nil {
		t.Fatal(err)
	}
	if _, err := single.Write([]byte("GET /single HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	close(hold) // on loopback both writes are in the loop's sockets already
	br := bufio.NewReader(deep)
	for i := 0; i < depth; i++ {
		var r fasthttp.Response
		if err := r.Read(br); err != nil || string(r.Body()) != "/deep" {
			t.Fatalf("deep answer %d: %q %v", i, r.Body(), err)
		}
	}
	var r fasthttp.Response
	if err := r.Read(bufio.NewReader(single)); err != nil || string(r.Body()) != "/single" {
		t.Fatalf("single answer: %q %v", r.Body(), err)
	}
	mu.Lock()
	defer mu.Unlock()
	deepBefore := 0
	for _, p := range order {
		if p == "/single" {
			break
		}
		if p == "/deep" {
			deepBefore++
		}
	}
	if deepBefore > perRoundRequests || deepBefore == depth {
		t.Fatalf("%d of the pipeline's %d requests were answered before the other connection's one; want at most %d", deepBefore, depth, perRoundRequests)
	}
}
