//go:build linux

package evloop

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// batchOrigin is a real TCP origin that records, per connection, the batches
// of requests it read together (a batch ends where its read buffer ran dry:
// pipelined requests arrive in one batch), and answers each request with
// answer(path, method, batch position, batch size).
type batchOrigin struct {
	ln      net.Listener
	mu      sync.Mutex
	batches [][]string // "METHOD /path" of each batch
	conns   atomic.Int64
	// open counts the connections the origin serves (one that it closes
	// itself stops counting before its last answer goes out), peak the most
	// at once.
	open, peak atomic.Int64
}

// originAnswer is what a batchOrigin sends for one request: the raw answer,
// whether to close after it, and a wait before it.
type originAnswer struct {
	raw   string
	close bool
	wait  time.Duration
}

func startBatchOrigin(t *testing.T, answer func(path, method string, pos, size int) originAnswer) *batchOrigin {
	t.Helper()
	o := &batchOrigin{}
	o.ln = acceptEach(t, func(c net.Conn) {
		o.conns.Add(1)
		n := o.open.Add(1)
		for p := o.peak.Load(); n > p && !o.peak.CompareAndSwap(p, n); p = o.peak.Load() {
		}
		go o.serve(c, answer)
	})
	return o
}

func (o *batchOrigin) serve(c net.Conn, answer func(path, method string, pos, size int) originAnswer) {
	counted := true
	defer func() {
		if counted {
			o.open.Add(-1)
		}
		c.Close()
	}()
	br := bufio.NewReader(c)
	for {
		// Read a batch: every request already buffered after the first.
		var reqs []*fasthttp.Request
		for {
			req := new(fasthttp.Request)
			if err := req.Read(br); err != nil {
				if len(reqs) == 0 {
					return
				}
				break
			}
			reqs = append(reqs, req)
			if br.Buffered() == 0 {
				break
			}
		}
		var names []string
		for _, r := range reqs {
			names = append(names, string(r.Header.Method())+" "+string(r.URI().Path()))
		}
		o.mu.Lock()
		o.batches = append(o.batches, names)
		o.mu.Unlock()
		for i, r := range reqs {
			a := answer(string(r.URI().Path()), string(r.Header.Method()), i, len(reqs))
			time.Sleep(a.wait)
			if a.raw == "" {
				return
			}
			if a.close {
				// Before the edge can read the answer and connect again.
				o.open.Add(-1)
				counted = false
			}
			if _, err := c.Write([]byte(a.raw)); err != nil || a.close {
				return
			}
		}
	}
}

func (o *batchOrigin) maxBatch() (n int, batches [][]string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, b := range o.batches {
		n = max(n, len(b))
	}
	return n, append([][]string(nil), o.batches...)
}

// pipeLoops is forwardAll with pipelining at depth, and a request to /block
// answered on the loop only when release is closed (started is closed when it
// holds the loop), so that requests written meanwhile are all read in the
// loop's next round.
func pipeLoops(t *testing.T, addr string, timeout time.Duration, depth int) (s *Server, edge string, block func(func())) {
	t.Helper()
	cfg := forwardAll(addr, timeout, nil)
	cfg.PipelineDepth = depth
	return blockLoops(t, cfg)
}

// blockLoops starts cfg's loops (light answers on) with pipeLoops' /block.
func blockLoops(t *testing.T, cfg Config) (s *Server, edge string, block func(func())) {
	t.Helper()
	cfg.LightAnswers = true
	cfg.MaxHeaderBytes = 16 << 10
	started, release := make(chan struct{}, 1), make(chan struct{}, 1)
	fwd := cfg.Inline
	cfg.Inline = func(ctx *fasthttp.RequestCtx) (bool, fasthttp.RequestHandler) {
		if string(ctx.Path()) == "/block" {
			started <- struct{}{}
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
			ctx.SetBodyString("released")
			return true, nil
		}
		return fwd(ctx)
	}
	s, edge = startLoops(t, cfg)
	block = func(during func()) {
		c, err := net.Dial("tcp", edge)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("GET /block HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("the loop never ran /block")
		}
		during()
		release <- struct{}{}
		readAnswer(t, c, false)
	}
	return s, edge, block
}

// readAnswer reads one answer from c and returns its bytes as sent, the Date
// field's value blanked.
func readAnswer(t *testing.T, c net.Conn, head bool) string {
	t.Helper()
	var raw bytes.Buffer
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var resp fasthttp.Response
	resp.SkipBody = head
	if err := resp.Read(bufio.NewReader(io.TeeReader(c, &raw))); err != nil {
		t.Fatalf("reading the answer: %v (%q)", err, raw.String())
	}
	return lightDateLine.ReplaceAllString(raw.String(), "\r\nDate: X\r\n")
}

// round sends each request on its own client connection while the loop is
// held, so the loop reads them all in one round, and returns the answers.
func round(t *testing.T, edge string, block func(func()), reqs []string) []string {
	t.Helper()
	conns := make([]net.Conn, len(reqs))
	for i := range reqs {
		c, err := net.Dial("tcp", edge)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	block(func() {
		for i, r := range reqs {
			if _, err := conns[i].Write([]byte(r)); err != nil {
				t.Fatal(err)
			}
		}
	})
	out := make([]string, len(reqs))
	for i, r := range reqs {
		out[i] = readAnswer(t, conns[i], strings.HasPrefix(r, "HEAD "))
	}
	return out
}

func get(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n" }

// warm makes one idle pooled connection (pipelines go on those only).
func warm(t *testing.T, edge string) {
	t.Helper()
	code, _, err := fasthttp.GetTimeout(nil, "http://"+edge+"/a", 10*time.Second)
	if err != nil || code != 200 {
		t.Fatalf("warm-up: %d %v", code, err)
	}
}

var pipeAnswers = map[string]string{
	"/a":       "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nX-O: a\r\n\r\nhello",
	"/b":       "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nCache-Control: no-store\r\n\r\n{}",
	"/chunked": "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
	"/204":     "HTTP/1.1 204 No Content\r\nX-O: 204\r\n\r\n",
	"/304":     "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nEtag: \"x\"\r\n\r\n",
	"/interim": "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok",
	"/big":     "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 71680\r\n\r\n" + strings.Repeat("b", 70<<10),
	"/bad":     "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
	"/lower":   "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 3\r\n\r\nlow",
}

// pipeAnswer answers a path from pipeAnswers; HEAD gets the header only.
func pipeAnswer(path, method string) string {
	a := pipeAnswers[path]
	if a == "" {
		a = pipeAnswers["/a"]
	}
	if method == "HEAD" {
		if i := strings.Index(a, "\r\n\r\n"); i >= 0 {
			a = a[:i+4]
		}
	}
	return a
}

// The same rounds of requests get byte-identical answers with pipelining on
// and off, and with it on they went several to a connection.
func TestPipelineMatchesUnpipelined(t *testing.T) {
	rounds := []struct {
		name string
		reqs []string
	}{
		{"ordinary", []string{get("/a"), get("/b"), get("/a"), get("/b")}},
		{"framings", []string{get("/chunked"), get("/204"), get("/304"), get("/interim"), get("/lower")}},
		{"head", []string{"HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n", get("/a"), "HEAD /chunked HTTP/1.1\r\nHost: x\r\n\r\n", get("/b")}},
		{"big in the middle", []string{get("/a"), get("/big"), get("/b")}},
		{"bad answer first", []string{get("/bad"), get("/a"), get("/b")}},
		{"bad answer last", []string{get("/a"), get("/b"), get("/bad")}},
	}
	run := func(t *testing.T, depth int) (answers [][]string, st Stats, most int) {
		o := startBatchOrigin(t, func(path, method string, _, _ int) originAnswer {
			return originAnswer{raw: pipeAnswer(path, method)}
		})
		s, edge, block := pipeLoops(t, o.ln.Addr().String(), 5*time.Second, depth)
		for _, r := range rounds {
			warm(t, edge)
			answers = append(answers, round(t, edge, block, r.reqs))
		}
		most, _ = o.maxBatch()
		return answers, s.Stats(), most
	}
	off, stOff, mostOff := run(t, 0)
	on, stOn, mostOn := run(t, 8)
	for i, r := range rounds {
		for j := range r.reqs {
			a, b := off[i][j], on[i][j]
			if strings.Contains(r.reqs[j], "/bad") {
				// The error text quotes the bytes read, more when pipelined.
				a, b = a[:strings.Index(a, "\r\n")], b[:strings.Index(b, "\r\n")]
			}
			if a != b {
				t.Errorf("%s, request %d: pipelined answer differs\n off: %.300q\n  on: %.300q", r.name, j, off[i][j], on[i][j])
			}
			if strings.Contains(r.reqs[j], "/bad") != strings.HasPrefix(on[i][j], "HTTP/1.1 502") {
				t.Errorf("%s, request %d: %.80q", r.name, j, on[i][j])
			}
		}
	}
	if mostOff != 1 || stOff.Pipelined != 0 {
		t.Errorf("off: the origin read %d requests at once, %d pipelined", mostOff, stOff.Pipelined)
	}
	if mostOn < 3 || stOn.Pipelined < uint64(len(rounds)) {
		t.Errorf("on: the origin read at most %d requests at once, %d pipelined: not pipelining", mostOn, stOn.Pipelined)
	}
	if stOn.Handoffs != 0 {
		t.Errorf("on: %d hand-offs", stOn.Handoffs)
	}
}

// An origin that ends the connection after the first answer of a pipeline
// (closing, or answering Connection: close) gets the unanswered requests
// again, each on a fresh connection, and every client its own answer.
func TestPipelineOriginClosesAfterFirst(t *testing.T) {
	tests := []struct {
		name  string
		first string
	}{
		{"closes", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nX-O: a\r\n\r\nhello"},
		{"connection close", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"},
		{"connection close, stays open", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"},
		{"reset before answering", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := startBatchOrigin(t, func(path, _ string, pos, size int) originAnswer {
				n := strings.TrimPrefix(path, "/n")
				a := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(n)) + "\r\n\r\n" + n
				if size < 2 {
					return originAnswer{raw: a}
				}
				if pos == 0 {
					if tt.first == "" {
						return originAnswer{}
					}
					return originAnswer{raw: strings.Replace(tt.first, "hello", "hell"+n, 1)[:len(tt.first)], close: !strings.Contains(tt.name, "stays open")}
				}
				return originAnswer{raw: a}
			})
			s, edge, block := pipeLoops(t, o.ln.Addr().String(), 5*time.Second, 4)
			warm(t, edge)
			got := round(t, edge, block, []string{get("/n1"), get("/n2"), get("/n3")})
			for i, a := range got {
				want := strconv.Itoa(i + 1)
				if !strings.HasPrefix(a, "HTTP/1.1 200 OK") || !strings.HasSuffix(a, want) {
					t.Errorf("request %d: %q", i, a)
				}
			}
			most, batches := o.maxBatch()
			st := s.Stats()
			if most != 3 || st.Pipelined != 2 {
				t.Fatalf("not pipelined: batches %q, stats %+v", batches, st)
			}
			wantRetries := uint64(2)
			if tt.first == "" {
				wantRetries = 3 // the first too: a stale keep-alive connection
			}
			if st.ForwardRetries != wantRetries {
				t.Errorf("stats %+v: want %d sent again", st, wantRetries)
			}
			// The connection is not pooled: the next round pipelines on a
			// fresh one and works.
			if got := round(t, edge, block, []string{get("/n7"), get("/n8")}); !strings.HasSuffix(got[0], "7") || !strings.HasSuffix(got[1], "8") {
				t.Errorf("next round: %q", got)
			}
		})
	}
}

// A slow first answer holds the requests behind it only until the loop
// sends them again elsewhere (rescuePipes, after pipelineRescue): they are
// answered on fresh connections while the slow one keeps its connection and
// its own per-try timeout, and the answers they left behind are dropped.
func TestPipelineSlowFirstAnswer(t *testing.T) {
	tests := []struct {
		name    string
		wait    time.Duration
		timeout time.Duration
		want    []string
		retries int // -1: not checked (a quick answer may race the rescue on a loaded machine)
	}{
		{"quick", 20 * time.Millisecond, 5 * time.Second, []string{"HTTP/1.1 200", "HTTP/1.1 200", "HTTP/1.1 200"}, -1},
		{"answered late", time.Second, 5 * time.Second, []string{"HTTP/1.1 200", "HTTP/1.1 200", "HTTP/1.1 200"}, 2},
		{"timed out", 3 * time.Second, time.Second, []string{"HTTP/1.1 504", "HTTP/1.1 200", "HTTP/1.1 200"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := startBatchOrigin(t, func(path, method string, _, _ int) originAnswer {
				a := originAnswer{raw: pipeAnswer("/a", method)}
				if path == "/slow" {
					a.wait = tt.wait
				}
				return a
			})
			s, edge, block := pipeLoops(t, o.ln.Addr().String(), tt.timeout, 4)
			warm(t, edge)
			got := round(t, edge, block, []string{get("/slow"), get("/a"), get("/a")})
			for i, a := range got {
				if !strings.HasPrefix(a, tt.want[i]) {
					t.Errorf("request %d: %.60q, want %s", i, a, tt.want[i])
				}
			}
			st := s.Stats()
			if st.Pipelined != 2 {
				t.Fatalf("not pipelined: %+v", st)
			}
			if tt.retries >= 0 && st.ForwardRetries != uint64(tt.retries) {
				t.Errorf("stats %+v: want %d sent again", st, tt.retries)
			}
			// The loop goes on serving, over the old connection too once its
			// dropped answers are read.
			for range 3 {
				warm(t, edge)
			}
		})
	}
}

// A POST is never pipelined: it goes out alone, while the GETs of the same
// round share a connection.
func TestPipelineSkipsPost(t *testing.T) {
	o := startBatchOrigin(t, func(path, method string, _, _ int) originAnswer {
		return originAnswer{raw: pipeAnswer("/a", method)}
	})
	s, edge, block := pipeLoops(t, o.ln.Addr().String(), 5*time.Second, 4)
	post := "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
	// Two idle connections: one for the POST, one for the GETs.
	round(t, edge, block, []string{post, post})
	got := round(t, edge, block, []string{get("/g1"), post, get("/g2"), get("/g3")})
	for i, a := range got {
		if !strings.HasSuffix(a, "hello") {
			t.Errorf("request %d: %.60q", i, a)
		}
	}
	_, batches := o.maxBatch()
	gets := 0
	for _, b := range batches {
		for _, r := range b {
			if strings.HasPrefix(r, "POST") && len(b) != 1 {
				t.Errorf("POST pipelined: %q", b)
			}
		}
		if len(b) > 1 {
			gets = max(gets, len(b))
		}
	}
	if st := s.Stats(); gets != 3 || st.Pipelined != 2 {
		t.Errorf("GETs not pipelined: batches %q, stats %+v", batches, st)
	}
}

// FuzzPipelineAnswers: whatever an origin sends to the first of three
// pipelined requests (then closing), every client gets an answer, and the
// first gets the status it gets without pipelining; the requests behind are
// answered from the rest of those bytes or sent again.
func FuzzPipelineAnswers(f *testing.F) {
	for _, a := range pipeAnswers {
		f.Add([]byte(a))
		f.Add([]byte(a + a + a))
		f.Add([]byte(a[:len(a)/2]))
	}
	f.Add([]byte(""))
	f.Add([]byte(pipeAnswers["/a"] + "garbage"))
	f.Add([]byte(pipeAnswers["/a"] + pipeAnswers["/interim"] + pipeAnswers["/204"]))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nclose-delimited " + pipeAnswers["/a"]))
	f.Fuzz(func(t *testing.T, data []byte) {
		o := startBatchOrigin(t, func(path, method string, pos, _ int) originAnswer {
			if path == "/fuzz" && pos == 0 {
				return originAnswer{raw: string(data), close: true}
			}
			return originAnswer{raw: pipeAnswer("/a", method)}
		})
		firstLine := func(a string) string { return a[:strings.IndexByte(a, '\r')] }
		_, edgeOff, blockOff := pipeLoops(t, o.ln.Addr().String(), 2*time.Second, 0)
		warm(t, edgeOff)
		want := firstLine(round(t, edgeOff, blockOff, []string{get("/fuzz")})[0])
		s, edge, block := pipeLoops(t, o.ln.Addr().String(), 2*time.Second, 4)
		warm(t, edge)
		got := round(t, edge, block, []string{get("/fuzz"), get("/n2"), get("/n3")})
		if firstLine(got[0]) != want {
			t.Fatalf("first answer %q pipelined, %q alone", firstLine(got[0]), want)
		}
		if st := s.Stats(); st.Pipelined != 2 {
			t.Fatalf("not pipelined: %+v", st)
		}
		// The loop goes on serving.
		warm(t, edge)
	})
}
