package proxy

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestEdgeExpectContinue sends Expect requests as raw bytes, the header
// section first and the body (if any) only after a pause, and checks whether
// the edge sends 100 Continue before its final answer (RFC 9110 §10.1.1).
// Both I/O cores (EDGE_TEST_IO), body streamed (the default,
// stream_request_bytes 65536) and read whole (0).
func TestEdgeExpectContinue(t *testing.T) {
	forBodyModes(t, testEdgeExpectContinue)
}

// Whether a 100 Continue comes for a request whose body came with its header
// section: the goroutine core (fasthttp's server) sends one, the event loop
// does not (it has the body already, which RFC 9110 §10.1.1 lets a server
// skip the 100 for). Either is valid; the final answer is the same.
const continueEither = -1

func testEdgeExpectContinue(t *testing.T, stream int) {
	o := newOrigin(t, "o1", nil)
	cfg := testConfig(o)
	cfg.Health.Active = false
	cfg.Limits.StreamRequestBytes = stream
	cfg.Limits.MaxBodyBytes = 1 << 20
	e := startEdge(t, cfg, Options{JWTSecret: testSecret})
	shopper := "Authorization: Bearer " + token(t, "42", "shopper", time.Minute, testSecret)
	staff := "Authorization: Bearer " + token(t, "1", "staff", time.Minute, testSecret)
	expired := "Authorization: Bearer " + token(t, "42", "shopper", -time.Hour, testSecret)
	forged := "Authorization: Bearer " + token(t, "1", "staff", time.Minute, []byte("another-secret-that-is-long-enough-00"))
	const (
		cl      = "POST /up HTTP/1.1\r\nHost: shop\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
		chunked = "POST /up HTTP/1.1\r\nHost: shop\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"
		chunks  = "5\r\nhello\r\n0\r\n\r\n"
	)
	tests := []struct {
		name    string
		head    string // sent first
		body    string // sent after a pause (when no final answer came first)
		interim int    // 1: a 100 Continue comes before the body is sent, 0: none, continueEither
		status  int
	}{
		{"Content-Length, body not sent yet", cl, "hello", 1, 200},
		{"chunked, body not sent yet", chunked, chunks, 1, 200},
		{"chunked, a first chunk sent with the header", chunked + "5\r\nhel", "lo\r\n0\r\n\r\n", 1, 200},
		{"any case", "POST /up HTTP/1.1\r\nHost: shop\r\nexpect: 100-CONTINUE\r\nContent-Length: 5\r\n\r\n", "hello", 1, 200},
		// RFC 9110 §10.1.1: a server MUST NOT send 100 to an HTTP/1.0 client.
		{"HTTP/1.0, Content-Length", "POST /up HTTP/1.0\r\nHost: shop\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", "hello", 0, 200},
		{"body sent with the header", cl + "hello", "", continueEither, 200},
		{"chunked body sent with the header", chunked + chunks, "", continueEither, 200},
		// No content: nothing to continue (the request is complete).
		{"Content-Length 0", "POST /up HTTP/1.1\r\nHost: shop\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n", "", continueEither, 200},
		// Other expectations are ignored (RFC 9110 §10.1.1 allows, not
		// requires, 417): the request is served as if Expect were absent.
		{"unsupported expectation", "POST /up HTTP/1.1\r\nHost: shop\r\nExpect: foo\r\nContent-Length: 5\r\n\r\n", "hello", 0, 200},
		// Refused from the header section alone: 413 at once, no 100.
		{"Content-Length over max_body_bytes", "POST /up HTTP/1.1\r\nHost: shop\r\nExpect: 100-continue\r\nContent-Length: 2000000\r\n\r\n", "", 0, 413},
		// A protected route's token is judged from the header section too:
		// a client is not asked for a body only to be told 401 or 403.
		{"protected route without a token", "POST /api/cart/ HTTP/1.1\r\nHost: shop\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", "hello", 0, 401},
		{"protected route without a token, chunked", "POST /api/cart/ HTTP/1.1\r\nHost: shop\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n", chunks, 0, 401},
		{"protected route, expired token", "POST /api/cart/ HTTP/1.1\r\nHost: shop\r\nExpect: 100-continue\r\n" + expired + "\r\nContent-Length: 5\r\n\r\n", "hello", 0, 401},
		{"protected route, forged token", "POST /api/cart/ HTTP/1.1\r\nHost: shop\r\nExpect: 100-continue\r\n" + forged + "\r\nContent-Length: 5\r\n\r\n", "hello", 0, 401},
		{"staff route, shopper's token", "POST /api/products/ HTTP/1.1\r\nHost: shop\r\nExpect: 100-continue\r\n" + shopper + "\r\nContent-Length: 5\r\n\r\n", "hello", 0, 403},
		// A valid token gets its 100 and the body goes on to the origin.
		{"protected route, valid token", "POST /api/cart/ HTTP/1.1\r\nHost: shop\r\nExpect: 100-continue\r\n" + shopper + "\r\nContent-Length: 5\r\n\r\n", "hello", 1, 200},
		{"staff route, staff token, chunked", "POST /api/products/ HTTP/1.1\r\nHost: shop\r\nExpect: 100-continue\r\n" + staff + "\r\nTransfer-Encoding: chunked\r\n\r\n", chunks, 1, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A 100 that must come is waited for longer (a loaded -race run).
			wait := 300 * time.Millisecond
			if tt.interim == 1 {
				wait = 3 * time.Second
			}
			cont, r := expectExchange(t, e.addr, tt.head, tt.body, wait)
			if tt.interim == continueEither {
				t.Logf("100 Continue sent: %v", cont)
			} else if cont != (tt.interim == 1) {
				t.Errorf("100 Continue sent: %v, want %v", cont, tt.interim == 1)
			}
			if r.StatusCode() != tt.status {
				t.Fatalf("status %d, want %d (%s)", r.StatusCode(), tt.status, r.Body())
			}
			if tt.status != 200 {
				wantJSONError(t, r, tt.status)
			}
			if tt.status >= 400 && !r.ConnectionClose() {
				// The client may send the body anyway: the edge does not read it.
				t.Error("413 without Connection: close")
			}
		})
	}
}

// expectExchange writes head, waits up to wait for an answer, and reports
// whether that was 100 Continue; unless a final answer came, it then writes
// body and returns the final answer.
func expectExchange(t *testing.T, addr, head, body string, wait time.Duration) (bool, *fasthttp.Response) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(wait))
	const interim = "HTTP/1.1 100 Continue\r\n\r\n"
	first, _ := br.Peek(len(interim))
	cont := string(first) == interim
	final := len(first) > 0 && !cont
	if cont {
		_, _ = br.Discard(len(interim))
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if !final && body != "" {
		if _, err := io.WriteString(c, body); err != nil {
			t.Fatal(err)
		}
	}
	r := &fasthttp.Response{}
	if err := r.Read(br); err != nil {
		t.Fatalf("final answer: %v (100 Continue: %v)", err, cont)
	}
	return cont, r
}
