package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/novashop/edge/proxy/h1"
	"github.com/valyala/fasthttp"
)

// rawOrigin is an origin that records the exact bytes of each request it
// gets (split by the h1 framer) and answers each with 200 "ok".
type rawOrigin struct {
	addr string
	seenLog[string]
}

// seenLog keeps what a test origin saw, for the test to take.
type seenLog[T any] struct {
	mu   sync.Mutex
	seen []T
}

func (r *seenLog[T]) record(v T) {
	r.mu.Lock()
	r.seen = append(r.seen, v)
	r.mu.Unlock()
}

// take returns what was recorded since the last take.
func (r *seenLog[T]) take() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.seen
	r.seen = nil
	return s
}

func newRawOrigin(t testing.TB) *rawOrigin {
	t.Helper()
	o := &rawOrigin{}
	o.addr = serveRaw(t, o.serve)
	return o
}

func (o *rawOrigin) serve(c net.Conn) {
	// Preserve: the bytes are recorded as they came, codings included.
	f := h1.RequestFramer{Preserve: true}
	f.Limits = h1.Limits{MaxHeaderBytes: 1 << 20}
	var msg []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		b := buf[:n]
		for len(b) > 0 {
			k, done, ferr := f.Scan(b)
			if ferr != nil {
				o.record("UNFRAMED " + ferr.Error() + ": " + string(msg) + string(b))
				_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
				return
			}
			msg = append(msg, b[:k]...)
			b = b[k:]
			if done {
				o.record(string(msg[f.Skipped():]))
				msg = msg[:0]
				if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")); err != nil {
					return
				}
			}
		}
		if err != nil {
			if !errors.Is(err, net.ErrClosed) && len(msg) > 0 {
				o.record("CUT: " + string(msg))
			}
			return
		}
	}
}

// edgeAdded matches the field lines the edge adds to every forwarded request
// whose values change from run to run.
var edgeAdded = regexp.MustCompile(`(?m)^X-Request-Id: [0-9a-f-]+\r\n`)

// TestEdgeTransferEncodingIdentity: identity in Transfer-Encoding is a no-op
// coding (RFC 9112 §6.1, §7; gunicorn's valid/030 and
// rfc9112_smuggle_te_identity_chunked_01): "identity, chunked" and an
// identity line before a chunked one are taken as chunked; the origin gets
// the request framed as the edge forwards any chunked one, byte for byte,
// never identity. chunked must still be the last coding, Content-Length with
// it is still refused, and a coding with parameters still gets 501
// (other codings: TestEdgeTransferCodings). Both I/O cores
// (EDGE_TEST_IO=eventloop), body streamed (the default) and read whole.
func TestEdgeTransferEncodingIdentity(t *testing.T) {
	forBodyModes(t, testEdgeIdentity)
}

func testEdgeIdentity(t *testing.T, stream int) {
	o := newRawOrigin(t)
	cfg := testConfig(&origin{name: "raw", url: "http://" + o.addr})
	cfg.Health.Active = false
	cfg.Limits.StreamRequestBytes = stream
	e := startEdge(t, cfg, Options{})
	const (
		head = "POST /up?x=1 HTTP/1.1\r\nHost: shop\r\n"
		body = "\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n"
		get  = "GET /after HTTP/1.1\r\nHost: shop\r\n\r\n"
	)
	// What the origin gets of the chunked request, byte for byte (the edge
	// forwards a chunked body chunked when it streams it, with a length when
	// it reads it whole; chunk extensions are not passed on), with extra
	// after Host; then the GET after it.
	forwarded := func(extra string) []string {
		const added = "X-Request-Id: *\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n"
		post := "POST /up?x=1 HTTP/1.1\r\nHost: shop\r\n" + extra + added + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
		if stream == 0 {
			post = "POST /up?x=1 HTTP/1.1\r\nHost: shop\r\nContent-Type: application/octet-stream\r\nContent-Length: 11\r\n" + extra + added + "\r\nhello world"
		}
		return []string{post, "GET /after HTTP/1.1\r\nHost: shop\r\n" + added + "\r\n"}
	}
	getOnly := forwarded("")[1:]
	tests := []struct {
		name  string
		raw   string
		codes []int
		seen  []string
	}{
		{"chunked (the reference)", head + "Transfer-Encoding: chunked\r\n" + body + get, []int{200, 200}, forwarded("")},
		{"identity, chunked (gunicorn rfc9112_smuggle_te_identity_chunked_01)", head + "Transfer-Encoding: identity, chunked\r\n" + body + get, []int{200, 200}, forwarded("")},
		{"identity line then chunked line (gunicorn valid/030)", head + "Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n" + body + get, []int{200, 200}, forwarded("")},
		{"identity lines around another field, any case", head + "transfer-encoding: IDENTITY\r\nX-A: 1\r\nTransfer-Encoding: Identity,identity , chunked\r\n" + body + get, []int{200, 200}, forwarded("X-A: 1\r\n")},
		{"after a request", get + head + "Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n" + body + get, []int{200, 200, 200}, append(getOnly, forwarded("")...)},
		// Still refused, and nothing of them reaches the origin.
		{"chunked, identity (gunicorn invalid/chunked_06)", get + head + "Transfer-Encoding: chunked, identity\r\n" + body + get, []int{200, 400}, getOnly},
		{"chunked line then identity line", get + head + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n" + body + get, []int{200, 400}, getOnly},
		{"identity alone", get + head + "Transfer-Encoding: identity\r\nContent-Length: 0\r\n\r\n" + get, []int{200, 400}, getOnly},
		{"identity with Content-Length", get + head + "Content-Length: 30\r\nTransfer-Encoding: identity, chunked\r\n" + body + get, []int{200, 400}, getOnly},
		{"identity line with Content-Length", get + head + "Transfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc" + get, []int{200, 400}, getOnly},
		{"identity;q=1, chunked (a parameter)", get + head + "Transfer-Encoding: identity;q=1, chunked\r\n" + body + get, []int{200, 501}, getOnly},
		{"chunked twice around identity (gunicorn invalid/chunked_04)", get + head + "Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n" + body, []int{200, 400}, getOnly},
		{"Transfer-Encoding line over 128 bytes", get + head + "Transfer-Encoding: identity," + strings.Repeat(" ", 100) + "chunked\r\n" + body, []int{200, 400}, getOnly},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			codes, last := rawExchange(t, e.addr, tt.raw)
			if fmt.Sprint(codes) != fmt.Sprint(tt.codes) {
				t.Fatalf("statuses %v, want %v (%s)", codes, tt.codes, last.Body())
			}
			if code := codes[len(codes)-1]; code != 200 {
				wantJSONError(t, last, code)
			}
			got := o.take()
			for k := range got {
				got[k] = edgeAdded.ReplaceAllString(got[k], "X-Request-Id: *\r\n")
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.seen) {
				t.Fatalf("origin got %q\nwant       %q", got, tt.seen)
			}
		})
	}
}

// TestEdgeIdentityInParts: a request with identity lines whose body comes
// after its header section, in later writes: while the body is incomplete
// the event-loop core has fasthttp read a copy of the request so far without
// the identity line (to detach a streamed body, or wait for the rest), and
// the origin gets the chunked request without identity. Both cores, body
// streamed and read whole.
func TestEdgeIdentityInParts(t *testing.T) {
	forBodyModes(t, func(t *testing.T, stream int) {
		o := newRawOrigin(t)
		cfg := testConfig(&origin{name: "raw", url: "http://" + o.addr})
		cfg.Health.Active = false
		cfg.Limits.StreamRequestBytes = stream
		e := startEdge(t, cfg, Options{})
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		parts := []string{
			"POST /p HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: identity\r\nX-A: 1\r\nTransfer-Encoding: identity, chunked\r\n\r\n",
			"5\r\nhel", "lo\r\n0\r\n\r\n",
		}
		for _, p := range parts {
			if _, err := io.WriteString(c, p); err != nil {
				t.Fatal(err)
			}
			time.Sleep(30 * time.Millisecond)
		}
		var resp fasthttp.Response
		if err := resp.Read(br); err != nil || resp.StatusCode() != 200 {
			t.Fatalf("answer %d, %v: %s", resp.StatusCode(), err, resp.Body())
		}
		// Streamed, the body goes on in the chunks it came in.
		want := "Transfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"
		if stream == 0 {
			want = "\r\n\r\nhello"
		}
		got := o.take()
		if len(got) != 1 || strings.Contains(strings.ToLower(got[0]), "identity") || !strings.HasSuffix(got[0], want) {
			t.Fatalf("origin got %q, want it to end %q", got, want)
		}
	})
}
