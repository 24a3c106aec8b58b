package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/novashop/edge/proxy/config"
)

// rawAnswerOrigin answers every request it reads with answer, byte for byte,
// and closes the connection after it when closeAfter is set.
func rawAnswerOrigin(t *testing.T, answer string, closeAfter bool) *origin {
	t.Helper()
	addr := serveRaw(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if line == "\r\n" {
					break
				}
			}
			if _, err := io.WriteString(c, answer); err != nil || closeAfter {
				return
			}
		}
	})
	return &origin{name: "raw", addr: addr, url: "http://" + addr}
}

// serveRaw listens on a loopback port until the test ends, runs serve on
// each connection it accepts (then closes it), and returns the address.
func serveRaw(t testing.TB, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

var answerDate = regexp.MustCompile(`\r\nDate: [^\r]*\r\n`)

// clientBytes sends one request through a fresh event-loop edge in front of an
// origin that answers answer, and returns all the client receives (the edge
// closes after it: the request asks to), its Date made constant.
func clientBytes(t *testing.T, light bool, method, answer string, closeAfter bool) (got string, lights uint64) {
	t.Helper()
	return clientSends(t, light, method+" /api/products/1/ HTTP/1.1\r\nHost: shop\r\nX-Request-Id: rid-1\r\nConnection: close\r\n\r\n", answer, closeAfter)
}

// clientSends is clientBytes for the raw requests req (the last must close).
func clientSends(t *testing.T, light bool, req, answer string, closeAfter bool) (got string, lights uint64) {
	t.Helper()
	lightAnswers = light
	defer func() { lightAnswers = true }()
	cfg := testConfig(rawAnswerOrigin(t, answer, closeAfter))
	cfg.IO = config.IOEventLoop
	cfg.Health.Active = false
	e := startEdge(t, cfg, Options{})
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the answer: %v (%q)", err, b)
	}
	return string(answerDate.ReplaceAll(b, []byte("\r\nDate: D\r\n"))), e.s.loops.Stats().LightAnswers
}

// TestLightAnswersMatchFasthttp: through the whole handler pipeline on the
// event loop, the client receives byte-identical answers whether the loop
// passes the origin's answer through (light answers) or parses it into a
// fasthttp.Response; bad origin answers get the same 502 with a JSON error.
func TestLightAnswersMatchFasthttp(t *testing.T) {
	body := strings.Repeat("b", 2048)
	cases := []struct {
		name, method, answer string
		closeAfter           bool
		status               string // the status the client must get ("" a 502 with a JSON error)
		light                bool   // the answer takes the light path
	}{
		{"content-length", "GET", "HTTP/1.1 200 OK\r\nServer: o\r\nDate: Sun, 06 Dec 2026 10:00:00 GMT\r\nContent-Type: application/json\r\nContent-Length: 2048\r\n\r\n" + body, false, "200", true},
		{"edge fields", "GET", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Tag: product:1\r\nNovashop-Edge-Cache-Control: max-age=60\r\nVary: Accept\r\nContent-Length: 2\r\nCache-Control: public\r\nX-A: 1\r\nCache-Tag: category:2\r\nX-B: \"e\"\r\n\r\nok", false, "200", true},
		{"no server, no date", "GET", "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n", false, "404", true},
		{"origin 503", "GET", "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nbusy", false, "503", true},
		{"chunked", "GET", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", false, "200", false},
		{"close-delimited", "GET", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nto the end", true, "200", false},
		{"connection close", "GET", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", true, "200", false},
		{"hop fields named in Connection", "GET", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: X-Hop, Keep-Alive\r\nKeep-Alive: timeout=5\r\nX-Hop: 1\r\nX-Kept: 2\r\nContent-Length: 2\r\n\r\nok", false, "200", false},
		{"head", "HEAD", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2048\r\n\r\n", false, "200", false},
		{"204", "GET", "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n", false, "204", false},
		{"304", "GET", "HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\nContent-Length: 7\r\n\r\n", false, "304", false},
		{"set-cookie", "GET", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: a=b\r\nContent-Length: 2\r\n\r\nok", false, "200", false},
		{"origin request id", "GET", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Request-Id: other\r\nContent-Length: 2\r\n\r\nok", false, "200", false},
		{"lower-case names", "GET", "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nx-a:  1 \r\n\r\nok", false, "200", false},
		// fasthttp frames by Transfer-Encoding and drops Content-Length (RFC 9112 §6.3).
		{"both CL and TE", "GET", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", false, "200", false},
		{"two lengths", "GET", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nokk", false, "", false},
		{"bad length", "GET", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2x\r\n\r\nok", false, "", false},
		// fasthttp unfolds it (RFC 9112 §5.2 lets a recipient replace it by a space).
		{"obs-fold", "GET", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Fold: a\r\n b\r\nContent-Length: 2\r\n\r\nok", false, "200", false},
		{"huge header", "GET", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Big: " + strings.Repeat("v", 20<<10) + "\r\nContent-Length: 2\r\n\r\nok", false, "", false},
		{"bad status line", "GET", "HTTP/1.1 2x0 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok", false, "", false},
		{"short body", "GET", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nok", true, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			light, n := clientBytes(t, true, tc.method, tc.answer, tc.closeAfter)
			old, n0 := clientBytes(t, false, tc.method, tc.answer, tc.closeAfter)
			if n0 != 0 || (n == 1) != tc.light {
				t.Errorf("light answers written: %d with the light path on, %d with it off; want light %v", n, n0, tc.light)
			}
			if light != old {
				t.Fatalf("light answers:\n%q\nfasthttp's path:\n%q", light, old)
			}
			if tc.status != "" && !strings.HasPrefix(light, "HTTP/1.1 "+tc.status+" ") {
				t.Fatalf("status: %q", light)
			}
			if tc.status == "" && (!strings.HasPrefix(light, "HTTP/1.1 502 ") || !bytes.Contains([]byte(light), []byte(`{"error":`))) {
				t.Fatalf("a bad origin answer: want 502 with a JSON error, got %q", light)
			}
		})
	}
}

// Pipelined requests and an HTTP/1.0 client get the same bytes on both paths
// (the answers in order; HTTP/1.0's Connection field added after the origin's).
func TestLightAnswersPipelinedAndHTTP10(t *testing.T) {
	answer := "HTTP/1.1 200 OK\r\nServer: o\r\nContent-Type: application/json\r\nContent-Length: 2048\r\nX-Served-By: f1\r\nCache-Tag: product:1\r\n\r\n" + strings.Repeat("b", 2048)
	get := "GET /api/products/1/ HTTP/1.1\r\nHost: shop\r\nX-Request-Id: rid-1\r\n\r\n"
	for _, tc := range []struct {
		name, req string
		lights    uint64
	}{
		{"pipelined", get + get + "GET /api/products/2/ HTTP/1.1\r\nHost: shop\r\nX-Request-Id: rid-2\r\nConnection: close\r\n\r\n", 3},
		{"http/1.0", "GET /api/products/1/ HTTP/1.0\r\nHost: shop\r\nX-Request-Id: rid-1\r\n\r\n", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			light, n := clientSends(t, true, tc.req, answer, false)
			old, _ := clientSends(t, false, tc.req, answer, false)
			if light != old || n != tc.lights {
				t.Fatalf("%d light answers (want %d):\n%q\nfasthttp's path:\n%q", n, tc.lights, light, old)
			}
			if c := strings.Count(light, "HTTP/1.1 200 OK\r\n"); uint64(c) != tc.lights {
				t.Fatalf("%d answers: %q", c, light)
			}
		})
	}
}
