package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/novashop/edge/proxy/config"
	"github.com/valyala/fasthttp"
)

// recorder is an origin that records every request it gets, in order.
type recorder struct {
	*origin
	seenLog[string]
	// leaks: requests in which the origin found droppedMarker.
	leaks seenLog[string]
}

// droppedMarker is the value tests give trailer fields the edge discards.
const droppedMarker = "dropped-trailer-field"

func newRecorder(t testing.TB) *recorder {
	r := &recorder{}
	r.origin = newOrigin(t, "rec", func(ctx *fasthttp.RequestCtx) {
		r.record(seenRequest(string(ctx.Method()), string(ctx.RequestURI()), string(ctx.Request.Body())))
		if all := ctx.Request.Header.String() + string(ctx.Request.Header.TrailerHeader()) + string(ctx.Request.Body()); strings.Contains(all, droppedMarker) {
			r.leaks.record(all)
		}
		ctx.SetBodyString("ok")
	})
	return r
}

func seenRequest(method, target, body string) string {
	return fmt.Sprintf("%s %s %q", method, target, body)
}

// takeLeaks returns and forgets the requests that carried droppedMarker.
func (r *recorder) takeLeaks() []string { return r.leaks.take() }

// rawExchange writes raw to the edge on one connection, closes its write side
// and reads answers until the edge closes. It returns the statuses and the
// last answer.
func rawExchange(t testing.TB, addr, raw string) ([]int, *fasthttp.Response) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	br := bufio.NewReader(c)
	var codes []int
	var last *fasthttp.Response
	for {
		r := &fasthttp.Response{}
		if err := r.Read(br); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, fasthttp.ErrConnectionClosed) || strings.Contains(err.Error(), "closed") {
				return codes, last
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("no answer within 5 s after %v", codes)
			}
			return codes, last
		}
		codes = append(codes, r.StatusCode())
		last = r
		if r.ConnectionClose() {
			return codes, last
		}
	}
}

// TestEdgeFraming sends raw bytes to the edge in front of a recording origin
// (RFC 9112): each valid request reaches the origin once, in order, and the
// first invalid one gets the framer's status, closes the connection, and never
// reaches the origin.
func TestEdgeFraming(t *testing.T) {
	o := newRecorder(t)
	e := startEdge(t, testConfig(o.origin), Options{})
	const (
		get  = "GET /a HTTP/1.1\r\nHost: shop\r\n\r\n"
		get2 = "GET /b HTTP/1.1\r\nHost: shop\r\n\r\n"
		te   = "POST /c HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n"
	)
	seenGet, seenGet2 := seenRequest("GET", "/a", ""), seenRequest("GET", "/b", "")
	tests := []struct {
		name  string
		raw   string
		codes []int
		seen  []string
	}{
		{"§2.2 empty line before a pipelined request", get + "\r\n" + get2, []int{200, 200}, []string{seenGet, seenGet2}},
		{"§2.2 empty lines before the first request", "\r\n\r\n" + get, []int{200}, []string{seenGet}},
		{"pipeline", get + "POST /p HTTP/1.1\r\nHost: shop\r\nContent-Length: 3\r\n\r\nabc" + get2, []int{200, 200, 200},
			[]string{seenGet, seenRequest("POST", "/p", "abc"), seenGet2}},
		{"chunked body", te + "3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n", []int{200}, []string{seenRequest("POST", "/c", "abcde")}},
		{"RFC 9110 §9.1 unknown method token", "BREW /pot HTTP/1.1\r\nHost: shop\r\n\r\n", []int{200}, []string{seenRequest("BREW", "/pot", "")}},
		{"§7.1.1 BWS after a chunk extension's semicolon", te + "5; some; parameters=stuff\r\nhello\r\n0\r\n\r\n", []int{200}, []string{seenRequest("POST", "/c", "hello")}},
		{"RFC 9110 §9.3.6 CONNECT host:port", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", []int{200}, []string{seenRequest("CONNECT", "example.com:443", "")}},
		{"§3.2.2 absolute-form with a broken authority (gunicorn invalid/016)", "PUT s://]ufd/: HTTP/1.1\r\nHost: shop\r\n\r\n", []int{400}, nil},
		{"§3.2.2 absolute-form", "GET http://shop/a?b=1 HTTP/1.1\r\nHost: shop\r\n\r\n", []int{200}, []string{seenRequest("GET", "/a?b=1", "")}},
		{"§3.2.3 CONNECT without a port", "CONNECT domain.example HTTP/1.1\r\nHost: domain.example\r\n\r\n", []int{400}, nil},
		{"RFC 9110 §9.3.6 CONNECT with content", "CONNECT host:25 HTTP/1.1\r\nHost: host:25\r\nContent-Length: 3\r\n\r\nBOO", []int{400}, nil},
		{"§7.1 whitespace after chunk size", te + "3 \r\nabc\r\n0\r\n\r\n", []int{400}, nil},
		{"§7.1.1 chunk extension without name", te + "3;\r\nabc\r\n0\r\n\r\n", []int{400}, nil},
		{"§6.1 Content-Length and Transfer-Encoding", "POST /c HTTP/1.1\r\nHost: shop\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", []int{400}, nil},
		{"§3.2 non-ASCII in request-target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: shop\r\n\r\n", []int{400}, nil},
		{"§2.2 bare LF in header block", "POST /c HTTP/1.1\r\nHost: shop\r\nDummy: x\nContent-Length: 3\r\n\r\nabc", []int{400}, nil},
		{"§5.2 obs-fold after Host", "POST /c HTTP/1.1\r\nHost: shop\r\n Content-Length: 3\r\n\r\nabc", []int{400}, nil},
		{"§5.2 obs-fold after another field", "POST /c HTTP/1.1\r\nHost: shop\r\nFoo: bar\r\n Content-Length: 3\r\n\r\nGET /x HTTP/1.1\r\nHost: shop\r\n\r\n", []int{400}, nil},
		{"§3 bare LF request line", "GET /a HTTP/1.1\nHost: shop\r\n\r\n", []int{400}, nil},
		{"§3.1 invalid method character", "GE(T /a HTTP/1.1\r\nHost: shop\r\n\r\n", []int{400}, nil},
		{"§3.2 missing Host", "GET /a HTTP/1.1\r\n\r\n", []int{400}, nil},
		{"§6.3 duplicate Content-Length", "POST /c HTTP/1.1\r\nHost: shop\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", []int{400}, nil},
		{"§6.3 Transfer-Encoding not ending in chunked", "POST /c HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked, identity\r\n\r\n", []int{400}, nil},
		// A coding without parameters is forwarded coded (TestEdgeTransferCodings).
		{"§6.1 transfer coding with a parameter", "POST /c HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: gzip;level=9, chunked\r\n\r\n0\r\n\r\n", []int{501}, nil},
		{"Content_Length imitating Content-Length (CGI-style origins)", "POST /c HTTP/1.1\r\nHost: shop\r\nContent_Length: 3\r\n\r\nabc", []int{400}, nil},
		{"Transfer_Encoding imitating Transfer-Encoding", "POST /c HTTP/1.1\r\nHost: shop\r\nTransfer_Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", []int{400}, nil},
		{"RFC 9110 §5.3 Content-Type twice", "POST /c HTTP/1.1\r\nHost: shop\r\nContent-Type: a/b\r\nContent-Type: c/d\r\nContent-Length: 3\r\n\r\nabc", []int{400}, nil},
		{"§2.3 HTTP/2.0 request-line", "GET /a HTTP/2.0\r\nHost: shop\r\n\r\n", []int{505}, nil},
		{"valid pipelined requests answered before the 400", get + get2 + "GET /a HTTP/1.1\r\nHost: shop\r\nX: 1\r\n\tfolded\r\n\r\n" + get, []int{200, 200, 400}, []string{seenGet, seenGet2}},
		{"400 after an empty line", get + "\r\n GET /a HTTP/1.1\r\nHost: shop\r\n\r\n", []int{200, 400}, []string{seenGet}},
		{"400 in a chunked body after valid chunks", get + te + "3\r\nabc\r\nzz\r\n0\r\n\r\n", []int{200, 400}, []string{seenGet}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			codes, last := rawExchange(t, e.addr, tt.raw)
			if fmt.Sprint(codes) != fmt.Sprint(tt.codes) {
				t.Fatalf("statuses %v, want %v", codes, tt.codes)
			}
			if got := o.take(); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.seen) {
				t.Fatalf("origin saw %q, want %q", got, tt.seen)
			}
			if code := tt.codes[len(tt.codes)-1]; code != 200 {
				wantJSONError(t, last, code)
				if !last.ConnectionClose() {
					t.Fatalf("the %d does not close the connection", code)
				}
			}
		})
	}
}

// TestEdgeFramingLineLimits checks limits.max_request_line_bytes (414),
// limits.max_field_line_bytes (431, header and trailer fields) and
// limits.max_header_fields (431) at their boundary on a real edge (either
// core): exactly at the limit reaches the origin, one byte (or field) more is
// refused with a JSON error and never forwarded; with the defaults too.
func TestEdgeFramingLineLimits(t *testing.T) {
	// The origin takes 64 KiB of header (fasthttp's default 4 KiB would
	// refuse the default limits' longest lines itself).
	o, rec := startGunicornOrigin(t)
	cfg := testConfig(o)
	cfg.Limits.MaxURIBytes = 50
	cfg.Limits.MaxRequestLineBytes = 64
	cfg.Limits.MaxFieldLineBytes = 32
	cfg.Limits.MaxHeaderFields = 4
	small := startEdge(t, cfg, Options{})
	def := startEdge(t, testConfig(o), Options{})
	// line(n) is a request-line of n bytes (CRLF not counted) for a POST,
	// whose target, target(n), is n-14 bytes.
	target := func(n int) string { return "/" + strings.Repeat("t", n-15) }
	line := func(n int) string { return "POST " + target(n) + " HTTP/1.1" }
	field := func(n int) string { return "X: " + strings.Repeat("v", n-3) }
	const (
		host = "Host: shop\r\n"
		get  = "GET /a HTTP/1.1\r\n" + host + "\r\n"
		te   = "POST /c HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
	)
	seenGet, seenTE := gunicornReq{"GET", "/a", "", "", ""}, gunicornReq{"POST", "/c", "", "abc", ""}
	d := h1DefaultsForTest()
	tests := []struct {
		name string
		e    *edge
		raw  string
		code int    // the last answer's
		msg  string // its error
		seen []gunicornReq
	}{
		{"request-line at the limit", small, line(64) + "\r\n" + host + "\r\n", 200, "", []gunicornReq{{"POST", target(64), "", "", ""}}},
		{"request-line one byte over", small, line(65) + "\r\n" + host + "\r\n", 414, "request line too long", nil},
		{"request-line over after a request", small, get + line(65) + "\r\n" + host + "\r\n", 414, "request line too long", []gunicornReq{seenGet}},
		{"target over max_uri_bytes, line within", small, "GET " + target(65) + " HTTP/1.1\r\n" + host + "\r\n", 414, "request URI too long", nil},
		{"field line at the limit", small, "GET /a HTTP/1.1\r\n" + host + field(32) + "\r\n\r\n", 200, "", []gunicornReq{seenGet}},
		{"field line one byte over", small, "GET /a HTTP/1.1\r\n" + host + field(33) + "\r\n\r\n", 431, "request header field too large", nil},
		{"trailer field at the limit", small, te + field(32) + "\r\n\r\n", 200, "", []gunicornReq{seenTE}},
		{"trailer field one byte over", small, get + te + field(33) + "\r\n\r\n", 431, "request header field too large", []gunicornReq{seenGet}},
		{"header fields at the limit", small, "GET /a HTTP/1.1\r\n" + host + strings.Repeat("X: 1\r\n", 3) + "\r\n", 200, "", []gunicornReq{seenGet}},
		{"one header field over", small, "GET /a HTTP/1.1\r\n" + host + strings.Repeat("X: 1\r\n", 4) + "\r\n", 431, "too many header fields", nil},
		{"default request-line at the limit", def, line(d.line) + "\r\n" + host + "\r\n", 414, "request URI too long", nil},
		{"default request-line one byte over", def, line(d.line+1) + "\r\n" + host + "\r\n", 414, "request line too long", nil},
		{"default field line at the limit", def, "GET /a HTTP/1.1\r\n" + host + field(d.field) + "\r\n\r\n", 200, "", []gunicornReq{seenGet}},
		{"default field line one byte over", def, "GET /a HTTP/1.1\r\n" + host + field(d.field+1) + "\r\n\r\n", 431, "request header field too large", nil},
		{"default header fields at the limit", def, "GET /a HTTP/1.1\r\n" + host + strings.Repeat("X: 1\r\n", d.fields-1) + "\r\n", 200, "", []gunicornReq{seenGet}},
		{"default header fields one over", def, "GET /a HTTP/1.1\r\n" + host + strings.Repeat("X: 1\r\n", d.fields) + "\r\n", 431, "too many header fields", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			codes, last := rawExchange(t, tt.e.addr, tt.raw)
			if len(codes) == 0 || codes[len(codes)-1] != tt.code {
				t.Fatalf("statuses %v, want the last %d", codes, tt.code)
			}
			got := rec.take()
			for k := range got {
				got[k].te = "" // how the edge frames a chunked body is not the point here
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.seen) {
				t.Fatalf("origin saw %.200q, want %.200q", got, tt.seen)
			}
			if tt.code != 200 {
				wantJSONError(t, last, tt.code)
				if !strings.Contains(string(last.Body()), tt.msg) {
					t.Fatalf("error %s, want %q", last.Body(), tt.msg)
				}
			}
		})
	}
}

// TestEdgeObsFold checks limits.obs_fold: unfold on a real edge (either core):
// a folded field reaches the origin as one value with SP where the fold was,
// also when the fold's CRLF and its whitespace arrive in different reads;
// folds the framer cannot unfold safely still get 400.
func TestEdgeObsFold(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	o := newOrigin(t, "fold", func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s %q %q", ctx.Method(), ctx.RequestURI(), ctx.Request.Header.Peek("X-Fold"), ctx.Request.Body()))
		mu.Unlock()
		ctx.SetBodyString("ok")
	})
	take := func() []string {
		mu.Lock()
		defer mu.Unlock()
		s := seen
		seen = nil
		return s
	}
	cfg := testConfig(o)
	cfg.Limits.ObsFold = "unfold"
	e := startEdge(t, cfg, Options{})
	const (
		head = "POST /f HTTP/1.1\r\nHost: shop\r\n"
		get  = "GET /a HTTP/1.1\r\nHost: shop\r\n\r\n"
	)
	tests := []struct {
		name  string
		parts []string // written one after the other, 50 ms apart
		codes []int
		seen  []string
	}{
		{"fold", []string{head + "X-Fold: a\r\n b\r\nContent-Length: 3\r\n\r\nabc"}, []int{200}, []string{`POST /f "a   b" "abc"`}},
		{"fold split after the CRLF", []string{head + "X-Fold: a\r\n", " b\r\nContent-Length: 3\r\n\r\nabc"}, []int{200}, []string{`POST /f "a   b" "abc"`}},
		{"fold split after the CR", []string{head + "X-Fold: a\r", "\n\tb\r\nContent-Length: 3\r\n\r\nabc"}, []int{200}, []string{`POST /f "a  \tb" "abc"`}},
		{"no fold, split after a field line", []string{head + "X-Fold: a\r\n", "Content-Length: 3\r\n\r\nabc"}, []int{200}, []string{`POST /f "a" "abc"`}},
		{"folded request then a pipelined one", []string{head + "X-Fold: a\r\n b\r\nContent-Length: 0\r\n\r\n" + get}, []int{200, 200}, []string{`POST /f "a   b" ""`, `GET /a "" ""`}},
		{"fold of Content-Length", []string{head + "Content-Length: 3\r\n 4\r\n\r\nabc"}, []int{400}, nil},
		{"whitespace before the first field", []string{"GET /a HTTP/1.1\r\n X-Fold: a\r\nHost: shop\r\n\r\n"}, []int{400}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			for i, p := range tt.parts {
				if i > 0 {
					time.Sleep(50 * time.Millisecond)
				}
				if _, err := io.WriteString(c, p); err != nil {
					t.Fatal(err)
				}
			}
			_ = c.(*net.TCPConn).CloseWrite()
			br := bufio.NewReader(c)
			var codes []int
			var last *fasthttp.Response
			for range tt.codes {
				r := &fasthttp.Response{}
				if err := r.Read(br); err != nil {
					t.Fatalf("after %v: %v", codes, err)
				}
				codes, last = append(codes, r.StatusCode()), r
			}
			if fmt.Sprint(codes) != fmt.Sprint(tt.codes) {
				t.Fatalf("statuses %v, want %v", codes, tt.codes)
			}
			if code := codes[len(codes)-1]; code != 200 {
				wantJSONError(t, last, code)
				if !strings.Contains(string(last.Body()), "obsolete line folding") {
					t.Fatalf("error %s", last.Body())
				}
			}
			if got := take(); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.seen) {
				t.Fatalf("origin saw %q, want %q", got, tt.seen)
			}
		})
	}
}

// h1DefaultsForTest is the default limits.max_request_line_bytes,
// max_field_line_bytes and max_header_fields.
func h1DefaultsForTest() (d struct{ line, field, fields int }) {
	l := config.Default().Limits
	d.line, d.field, d.fields = l.MaxRequestLineBytes, l.MaxFieldLineBytes, l.MaxHeaderFields
	return d
}

// TestEdgeEmptyLineBetweenReads is the §2.2 case as a client sends it: the
// empty line after a request arrives on its own, after the answer, and the
// next request follows on the same connection.
func TestEdgeEmptyLineBetweenReads(t *testing.T) {
	o := newRecorder(t)
	e := startEdge(t, testConfig(o.origin), Options{})
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	for i, raw := range []string{"GET /a HTTP/1.1\r\nHost: shop\r\n\r\n\r\n", "GET /b HTTP/1.1\r\nHost: shop\r\n\r\n"} {
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
		var r fasthttp.Response
		if err := r.Read(br); err != nil || r.StatusCode() != 200 {
			t.Fatalf("request %d: %v, status %d", i+1, err, r.StatusCode())
		}
	}
	want := []string{seenRequest("GET", "/a", ""), seenRequest("GET", "/b", "")}
	if got := o.take(); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Fatalf("origin saw %q, want %q", got, want)
	}
}

// TestEdgeFramingStreamedBody: with request streaming on, a chunked body that
// breaks the rules after the first chunks have gone on to the origin still
// gets the framer's 400 (not a 502 for the aborted upload), and the origin never
// receives a complete request.
func TestEdgeFramingStreamedBody(t *testing.T) {
	o := newRecorder(t)
	cfg := testConfig(o.origin)
	cfg.Limits.StreamRequestBytes = 4
	e := startEdge(t, cfg, Options{})
	const te = "POST /c HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n"
	big := strings.Repeat("x", 0x4000)
	tests := []struct {
		name string
		raw  string
		code int
		seen []string
	}{
		{"valid", te + "3\r\nabc\r\n0\r\n\r\n", 200, []string{seenRequest("POST", "/c", "abc")}},
		{"bad second chunk", te + "3\r\nabc\r\nzz\r\n0\r\n\r\n", 400, nil},
		{"bad chunk after 32 KiB streamed", te + "4000\r\n" + big + "\r\n4000\r\n" + big + "\r\n3 \r\nabc\r\n0\r\n\r\n", 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			codes, last := rawExchange(t, e.addr, tt.raw)
			if len(codes) != 1 || codes[0] != tt.code {
				t.Fatalf("statuses %v, want [%d]", codes, tt.code)
			}
			if tt.code != 200 {
				wantJSONError(t, last, tt.code)
				if !last.ConnectionClose() {
					t.Fatalf("the %d does not close the connection", tt.code)
				}
			}
			if got := o.take(); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.seen) {
				t.Fatalf("origin saw %q, want %q", got, tt.seen)
			}
		})
	}
}

// A client whose streamed upload breaks mid-way is the client's fault: however
// often it happens, the origin keeps its health (before, each broken upload
// counted as an origin failure, so any client could get the origins ejected).
func TestBrokenUploadsDoNotEjectTheOrigin(t *testing.T) {
	// Two origins, so the ejection cap would allow taking one.
	o, o2 := newRecorder(t), newRecorder(t)
	o2.origin.name = "rec2"
	cfg := testConfig(o.origin, o2.origin)
	cfg.Limits.StreamRequestBytes = 4
	cfg.Health.PassiveFailures = 2
	e := startEdge(t, cfg, Options{})
	const te = "POST /c HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n"
	big := strings.Repeat("x", 0x4000)
	bad := te + "4000\r\n" + big + "\r\n4000\r\n" + big + "\r\n3 \r\nabc\r\n0\r\n\r\n"
	for i := range 5 {
		codes, _ := rawExchange(t, e.addr, bad)
		if len(codes) != 1 || codes[0] != 400 {
			t.Fatalf("broken upload %d: statuses %v, want [400]", i, codes)
		}
	}
	o.take()
	o2.take()
	for _, u := range e.s.rt.Load().pool.All() {
		if !u.Available() {
			t.Fatalf("origin %s was ejected because clients sent broken uploads", u.Name)
		}
	}
	codes, _ := rawExchange(t, e.addr, "GET /ok HTTP/1.1\r\nHost: shop\r\n\r\n")
	if len(codes) != 1 || codes[0] != 200 {
		t.Fatalf("GET after broken uploads: statuses %v, want [200]", codes)
	}
}

// TestEdgeTrailerDiscard: a chunked request whose trailer section holds a
// field fasthttp refuses there is answered 200, its trailer fields that may
// not be passed on are discarded (RFC 9110 §6.5.1-§6.5.2; gunicorn's
// valid/012 sends Content-Type), and the origin gets the body and the other
// trailer fields as it does today, never a discarded field's name or value.
// Content-Length, Transfer-Encoding and Host in a trailer are still refused
// (400 "forbidden trailer field"), as gunicorn refuses them. Both I/O cores
// (EDGE_TEST_IO=eventloop), with chunked bodies streamed (the default) and
// read whole (stream_request_bytes 0: the event loop takes the fields out of
// its own buffer).
func TestEdgeTrailerDiscard(t *testing.T) {
	forBodyModes(t, testEdgeTrailerDiscard)
}

func testEdgeTrailerDiscard(t *testing.T, stream int) {
	type view struct{ header, trailer, body string }
	var mu sync.Mutex
	var seen []view
	o := newOrigin(t, "trailers", func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		seen = append(seen, view{ctx.Request.Header.String(), string(ctx.Request.Header.TrailerHeader()), string(ctx.Request.Body())})
		mu.Unlock()
		ctx.SetBodyString("ok")
	})
	cfg := testConfig(o)
	cfg.Limits.StreamRequestBytes = stream
	e := startEdge(t, cfg, Options{})
	const te = "POST /c HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
	discarded := []string{"Content-Type", "Content-Encoding", "Content-Range", "Authorization", "Connection", "Cookie", "Set-Cookie",
		"Expect", "Keep-Alive", "Location", "Max-Forwards", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
		"Range", "TE", "Trailer", "WWW-Authenticate", "X-Forwarded-For", "X-Forwarded-Host", "x-forwarded-proto", "X-Real-IP", "cOOKIE"}
	// What the origin gets of a trailer with allowed fields only: the same
	// arrives when discarded fields are taken out of it. (Streamed, the
	// trailer fields are passed on; read whole, the body goes with a length
	// and the trailer is not passed on: both as before fields were discarded.)
	codes, _ := rawExchange(t, e.addr, te+"Vary: *\r\nX-Sum: 1\r\n\r\n")
	mu.Lock()
	if fmt.Sprint(codes) != "[200]" || len(seen) != 1 {
		t.Fatalf("allowed trailer fields: statuses %v, origin saw %d", codes, len(seen))
	}
	base := seen[0]
	mu.Unlock()
	if stream > 0 && base.trailer != "Vary: *\r\nX-Sum: 1\r\n\r\n" {
		t.Fatalf("streamed chunked body: origin saw trailer %q", base.trailer)
	}
	for _, name := range discarded {
		t.Run(name, func(t *testing.T) {
			mu.Lock()
			seen = nil
			mu.Unlock()
			val := "dropped-" + strings.ToLower(name)
			raw := te + "Vary: *\r\n" + name + ": " + val + "\r\nX-Sum: 1\r\n\r\n" + "GET /after HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n"
			codes, last := rawExchange(t, e.addr, raw)
			if fmt.Sprint(codes) != "[200 200]" {
				t.Fatalf("statuses %v, want [200 200]: %s", codes, last.Body())
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != 2 {
				t.Fatalf("origin saw %d requests", len(seen))
			}
			v := seen[0]
			if v.body != "hello" || v.trailer != base.trailer {
				t.Fatalf("origin saw body %q, trailer %q; want the trailer of the same request without %s, %q", v.body, v.trailer, name, base.trailer)
			}
			if all := v.header + v.trailer + v.body; strings.Contains(all, val) {
				t.Fatalf("the discarded %s reached the origin: %q", name, all)
			}
		})
	}
	for _, name := range []string{"Content-Length", "Transfer-Encoding", "Host"} {
		t.Run(name+" refused", func(t *testing.T) {
			mu.Lock()
			seen = nil
			mu.Unlock()
			codes, last := rawExchange(t, e.addr, te+"Vary: *\r\n"+name+": 1\r\n\r\n")
			if fmt.Sprint(codes) != "[400]" || string(last.Body()) != `{"error":"forbidden trailer field"}` {
				t.Fatalf("statuses %v, want [400] forbidden trailer field", codes)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != 0 {
				t.Fatalf("origin saw %v", seen)
			}
		})
	}
}

// TestEdgeDangerousFraming sends raw bytes with Content-Length and
// Transfer-Encoding, or a bare LF in a field value, to an edge with
// limits.dangerous_framing off (400, nothing forwarded) and on (RFC 9112 §6.3
// rule 3 and RFC 9110 §5.5): the origin gets exactly the request the edge
// parsed, framed by Transfer-Encoding alone (its raw header section never has
// both framing fields) or with the LF replaced by SP (never a bare LF), the
// answer is the last on the connection, and the request pipelined after it
// never reaches the origin. Both I/O cores (EDGE_TEST_IO), chunked bodies
// streamed (the default) and read whole (stream_request_bytes 0).
func TestEdgeDangerousFraming(t *testing.T) {
	for _, mode := range []string{"reject", "tolerate"} {
		for _, stream := range []int{64 << 10, 0} {
			t.Run(fmt.Sprintf("%s/stream_request_bytes=%d", mode, stream), func(t *testing.T) { testEdgeDangerousFraming(t, mode, stream) })
		}
	}
}

func testEdgeDangerousFraming(t *testing.T, mode string, stream int) {
	var mu sync.Mutex
	var seen []string
	o := newOrigin(t, "danger", func(ctx *fasthttp.RequestCtx) {
		raw := strings.ToLower(string(ctx.Request.Header.RawHeaders()))
		both := strings.Contains(raw, "content-length:") && strings.Contains(raw, "transfer-encoding:")
		bareLF := strings.Count(raw, "\n") != strings.Count(raw, "\r\n")
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s nl=%q body=%q both=%v bareLF=%v", ctx.Method(), ctx.RequestURI(), ctx.Request.Header.Peek("Newline"), ctx.Request.Body(), both, bareLF))
		mu.Unlock()
		ctx.SetBodyString("ok")
	})
	cfg := testConfig(o)
	cfg.Limits.DangerousFraming = mode
	cfg.Limits.StreamRequestBytes = stream
	e := startEdge(t, cfg, Options{})
	const (
		head  = "POST /c HTTP/1.1\r\nHost: shop\r\n"
		te    = "Transfer-Encoding: chunked\r\n"
		body  = "\r\n5\r\nhello\r\n0\r\n\r\n"
		after = "GET /after HTTP/1.1\r\nHost: shop\r\n\r\n"
	)
	hello := `POST /c nl="" body="hello" both=false bareLF=false`
	tests := []struct {
		name, raw string
		seen      string // with tolerate
	}{
		{"Content-Length then Transfer-Encoding", head + "Content-Length: 3\r\n" + te + body + after, hello},
		{"Transfer-Encoding then Content-Length", head + te + "Content-Length: 3\r\n" + body + after, hello},
		{"Content-Length: -1 with Transfer-Encoding (gunicorn valid/025compat)", head + te + "Content-Length: -1\r\n" + body + after, hello},
		{"Content-Length longer than the body", head + "Content-Length: 100\r\n" + te + body + after, hello},
		{"bare LF in a field value (gunicorn valid/invalid_field_value_01_compat)",
			"GET /n HTTP/1.1\r\nHost: shop\r\nNewline: a\nContent-Length: 26\r\nX-Forwarded-By: broken-proxy\r\n\r\nGET / HTTP/1.1\nHost: x\r\n\r\n" + after,
			`GET /n nl="a Content-Length: 26" body="" both=false bareLF=false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			codes, last := rawExchange(t, e.addr, tt.raw)
			mu.Lock()
			got := seen
			seen = nil
			mu.Unlock()
			if mode == "reject" {
				if fmt.Sprint(codes) != "[400]" || len(got) != 0 {
					t.Fatalf("statuses %v, origin saw %q; want [400], nothing", codes, got)
				}
				wantJSONError(t, last, 400)
				return
			}
			if fmt.Sprint(codes) != "[200]" || fmt.Sprintf("%q", got) != fmt.Sprintf("%q", []string{tt.seen}) {
				t.Fatalf("statuses %v, origin saw %q; want [200], %q (and never /after)", codes, got, tt.seen)
			}
			if !last.ConnectionClose() {
				t.Error("the answer does not say Connection: close, though the edge closes after it")
			}
		})
	}
	if mode == "tolerate" {
		// An ordinary request pipelined before a tolerated one keeps the
		// connection open for it: only the tolerated one's answer closes.
		codes, last := rawExchange(t, e.addr, head+"Content-Length: 5\r\n\r\nhello"+head+te+"Content-Length: 3\r\n"+body+after)
		if fmt.Sprint(codes) != "[200 200]" || !last.ConnectionClose() {
			t.Fatalf("ordinary then tolerated: statuses %v, last closes %v; want [200 200], true", codes, last.ConnectionClose())
		}
	}
	// Without Transfer-Encoding, an invalid Content-Length is refused either
	// way, and ordinary requests keep their connection.
	codes, _ := rawExchange(t, e.addr, head+"Content-Length: -1\r\n\r\n")
	if fmt.Sprint(codes) != "[400]" {
		t.Fatalf("invalid Content-Length alone: statuses %v", codes)
	}
	codes, _ = rawExchange(t, e.addr, head+"Content-Length: 5\r\n\r\nhello"+after)
	if fmt.Sprint(codes) != "[200 200]" {
		t.Fatalf("a pipeline of ordinary requests: statuses %v", codes)
	}
	mu.Lock()
	seen = nil
	mu.Unlock()
}

// forBodyModes runs test once per way the edge takes a request body: streamed
// past limits.stream_request_bytes (the default, 64 KiB; on the event loop a
// chunked body detaches to the goroutine core) and read whole (0).
func forBodyModes(t *testing.T, test func(t *testing.T, stream int)) {
	for _, stream := range []int{64 << 10, 0} {
		t.Run(fmt.Sprintf("stream_request_bytes=%d", stream), func(t *testing.T) { test(t, stream) })
	}
}
