package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// memConn is a net.Conn that reads from a script of chunks.
type memConn struct {
	chunks [][]byte
	net.Conn
}

func (m *memConn) Read(p []byte) (int, error) {
	if len(m.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, m.chunks[0])
	if m.chunks[0] = m.chunks[0][n:]; len(m.chunks[0]) == 0 {
		m.chunks = m.chunks[1:]
	}
	return n, nil
}

func (m *memConn) SetReadDeadline(time.Time) error { return nil }

// readAll reads c with a buffer of size until an error.
func readAll(c *Conn, size int) (string, error) {
	var out bytes.Buffer
	p := make([]byte, size)
	for range 10000 {
		n, err := c.Read(p)
		out.Write(p[:n])
		if err != nil {
			return out.String(), err
		}
	}
	return out.String(), errors.New("no progress")
}

func TestConnPassesValidRequests(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		valid  string // the accepted requests, empty lines dropped
		err    error  // io.EOF: all valid
	}{
		{"pipeline with empty lines", []string{"\r\n" + get + "\r\n\r\n" + post + "\r\n"}, get + post, io.EOF},
		{"empty lines in a read of their own", []string{get, "\r\n", "\r\n", post}, get + post, io.EOF},
		{"split everywhere", []string{"GE", "T / HTTP/1.1\r", "\nHost: a\r\n\r", "\n\r", "\nPOST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nab", "c"}, get + post, io.EOF},
		{"rejected after valid ones", []string{get + post + "GET / HTTP/1.1\r\nHost: a\r\nDummy: x\nContent-Length: 3\r\n\r\nabc"}, get + post, ErrBareLF},
		{"rejected after a prefix was passed on", []string{get + "GET / HTTP/1.1\r\nHost: a\r\n", "Foo: bar\r\n Content-Length: 3\r\n\r\nabc"}, get, ErrObsFold},
		{"rejected at the header end", []string{"GET / HTTP/1.1\r\n\r\n"}, "", ErrMissingHost},
		{"rejected first byte after empty lines", []string{get + "\r\n\r\n", " GET / HTTP/1.1\r\n"}, get, ErrRequestLine},
		{"chunked body rejected midway", []string{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", "3 \r\nabc\r\n0\r\n\r\n"}, "", ErrChunkSize},
	}
	for _, tt := range tests {
		for _, size := range []int{1, 5, 4096} {
			if strings.Contains(strings.Join(tt.chunks, ""), "Transfer-Encoding") {
				// Conn holds a Transfer-Encoding line back until its end.
				size = max(size, MaxTransferEncodingLine+2)
			}
			m := &memConn{}
			for _, c := range tt.chunks {
				m.chunks = append(m.chunks, []byte(c))
			}
			c := NewConn(m, Limits{})
			got, err := readAll(c, size)
			if !errors.Is(err, tt.err) || !strings.HasPrefix(got, tt.valid) {
				t.Errorf("%s (buffer %d): read %q, %v; want %q then %v", tt.name, size, got, err, tt.valid, tt.err)
				continue
			}
			if tt.err == io.EOF {
				if got != tt.valid {
					t.Errorf("%s (buffer %d): read %q, want %q", tt.name, size, got, tt.valid)
				}
				continue
			}
			if !errors.Is(c.Err(), tt.err) {
				t.Errorf("%s: Err() = %v", tt.name, c.Err())
			}
			// After the valid requests comes either the placeholder or a
			// prefix of the rejected request that is not a complete request
			// and not yet invalid: a server reading it is left waiting for
			// more when the read fails.
			rest := got[len(tt.valid):]
			if rest == "X" {
				continue
			}
			var f RequestFramer
			n, done, ferr := f.Scan([]byte(rest))
			if rest == "" || n != len(rest) || done || ferr != nil || f.Idle() {
				t.Errorf("%s (buffer %d): after the valid requests %q (framed: %d %v %v)", tt.name, size, rest, n, done, ferr)
			}
		}
	}
}

// TestConnUnfold checks Limits.UnfoldObsFold through Conn: whatever the reads
// (every split point, byte by byte) and the reader's buffer, the server reads
// each obs-fold as two SP, and a rejected request after folds still ends the
// stream with its error.
func TestConnUnfold(t *testing.T) {
	const head = "POST /f HTTP/1.1\r\nHost: a\r\n"
	tests := []struct {
		name, in, want string
		err            error
	}{
		{"folds then a body", head + "X: a\r\n b\r\n\tc\r\nContent-Length: 3\r\n\r\nabc" + get,
			head + "X: a   b  \tc\r\nContent-Length: 3\r\n\r\nabc" + get, io.EOF},
		{"no fold", head + "X: a\r\nY: b\r\n\r\n" + get, head + "X: a\r\nY: b\r\n\r\n" + get, io.EOF},
		{"fold at the end of the header section", get + head + "X: a\r\n \r\n\r\n", get + head + "X: a   \r\n\r\n", io.EOF},
		{"fold of Content-Length refused", get + head + "Content-Length: 3\r\n 4\r\n\r\nabc", get, ErrObsFold},
		{"cut short after a field line", get + head + "X: a\r\n", get + head + "X: a\r\n", io.EOF},
	}
	for _, tt := range tests {
		var splits [][]string
		for i := 1; i < len(tt.in); i++ {
			splits = append(splits, []string{tt.in[:i], tt.in[i:]})
		}
		var bytewise []string
		for i := range len(tt.in) {
			bytewise = append(bytewise, tt.in[i:i+1])
		}
		splits = append(splits, bytewise, []string{tt.in})
		for _, chunks := range splits {
			for _, size := range []int{3, 7, 4096} {
				m := &memConn{}
				for _, c := range chunks {
					m.chunks = append(m.chunks, []byte(c))
				}
				c := NewConn(m, Limits{UnfoldObsFold: true})
				got, err := readAll(c, size)
				if !errors.Is(err, tt.err) || !strings.HasPrefix(got, tt.want) || tt.err == io.EOF && got != tt.want {
					t.Fatalf("%s, reads %q, buffer %d: read %q, %v; want %q, %v", tt.name, chunks, size, got, err, tt.want, tt.err)
				}
			}
		}
	}
	// A buffer no longer than the held line end cannot make progress.
	m := &memConn{chunks: [][]byte{[]byte(head + "X: a\r\n"), []byte(" b\r\n\r\n")}}
	c := NewConn(m, Limits{UnfoldObsFold: true})
	if _, err := readAll(c, 2); !errors.Is(err, io.ErrShortBuffer) {
		t.Fatalf("2-byte buffer: %v", err)
	}
}

// benchGet is a browser's GET as the edge sees it.
const benchGet = "GET /api/products/?page=2&sort=price HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: application/json\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\nCookie: novashop_access=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc\r\nConnection: keep-alive\r\n\r\n"

// BenchmarkConnRead measures the framer's cost per request on a pipelined
// stream read in 4 KiB reads, against the same reads unwrapped.
func BenchmarkConnRead(b *testing.B) {
	req := benchGet
	const perRead = 16
	stream := bytes.Repeat([]byte(req), perRead)
	p := make([]byte, len(stream))
	for _, framed := range []bool{false, true} {
		name := "raw"
		if framed {
			name = "framed"
		}
		b.Run(name, func(b *testing.B) {
			m := &memConn{}
			c := NewConn(m, Limits{})
			script := make([][]byte, 1)
			b.ReportAllocs()
			b.SetBytes(int64(len(req)))
			for i := 0; i < b.N; i += perRead {
				script[0] = stream
				m.chunks = script
				var n int
				if framed {
					n, _ = c.Read(p)
				} else {
					n, _ = m.Read(p)
				}
				if n != len(stream) {
					b.Fatalf("read %d", n)
				}
			}
		})
	}
}

// BenchmarkScanVsFasthttp puts the framer's cost per request beside
// fasthttp's own parse of the same request (header and body read into a
// Request), in the same run.
func BenchmarkScanVsFasthttp(b *testing.B) {
	for _, req := range []struct{ name, raw string }{
		{"browser-get", benchGet},
		{"chunked-post", "POST /api/cart/items/ HTTP/1.1\r\nHost: shop.example\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1c\r\n{\"product\":17,\"qty\":2,\"x\":1}\r\n0\r\n\r\n"},
	} {
		raw := []byte(req.raw)
		b.Run(req.name+"/framer", func(b *testing.B) {
			var f RequestFramer
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for range b.N {
				if n, done, err := f.Scan(raw); !done || err != nil || n != len(raw) {
					b.Fatal(n, done, err)
				}
			}
		})
		b.Run(req.name+"/fasthttp", func(b *testing.B) {
			var r fasthttp.Request
			rd := bytes.NewReader(raw)
			br := bufio.NewReader(rd)
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for range b.N {
				rd.Reset(raw)
				br.Reset(rd)
				r.Reset()
				if err := r.Read(br); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestConnReadAllocs pins the per-request cost of the wrapper: reading a
// pipeline through a Conn allocates nothing.
func TestConnReadAllocs(t *testing.T) {
	for _, unfold := range []bool{false, true} {
		connReadAllocs(t, unfold)
	}
}

func connReadAllocs(t *testing.T, unfold bool) {
	stream := []byte(strings.Repeat("\r\n"+benchGet+post, 8))
	p := make([]byte, len(stream))
	m := &memConn{}
	c := NewConn(m, Limits{UnfoldObsFold: unfold})
	script := make([][]byte, 1)
	allocs := testing.AllocsPerRun(100, func() {
		script[0] = stream
		m.chunks = script
		if n, err := c.Read(p); err != nil || n != len(stream)-16 {
			t.Fatalf("read %d, %v", n, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per read", allocs)
	}
}

// TestConnDiscardsTrailer: through Conn, split at every byte (two reads at
// each split point, and one byte a read), a trailer field the framer discards
// never reaches the reader, not even the start of its name: what the server
// reads is the stream with those lines taken out, kept trailer fields
// included. Buffers are longer than the bytes a Conn may hold (a
// Transfer-Encoding line, MaxTransferEncodingLine and its CR).
func TestConnDiscardsTrailer(t *testing.T) {
	connSplits(t, trailerDiscardCases())
	// A buffer no longer than a held name cannot make progress.
	m := &memConn{chunks: [][]byte{[]byte(trailerTE + "Cook"), []byte("ie: 1\r\n\r\n")}}
	if _, err := readAll(NewConn(m, Limits{}), 4); !errors.Is(err, io.ErrShortBuffer) {
		t.Fatalf("4-byte buffer: %v", err)
	}
}

// TestConnDropsIdentity: through Conn, split at every byte, a
// Transfer-Encoding line naming only identity never reaches the reader, and
// in the one naming chunked identity is overwritten (RequestFramer.HeaderDropped).
func TestConnDropsIdentity(t *testing.T) {
	var cases []trailerCase
	for _, c := range identityCases() {
		if c.out != "" {
			cases = append(cases, c.trailerCase)
		}
	}
	connSplits(t, cases)
}

// connSplits reads each case's stream through Conn, split at every byte (two
// reads at each split point, and one byte a read), and checks that the reader
// gets out.
func connSplits(t *testing.T, cases []trailerCase) {
	t.Helper()
	for _, tt := range cases {
		var splits [][]string
		for i := 1; i < len(tt.in); i++ {
			splits = append(splits, []string{tt.in[:i], tt.in[i:]})
		}
		var bytewise []string
		for i := range len(tt.in) {
			bytewise = append(bytewise, tt.in[i:i+1])
		}
		splits = append(splits, bytewise, []string{tt.in})
		for _, chunks := range splits {
			for _, size := range []int{MaxTransferEncodingLine + 2, MaxTransferEncodingLine + 5, 4096} {
				m := &memConn{}
				for _, c := range chunks {
					m.chunks = append(m.chunks, []byte(c))
				}
				c := NewConn(m, tt.limits)
				got, err := readAll(c, size)
				if err != io.EOF || got != tt.out {
					t.Fatalf("%s, reads %q, buffer %d: read %q, %v; want %q", tt.name, chunks, size, got, err, tt.out)
				}
			}
		}
	}
}

// TestConnDiscardAllocs: discarding trailer lines, held name bytes included,
// allocates nothing.
func TestConnDiscardAllocs(t *testing.T) {
	in := []byte(trailerTE + "Vary: *\r\nCookie: a\r\nX-Sum: 1\r\n\r\n")
	split := len(trailerTE) + len("Vary: *\r\nCoo")
	p := make([]byte, 4096)
	m := &memConn{}
	c := NewConn(m, Limits{})
	script := make([][]byte, 2)
	allocs := testing.AllocsPerRun(100, func() {
		script[0], script[1] = in[:split], in[split:]
		m.chunks = script
		n1, err1 := c.Read(p)
		n2, err2 := c.Read(p[n1:])
		if err1 != nil || err2 != nil || n1+n2 != len(in)-len("Cookie: a\r\n") {
			t.Fatalf("read %d+%d, %v %v", n1, n2, err1, err2)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per request", allocs)
	}
}

// TestConnDangerousFraming reads the messages Limits.TolerateDangerousFraming
// accepts through Conn, split everywhere, each followed by a pipelined
// request: the server reads the message as passed on (a Content-Length line
// dropped, a bare LF turned into SP), then io.EOF, never the request after
// it (RFC 9112 §6.3 rule 3: close after answering).
func TestConnDangerousFraming(t *testing.T) {
	var cases []trailerCase
	for _, c := range dangerousCases() {
		c.in += get
		cases = append(cases, c.trailerCase)
	}
	connSplits(t, cases)
	// CloseAfterMessage does the same for a message whose bytes were
	// rewritten already (the event-loop core's hand-over).
	m := &memConn{chunks: [][]byte{[]byte(post + get)}}
	c := NewConn(m, Limits{})
	c.CloseAfterMessage()
	if got, err := readAll(c, 4096); got != post || err != io.EOF {
		t.Fatalf("after CloseAfterMessage: read %q, %v; want %q, EOF", got, err, post)
	}
}

// TestConnTransferCodings: through Conn, split at every byte, a message with
// transfer codings before chunked reaches the reader as plain chunked (the
// codings taken out as identity is), and TransferCodings gives each message's
// codings by its number on the connection, as fasthttp counts requests: a
// pipelined message after a coded one has none.
func TestConnTransferCodings(t *testing.T) {
	const (
		head = "POST / HTTP/1.1\r\nHost: a\r\n"
		body = "\r\n5\r\nhello\r\n0\r\n\r\n"
	)
	in := "\r\n" + head + "Transfer-Encoding: gzip, chunked\r\n" + body + get + "\r\n" +
		head + "Transfer-Encoding: Deflate\r\nTransfer-Encoding: identity, BR, chunked\r\n" + body + post
	out := head + "Transfer-Encoding:       chunked\r\n" + body + get +
		head + "Transfer-Encoding:" + strings.Repeat(" ", len(" identity, BR, ")) + "chunked\r\n" + body + post
	want := []string{"gzip", "", "deflate, br", ""}
	var splits [][]string
	for i := 1; i < len(in); i++ {
		splits = append(splits, []string{in[:i], in[i:]})
	}
	var bytewise []string
	for i := range len(in) {
		bytewise = append(bytewise, in[i:i+1])
	}
	splits = append(splits, bytewise, []string{in})
	for _, chunks := range splits {
		for _, size := range []int{MaxTransferEncodingLine + 2, 4096} {
			m := &memConn{}
			for _, c := range chunks {
				m.chunks = append(m.chunks, []byte(c))
			}
			c := NewConn(m, Limits{})
			got, err := readAll(c, size)
			if err != io.EOF || got != out {
				t.Fatalf("reads %q, buffer %d: read %q, %v; want %q", chunks, size, got, err, out)
			}
			for n, w := range want {
				if g := c.TransferCodings(uint64(n + 1)); g != w {
					t.Fatalf("reads %q, buffer %d: message %d has codings %q, want %q", chunks, size, n+1, g, w)
				}
			}
			if len(c.coded) != 0 {
				t.Fatalf("codings kept after every message was asked for: %v", c.coded)
			}
		}
	}
	// Asked out of order, the earlier ones are forgotten.
	c := NewConn(&memConn{chunks: [][]byte{[]byte(in)}}, Limits{})
	if _, err := readAll(c, 4096); err != io.EOF {
		t.Fatal(err)
	}
	if c.TransferCodings(3) != "deflate, br" || c.TransferCodings(1) != "" {
		t.Fatal("out of order")
	}
}
