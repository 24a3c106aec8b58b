package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/proxy/cache"
)

// rawReq is one request as a raw-bytes origin read it: the request-line's
// method and target, the Transfer-Encoding field lines' values joined with
// ", " (empty: none), the Content-Length value, and the body with chunked
// taken off (the bytes inside any other coding untouched).
type rawReq struct {
	method, target string
	te, cl         string
	body           []byte
}

// errRawRequest is a request the raw origin could not read.
var errRawRequest = errors.New("raw origin: malformed request")

// readRawRequest is a small strict reader of one HTTP/1.1 request: a
// request-line, field lines ended by CRLF, and a body framed by a
// Transfer-Encoding whose last coding is chunked (de-chunked, the trailer
// section read and dropped) or by a Content-Length. Unlike fasthttp's server
// (and Go's net/http) it takes any transfer coding before chunked, so a test
// can see exactly what the edge forwards.
func readRawRequest(br *bufio.Reader) (rawReq, error) {
	var r rawReq
	line, err := rawLine(br)
	if err != nil {
		return r, err
	}
	parts := strings.Split(line, " ")
	if len(parts) != 3 || !strings.HasPrefix(parts[2], "HTTP/1.") {
		return r, fmt.Errorf("%w: request-line %q", errRawRequest, line)
	}
	r.method, r.target = parts[0], parts[1]
	var tes []string
	for {
		line, err := rawLine(br)
		if err != nil {
			return r, err
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return r, fmt.Errorf("%w: field line %q", errRawRequest, line)
		}
		value = strings.Trim(value, " \t")
		switch strings.ToLower(name) {
		case "transfer-encoding":
			tes = append(tes, value)
		case "content-length":
			if r.cl != "" {
				return r, fmt.Errorf("%w: Content-Length twice", errRawRequest)
			}
			r.cl = value
		}
	}
	r.te = strings.Join(tes, ", ")
	switch {
	case r.te != "" && r.cl != "":
		return r, fmt.Errorf("%w: Content-Length and Transfer-Encoding", errRawRequest)
	case r.te != "":
		codings := strings.Split(r.te, ",")
		if strings.ToLower(strings.TrimSpace(codings[len(codings)-1])) != "chunked" {
			return r, fmt.Errorf("%w: Transfer-Encoding %q does not end in chunked", errRawRequest, r.te)
		}
		for {
			line, err := rawLine(br)
			if err != nil {
				return r, err
			}
			hex, _, _ := strings.Cut(line, ";")
			size, err := strconv.ParseUint(hex, 16, 63)
			if err != nil {
				return r, fmt.Errorf("%w: chunk size line %q", errRawRequest, line)
			}
			if size == 0 {
				break
			}
			chunk := make([]byte, size+2)
			if _, err := io.ReadFull(br, chunk); err != nil {
				return r, err
			}
			if string(chunk[size:]) != "\r\n" {
				return r, fmt.Errorf("%w: chunk data longer than its size", errRawRequest)
			}
			r.body = append(r.body, chunk[:size]...)
		}
		for {
			line, err := rawLine(br)
			if err != nil {
				return r, err
			}
			if line == "" {
				break
			}
		}
	case r.cl != "":
		n, err := strconv.ParseUint(r.cl, 10, 31)
		if err != nil {
			return r, fmt.Errorf("%w: Content-Length %q", errRawRequest, r.cl)
		}
		r.body = make([]byte, n)
		if _, err := io.ReadFull(br, r.body); err != nil {
			return r, err
		}
	}
	return r, nil
}

// rawLine reads a line ended by CRLF (a bare LF or CR is an error).
func rawLine(br *bufio.Reader) (string, error) {
	s, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	if !strings.HasSuffix(s, "\r\n") || strings.ContainsAny(s[:len(s)-2], "\r\n") {
		return "", fmt.Errorf("%w: line %q", errRawRequest, s)
	}
	return s[:len(s)-2], nil
}

// rawHTTPOrigin serves requests read with readRawRequest: answer makes the
// status and body of each one (nil: 200 "ok"), and every request but health
// checks (/healthz) is recorded, a malformed one with method "UNPARSED"
// (answered 502 and closed). An HTTP/1.0 origin (http10) answers in HTTP/1.0
// and closes.
type rawHTTPOrigin struct {
	addr   string
	answer func(r rawReq) (int, string)
	http10 bool
	// cacheControl is every answer's Cache-Control ("" means no-store).
	cacheControl string
	seenLog[rawReq]
}

func newRawHTTPOrigin(t testing.TB, answer func(r rawReq) (int, string)) *rawHTTPOrigin {
	t.Helper()
	o := &rawHTTPOrigin{answer: answer}
	o.addr = serveRaw(t, o.serve)
	return o
}

func (o *rawHTTPOrigin) serve(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		// Closed or reset between requests (as HAProxy resets idle
		// connections): no request.
		if _, err := br.Peek(1); err != nil {
			return
		}
		r, err := readRawRequest(br)
		if err != nil {
			o.record(rawReq{method: "UNPARSED", body: []byte(err.Error())})
			_, _ = io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			return
		}
		code, body := 200, "ok"
		if path, _, _ := strings.Cut(r.target, "?"); path == "/healthz" {
			body = ""
		} else {
			o.record(r)
			if o.answer != nil {
				code, body = o.answer(r)
			}
		}
		proto, conn := "HTTP/1.1", ""
		if o.http10 {
			proto, conn = "HTTP/1.0", "Connection: close\r\n"
		}
		cc := o.cacheControl
		if cc == "" {
			cc = "no-store"
		}
		if _, err := fmt.Fprintf(c, "%s %d %s\r\nCache-Control: %s\r\nContent-Length: %d\r\n%s\r\n%s", proto, code, fasthttp.StatusMessage(code), cc, len(body), conn, body); err != nil || o.http10 {
			return
		}
	}
}

// gzipped is s in the gzip coding.
func gzipped(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := io.WriteString(w, s); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// chunkedEvery frames b as chunks of n bytes (the last one shorter), with the
// last chunk and an empty trailer section.
func chunkedEvery(b []byte, n int) string {
	var s strings.Builder
	for len(b) > 0 {
		k := min(n, len(b))
		fmt.Fprintf(&s, "%x\r\n%s\r\n", k, b[:k])
		b = b[k:]
	}
	return s.String() + "0\r\n\r\n"
}

// gunzipOrigin answers 200 with the request's body decoded when its
// Transfer-Encoding is exactly "gzip, chunked", 422 with why for any other
// request with a body (200 "ok" without one): an
// origin that checks the edge forwarded the coding and its bytes untouched.
func gunzipOrigin(r rawReq) (int, string) {
	if r.te == "" && len(r.body) == 0 {
		return 200, "ok" // a request without a body
	}
	if r.te != "gzip, chunked" {
		return 422, "Transfer-Encoding " + r.te
	}
	if r.cl != "" {
		return 422, "Content-Length " + r.cl
	}
	zr, err := gzip.NewReader(bytes.NewReader(r.body))
	if err != nil {
		return 422, err.Error()
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		return 422, err.Error()
	}
	return 200, string(plain)
}

// TestEdgeTransferCodings: a request whose Transfer-Encoding is a list of
// codings ending in chunked (RFC 9112 §6.1, §7: a proxy need not decode a
// transfer coding to forward it while chunked is final; gunicorn's
// valid/025_line and rfc9112_smuggle_gzip_chunked_01) reaches the origin with
// "Transfer-Encoding: <codings>, chunked", normalised, no Content-Length, and
// the body's bytes in their coding untouched: a real gzip body, decoded by
// the origin, comes back as sent. The pipelined request after it is framed
// right; chunked not last, a coding that is no token, Content-Length with
// it, and HTTP/1.0 stay refused, with nothing reaching the origin; a coding
// with parameters stays 501. Both I/O cores (EDGE_TEST_IO=eventloop), body
// streamed (the default) and read whole.
func TestEdgeTransferCodings(t *testing.T) {
	forBodyModes(t, testEdgeCodings)
}

func testEdgeCodings(t *testing.T, stream int) {
	o := newRawHTTPOrigin(t, gunzipOrigin)
	cfg := testConfig(&origin{name: "raw", url: "http://" + o.addr})
	cfg.Health.Active = false
	cfg.Limits.StreamRequestBytes = stream
	e := startEdge(t, cfg, Options{})
	const (
		head = "POST /up?x=1 HTTP/1.1\r\nHost: shop\r\n"
		get  = "GET /after HTTP/1.1\r\nHost: shop\r\n\r\n"
		text = "Novashop: gzip coded, forwarded coded, never decoded by the edge.\n"
	)
	zipped := gzipped(t, strings.Repeat(text, 50))
	body := "\r\n" + chunkedEvery(zipped, 100)
	type seen struct {
		method, target, te string
		body               []byte
	}
	after := seen{"GET", "/after", "", nil}
	coded := func(te string) seen { return seen{"POST", "/up?x=1", te, zipped} }
	tests := []struct {
		name  string
		raw   string
		codes []int
		seen  []seen
	}{
		{"gzip, chunked", head + "Transfer-Encoding: gzip, chunked\r\n" + body + get, []int{200, 200}, []seen{coded("gzip, chunked"), after}},
		{"gzip,chunked (gunicorn valid/025_line)", head + "Transfer-Encoding: gzip,chunked\r\n" + body + get, []int{200, 200}, []seen{coded("gzip, chunked"), after}},
		{"any case, identity left out", head + "Transfer-Encoding: IDENTITY, GZip ,\tchunked\r\n" + body + get, []int{200, 200}, []seen{coded("gzip, chunked"), after}},
		{"on two lines around another field", head + "Transfer-Encoding: gzip\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n" + body + get, []int{200, 200}, []seen{coded("gzip, chunked"), after}},
		{"after a request", get + head + "Transfer-Encoding: gzip, chunked\r\n" + body + get, []int{200, 200, 200}, []seen{after, coded("gzip, chunked"), after}},
		// Refused, and nothing of them reaches the origin.
		{"chunked, gzip", get + head + "Transfer-Encoding: chunked, gzip\r\n" + body + get, []int{200, 400}, []seen{after}},
		{"gzip alone", get + head + "Transfer-Encoding: gzip\r\n\r\n" + get, []int{200, 400}, []seen{after}},
		{"not a token", get + head + "Transfer-Encoding: g(zip), chunked\r\n" + body + get, []int{200, 400}, []seen{after}},
		{"with Content-Length", get + head + "Content-Length: 5\r\nTransfer-Encoding: gzip, chunked\r\n" + body + get, []int{200, 400}, []seen{after}},
		{"in HTTP/1.0", get + "POST /up HTTP/1.0\r\nTransfer-Encoding: gzip, chunked\r\n" + body, []int{200, 400}, []seen{after}},
		{"with a parameter", get + head + "Transfer-Encoding: gzip;q=1, chunked\r\n" + body + get, []int{200, 501}, []seen{after}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			codes, last := rawExchange(t, e.addr, tt.raw)
			if fmt.Sprint(codes) != fmt.Sprint(tt.codes) {
				t.Fatalf("statuses %v, want %v (%s)", codes, tt.codes, last.Body())
			}
			if code := codes[len(codes)-1]; code != 200 {
				wantJSONError(t, last, code)
			} else if strings.Contains(tt.raw[len(tt.raw)-len(get)-len(body):], "gzip") && string(last.Body()) != "ok" {
				t.Fatalf("last answer %q", last.Body())
			}
			got := o.take()
			if len(got) != len(tt.seen) {
				t.Fatalf("origin got %d requests, want %d: %+v", len(got), len(tt.seen), got)
			}
			for i, w := range tt.seen {
				g := got[i]
				if g.method != w.method || g.target != w.target || g.te != w.te || !bytes.Equal(g.body, w.body) || g.cl != "" && w.te != "" {
					t.Fatalf("origin got %s %s TE %q CL %q, %d body bytes; want %s %s TE %q, %d", g.method, g.target, g.te, g.cl, len(g.body), w.method, w.target, w.te, len(w.body))
				}
			}
		})
	}
	// The origin decoded the body: the client gets the text back.
	codes, last := rawExchange(t, e.addr, head+"Transfer-Encoding: gzip, chunked\r\nConnection: close\r\n"+body)
	if fmt.Sprint(codes) != "[200]" || string(last.Body()) != strings.Repeat(text, 50) {
		t.Fatalf("statuses %v, body %q", codes, last.Body())
	}
	o.take()
}

// TestEdgeTransferCodingsInParts: the coded request's header section and
// body in separate writes (the event-loop core frames the bytes again on
// each read: the codings must survive that), then split at every byte of a
// shorter one: the origin still gets "gzip, chunked" and the body as sent.
func TestEdgeTransferCodingsInParts(t *testing.T) {
	forBodyModes(t, func(t *testing.T, stream int) {
		o := newRawHTTPOrigin(t, gunzipOrigin)
		cfg := testConfig(&origin{name: "raw", url: "http://" + o.addr})
		cfg.Health.Active = false
		cfg.Limits.StreamRequestBytes = stream
		e := startEdge(t, cfg, Options{})
		zipped := gzipped(t, "hello, coded world")
		req := "POST /p HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" + chunkedEvery(zipped, 7) +
			"GET /next HTTP/1.1\r\nHost: shop\r\n\r\n"
		splits := [][]int{{strings.Index(req, "\r\n\r\n") + 4}}
		for i := 1; i < len(req); i += 3 {
			splits = append(splits, []int{i})
		}
		splits = append(splits, nil) // byte by byte
		for _, split := range splits {
			var parts []string
			if split == nil {
				for i := range len(req) {
					parts = append(parts, req[i:i+1])
				}
			} else {
				parts = []string{req[:split[0]], req[split[0]:]}
			}
			c, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			for _, p := range parts {
				if _, err := io.WriteString(c, p); err != nil {
					t.Fatal(err)
				}
				if split != nil {
					time.Sleep(5 * time.Millisecond)
				}
			}
			br := bufio.NewReader(c)
			for k, want := range []string{"hello, coded world", "ok"} {
				var resp fasthttp.Response
				if err := resp.Read(br); err != nil || resp.StatusCode() != 200 || string(resp.Body()) != want {
					t.Fatalf("split %v, answer %d: %d %q, %v", split, k, resp.StatusCode(), resp.Body(), err)
				}
			}
			c.Close()
			got := o.take()
			if len(got) != 2 || got[0].te != "gzip, chunked" || !bytes.Equal(got[0].body, zipped) || got[1].target != "/next" || got[1].te != "" {
				t.Fatalf("split %v: origin got %+v", split, got)
			}
		}
	})
}

// TestEdgeTransferCodingsOrigin: what the origin says passes through: its 501
// to a coding it does not take (the edge does not retry it elsewhere: the
// body was sent), and to an origin that answered in HTTP/1.0 no coded
// request is sent at all (RFC 9112 §6.1), 501 from the edge.
func TestEdgeTransferCodingsOrigin(t *testing.T) {
	const req = "POST /p HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: br, chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
	t.Run("origin answers 501", func(t *testing.T) {
		refuse := newRawHTTPOrigin(t, func(r rawReq) (int, string) { return 501, "no br here" })
		other := newRawHTTPOrigin(t, nil)
		cfg := testConfig(&origin{name: "refuse", url: "http://" + refuse.addr}, &origin{name: "other", url: "http://" + other.addr})
		cfg.Health.Active = false
		cfg.Balancer.Policy = "round-robin"
		e := startEdge(t, cfg, Options{})
		for range 4 {
			codes, last := rawExchange(t, e.addr, req)
			switch {
			case fmt.Sprint(codes) == "[501]" && string(last.Body()) == "no br here":
			case fmt.Sprint(codes) == "[200]" && string(last.Body()) == "ok":
			default:
				t.Fatalf("statuses %v: %s", codes, last.Body())
			}
		}
		a, b := refuse.take(), other.take()
		if len(a)+len(b) != 4 || len(a) == 0 || len(b) == 0 {
			t.Fatalf("origins got %d and %d requests, want 4 in all, spread", len(a), len(b))
		}
		for _, r := range append(a, b...) {
			if r.te != "br, chunked" || string(r.body) != "hello" {
				t.Fatalf("origin got %+v", r)
			}
		}
	})
	t.Run("HTTP/1.0 origin", func(t *testing.T) {
		o := newRawHTTPOrigin(t, nil)
		o.http10 = true
		cfg := testConfig(&origin{name: "old", url: "http://" + o.addr})
		cfg.Health.Active = false
		e := startEdge(t, cfg, Options{})
		// The edge learns the version from an answer.
		if codes, _ := rawExchange(t, e.addr, "POST /learn HTTP/1.1\r\nHost: shop\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"); fmt.Sprint(codes) != "[200]" {
			t.Fatalf("statuses %v", codes)
		}
		o.take()
		codes, last := rawExchange(t, e.addr, req)
		if fmt.Sprint(codes) != "[501]" {
			t.Fatalf("statuses %v: %s", codes, last.Body())
		}
		wantJSONError(t, last, 501)
		if got := o.take(); len(got) != 0 {
			t.Fatalf("the HTTP/1.0 origin got %+v", got)
		}
	})
}

// TestEdgeTransferCodingsBypassCache: with the cache on, a GET carrying a
// coded body is neither answered from the cache nor stored: each one reaches
// the origin with its coding, while the same GET without a body is stored
// and then served as a hit.
func TestEdgeTransferCodingsBypassCache(t *testing.T) {
	o := newRawHTTPOrigin(t, func(r rawReq) (int, string) { return 200, "te=" + r.te + " body=" + string(r.body) })
	o.cacheControl = "public, max-age=600"
	cfg := testConfig(&origin{name: "raw", url: "http://" + o.addr})
	cfg.Health.Active = false
	c, err := cache.New(cache.Config{RedisURL: testenv.Redis(t), RedisTimeout: testRedisTimeout, Namespace: fmt.Sprintf("tecodings-%d:", time.Now().UnixNano())}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	e := startEdge(t, cfg, Options{Cache: c})
	const (
		plain = "GET /page HTTP/1.1\r\nHost: shop\r\n\r\n"
		coded = "GET /page HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: br, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
	)
	// The plain GET is stored: the second one is a hit.
	if codes, r := rawExchange(t, e.addr, plain); fmt.Sprint(codes) != "[200]" || string(r.Body()) != "te= body=" {
		t.Fatalf("plain GET: %v %s", codes, r.Body())
	}
	waitUntil(t, "the plain GET served from the cache", 5*time.Second, func() bool {
		_, r := rawExchange(t, e.addr, plain)
		return strings.Contains(string(r.Header.Peek(cache.HeaderCacheStatus)), "hit")
	})
	o.take()
	for i := range 2 {
		codes, r := rawExchange(t, e.addr, coded)
		if fmt.Sprint(codes) != "[200]" || string(r.Body()) != "te=br, chunked body=hello" {
			t.Fatalf("coded GET %d: %v %s (Cache-Status %q)", i, codes, r.Body(), r.Header.Peek(cache.HeaderCacheStatus))
		}
	}
	if got := o.take(); len(got) != 2 {
		t.Fatalf("the origin got %d coded GETs, want both", len(got))
	}
	// The coded GETs stored nothing over the plain one.
	if _, r := rawExchange(t, e.addr, plain); string(r.Body()) != "te= body=" || !strings.Contains(string(r.Header.Peek(cache.HeaderCacheStatus)), "hit") {
		t.Fatalf("plain GET after the coded ones: %s (Cache-Status %q)", r.Body(), r.Header.Peek(cache.HeaderCacheStatus))
	}
}
