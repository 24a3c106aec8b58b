package h1

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// result is what framing a whole stream gives: the messages found (without
// their leading empty lines) and the error that stopped it, if any.
type result struct {
	msgs []string
	// out: the messages as a caller passes them on, discarded trailer
	// lines (DropTail) taken out.
	out     []string
	framing []Framing
	// codings: each message's Codings.
	codings []string
	err     error
	errAt   int  // offset of the offending byte in the stream
	idle    bool // the stream ended between messages
}

// frameAll runs the framer over s split at the given sizes (cycled; nil: one
// call) and collects the messages.
func frameAll(f *RequestFramer, s string, sizes []int) result {
	var r result
	f.Reset()
	b := []byte(s)
	start, skipped := 0, 0
	first := true
	var drops [][2]int // discarded ranges of the current message in b
	for k, pos := 0, 0; pos < len(b); k++ {
		end := len(b)
		if len(sizes) > 0 {
			end = min(pos+sizes[k%len(sizes)], len(b))
		}
		chunk := b[pos:end]
		for len(chunk) > 0 {
			if first {
				skipped = 0
			}
			n, done, err := f.Scan(chunk)
			// An obs-fold unfolded (Limits.UnfoldObsFold) whose CRLF came in
			// an earlier chunk: the caller turns those bytes into SP.
			for k := 1; k <= f.UnfoldedBefore(); k++ {
				b[pos-k] = ' '
			}
			// A Transfer-Encoding line rewritten at its end, begun in an
			// earlier chunk.
			from, to := f.RewriteBefore()
			for k := pos + from; k < pos+to; k++ {
				b[k] = ' '
			}
			if err != nil {
				r.err, r.errAt = err, pos+n
				return r
			}
			first = false
			pos += n
			chunk = chunk[n:]
			if d := f.DropTail(); d > 0 {
				drops = append(drops, [2]int{pos - d, pos})
			}
			if done {
				skipped = f.Skipped()
				r.msgs = append(r.msgs, string(b[start+skipped:pos]))
				var out []byte
				at := start + skipped
				for _, d := range drops {
					out = append(out, b[at:d[0]]...)
					at = d[1]
				}
				r.out = append(r.out, string(append(out, b[at:pos]...)))
				drops = drops[:0]
				r.framing = append(r.framing, f.Framing())
				r.codings = append(r.codings, string(f.Codings()))
				if f.MustClose() {
					// The caller answers it and closes: nothing after it
					// is read.
					r.idle = true
					return r
				}
				start = pos
				first = true
			}
		}
	}
	r.idle = f.Idle()
	return r
}

func (r result) String() string {
	return fmt.Sprintf("msgs=%q out=%q framing=%v codings=%q err=%v at %d idle=%v", r.msgs, r.out, r.framing, r.codings, r.err, r.errAt, r.idle)
}

// checkSplits frames s whole, byte by byte and at random splits, and checks
// that every way gives the same result.
func checkSplits(t *testing.T, f *RequestFramer, s string) result {
	t.Helper()
	whole := frameAll(f, s, nil)
	for _, sizes := range [][]int{{1}, {2, 3}, {7}, {rand.IntN(20) + 1, rand.IntN(5) + 1}} {
		if got := frameAll(f, s, sizes); got.String() != whole.String() {
			t.Fatalf("split %v: %v\nwhole: %v", sizes, got, whole)
		}
	}
	return whole
}

const (
	get  = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	post = "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
)

// TestFramerAccepts pins what is accepted and where each message ends.
func TestFramerAccepts(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // messages, empty lines dropped
	}{
		{"simple get", get, []string{get}},
		{"http/1.0 without host", "GET / HTTP/1.0\r\n\r\n", []string{"GET / HTTP/1.0\r\n\r\n"}},
		{"content-length body", post, []string{post}},
		{"content-length zero", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", []string{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"}},
		{"content-length trailing whitespace", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3 \t\r\n\r\nabc", []string{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3 \t\r\n\r\nabc"}},
		// §2.2: empty lines before a request-line are ignored, also between
		// pipelined requests.
		{"§2.2 empty line before request", "\r\n" + get, []string{get}},
		{"§2.2 empty lines between pipelined requests", get + "\r\n\r\n" + post + "\r\n" + get, []string{get, post, get}},
		{"pipeline", get + post + get, []string{get, post, get}},
		{"chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n",
			[]string{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n"}},
		{"chunked case-insensitive with trailer", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ChunKed \r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n",
			[]string{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ChunKed \r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n"}},
		{"§7.1.1 chunk extensions", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b;c;d=\"x\\\"y; z\"\r\nabc\r\n0;last\r\n\r\n",
			[]string{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b;c;d=\"x\\\"y; z\"\r\nabc\r\n0;last\r\n\r\n"}},
		{"§7.1.1 BWS in chunk extensions (gunicorn valid/013)", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5; some; parameters=stuff\r\nhello\r\n6; blahblah; blah\r\n world\r\n1;a = b ;c\t=\t\"d\" ; e\r\n!\r\n0\r\n\r\n",
			[]string{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5; some; parameters=stuff\r\nhello\r\n6; blahblah; blah\r\n world\r\n1;a = b ;c\t=\t\"d\" ; e\r\n!\r\n0\r\n\r\n"}},
		{"chunk size with leading zeros", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0003\r\nabc\r\n000\r\n\r\n",
			[]string{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0003\r\nabc\r\n000\r\n\r\n"}},
		// RFC 9110 §9.1: methods are tokens; unknown ones are the origin's business.
		{"unknown method token", "BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n", []string{"BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n"}},
		{"method with tchar symbols", "M-SEARCH! /x HTTP/1.1\r\nHost: a\r\n\r\n", []string{"M-SEARCH! /x HTTP/1.1\r\nHost: a\r\n\r\n"}},
		{"§3.2.4 asterisk-form", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", []string{"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"}},
		{"§3.2.3 authority-form with an address", "CONNECT 10.0.0.1:443 HTTP/1.1\r\nHost: 10.0.0.1:443\r\n\r\n", []string{"CONNECT 10.0.0.1:443 HTTP/1.1\r\nHost: 10.0.0.1:443\r\n\r\n"}},
		{"absolute-form", "GET http://a/b?c HTTP/1.1\r\nHost: a\r\n\r\n", []string{"GET http://a/b?c HTTP/1.1\r\nHost: a\r\n\r\n"}},
		{"authority-form", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", []string{"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"}},
		{"empty host in http/1.0", "GET / HTTP/1.0\r\nHost:\r\n\r\n", []string{"GET / HTTP/1.0\r\nHost:\r\n\r\n"}},
		{"ip literal host", "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", []string{"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"}},
		{"obs-text and tabs in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: \tcaf\xc3\xa9 \t x\r\n\r\n", []string{"GET / HTTP/1.1\r\nHost: a\r\nX: \tcaf\xc3\xa9 \t x\r\n\r\n"}},
		{"empty value", "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n", []string{"GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n"}},
		{"lookalike names are other fields", "GET / HTTP/1.1\r\nHost: a\r\nContent-Lengthx: zz\r\nTransfer-Encodin: gzip\r\nHostx: /\r\n\r\n",
			[]string{"GET / HTTP/1.1\r\nHost: a\r\nContent-Lengthx: zz\r\nTransfer-Encodin: gzip\r\nHostx: /\r\n\r\n"}},
	}
	var f RequestFramer
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := checkSplits(t, &f, tt.in)
			if r.err != nil {
				t.Fatalf("error %v", r.err)
			}
			if fmt.Sprintf("%q", r.msgs) != fmt.Sprintf("%q", tt.want) {
				t.Fatalf("messages %q, want %q", r.msgs, tt.want)
			}
			if !r.idle {
				t.Fatalf("not idle at the end")
			}
		})
	}
}

// TestFramerRejects pins each rejection: the framing error and its status,
// after the earlier valid pipelined messages.
func TestFramerRejects(t *testing.T) {
	const te = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	tests := []struct {
		name string
		in   string
		want *Error
	}{
		// §3: the request-line.
		{"§3 bare LF request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", ErrBareLF},
		{"§3 bare LF after version in pipeline", get + "GET / HTTP/1.1\n\n", ErrBareLF},
		{"§3.1 invalid method character", "G(ET / HTTP/1.1\r\nHost: a\r\n\r\n", ErrMethod},
		{"§3.1 method with non-ASCII", "G\xc3\xa9T / HTTP/1.1\r\nHost: a\r\n\r\n", ErrMethod},
		{"§3 leading space", " GET / HTTP/1.1\r\nHost: a\r\n\r\n", ErrRequestLine},
		{"§3 two spaces", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", ErrRequestLine},
		{"§3 tab separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", ErrRequestLine},
		{"§3 http/0.9 line", "GET /\r\n\r\n", ErrRequestLine},
		{"§3 trailing space after version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", ErrRequestLine},
		{"§2.3 lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", ErrRequestLine},
		{"§2.3 two-digit version", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", ErrRequestLine},
		{"§2.3 HTTP/2.0 request-line", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", ErrVersion},
		{"§2.3 HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", ErrVersion},
		{"§3.2 non-ASCII in target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", ErrTarget},
		{"§3.2 control in target", "GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", ErrTarget},
		{"§3.2 DEL in target", "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", ErrTarget},
		{"§3.2 NUL in target", "GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n", ErrTarget},
		{"§3.2 target not in any form", "GET ?a HTTP/1.1\r\nHost: a\r\n\r\n", ErrTarget},
		{"§3.2 asterisk with more", "OPTIONS *a HTTP/1.1\r\nHost: a\r\n\r\n", ErrTarget},
		{"§3.2.4 asterisk-form with another method", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", ErrTarget},
		{"§3.2.4 asterisk-form with a lower-case options", "options * HTTP/1.1\r\nHost: a\r\n\r\n", ErrTarget},
		{"§3.2.3 authority-form without CONNECT", "GET a:443 HTTP/1.1\r\nHost: a\r\n\r\n", ErrTarget},
		{"§3.2.2 absolute-form without //", "GET http:a/b HTTP/1.1\r\nHost: a\r\n\r\n", ErrTarget},
		{"§3.2.2 scheme with a bad character", "GET ht;tp://a/b HTTP/1.1\r\nHost: a\r\n\r\n", ErrTarget},
		{"§3.2 bare word", "GET a HTTP/1.1\r\nHost: a\r\n\r\n", ErrTarget},
		{"§2.2 bare CR in request line", "GET / HTTP/1.1\rHost: a\r\n\r\n", ErrBareCR},
		{"§2.2 bare LF as empty line", "\n" + get, ErrBareLF},
		{"§2.2 CR without LF before request", "\r" + get, ErrBareCR},
		// §5: field lines.
		{"§2.2 bare LF inside the header block", "POST / HTTP/1.1\r\nHost: a\r\nDummy: x\nContent-Length: 3\r\n\r\nabc", ErrBareLF},
		{"§2.2 bare LF ends header block", "GET / HTTP/1.1\r\nHost: a\r\n\n", ErrBareLF},
		{"§2.2 bare CR in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", ErrBareCR},
		{"§5.2 obs-fold after Host", "GET / HTTP/1.1\r\nHost: a\r\n Content-Length: 3\r\n\r\nabc", ErrObsFold},
		{"§5.2 obs-fold after another field", "GET / HTTP/1.1\r\nHost: a\r\nFoo: bar\r\n Content-Length: 3\r\n\r\nabc", ErrObsFold},
		{"§5.2 obs-fold with tab", "GET / HTTP/1.1\r\nHost: a\r\nFoo: bar\r\n\tbaz\r\n\r\n", ErrObsFold},
		{"§2.2 whitespace before first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", ErrObsFold},
		{"§5.1 space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", ErrHeaderName},
		{"§5.1 empty name", "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", ErrHeaderName},
		{"§5.1 name with separator", "GET / HTTP/1.1\r\nHost: a\r\nX(y): z\r\n\r\n", ErrHeaderName},
		{"§5.1 line without colon", "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", ErrHeaderName},
		{"§5.1 non-ASCII name", "GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: z\r\n\r\n", ErrHeaderName},
		{"§5.5 NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", ErrHeaderValue},
		{"§5.5 control in value", "GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n", ErrHeaderValue},
		{"§5.5 DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", ErrHeaderValue},
		// §3.2: Host.
		{"§3.2 missing host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", ErrMissingHost},
		{"§3.2 missing host in second request", get + "GET / HTTP/1.1\r\n\r\n", ErrMissingHost},
		{"§3.2 empty host in http/1.1", "GET / HTTP/1.1\r\nHost: \r\n\r\n", ErrMissingHost},
		{"§3.2 two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", ErrHost},
		{"Content_Length (CGI maps it to CONTENT_LENGTH)", "POST / HTTP/1.1\r\nHost: a\r\nContent_Length: 3\r\n\r\nabc", ErrMaskedFraming},
		{"transfer_ENCODING (any case)", "POST / HTTP/1.1\r\nHost: a\r\ntransfer_ENCODING: chunked\r\n\r\n", ErrMaskedFraming},
		{"Content_Length after a long field (slow path)", "POST / HTTP/1.1\r\nHost: a\r\nX-Very-Long-Name-Beyond-The-Cap: 1\r\nContent_Length: 3\r\n\r\nabc", ErrMaskedFraming},
		{"RFC 9110 §8.3 Content-Type twice", "POST / HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\ncontent-type: application/json\r\nContent-Length: 2\r\n\r\n{}", ErrContentType},
		{"§3.2 host with path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", ErrHost},
		{"§3.2 host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", ErrHost},
		{"§3.2 host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", ErrHost},
		// §6.3: Content-Length.
		{"§6.3 duplicate content-length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", ErrContentLength},
		{"§6.3 differing content-lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", ErrContentLength},
		{"§6.3 content-length list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc", ErrContentLength},
		{"§6.3 content-length differing list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3,4\r\n\r\nabc", ErrContentLength},
		{"§6.3 negative content-length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", ErrContentLength},
		{"§6.3 plus sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", ErrContentLength},
		{"§6.3 hex content-length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\nabc", ErrContentLength},
		{"§6.3 content-length with inner space", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", ErrContentLength},
		{"§6.3 empty content-length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", ErrContentLength},
		{"§6.3 content-length overflow", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n", ErrContentLength},
		// §6.1: Transfer-Encoding.
		{"§6.1 content-length and transfer-encoding", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", ErrLengthAndChunked},
		{"§6.1 transfer-encoding then content-length", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", ErrLengthAndChunked},
		{"§6.3 chunked not final", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", ErrTransferEncoding},
		{"§6.3 identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", ErrTransferEncoding},
		{"§7 chunked twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", ErrTransferEncoding},
		{"§7 chunked with parameter", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n", ErrTransferEncoding},
		{"§6.1 empty transfer-encoding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", ErrTransferEncoding},
		{"§6.1 transfer-encoding in http/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", ErrTransferEncoding},
		{"§6.1 trailing empty list element", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n", ErrTransferEncoding},
		{"§6.1 leading empty list element", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked\r\n\r\n0\r\n\r\n", ErrTransferEncoding},
		{"§6.1 chunkedx", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunkedx\r\n\r\n", ErrTransferEncoding},
		{"§6.1 quoted chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", ErrTransferEncoding},
		{"§6.1 a coding with a parameter is 501", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip;level=1, chunked\r\n\r\n0\r\n\r\n", ErrUnsupportedCoding},
		// §7.1: chunked body.
		{"§7.1 whitespace after chunk size", te + "3 \r\nabc\r\n0\r\n\r\n", ErrChunkSize},
		{"§7.1 tab after chunk size", te + "3\t\r\nabc\r\n0\r\n\r\n", ErrChunkSize},
		{"§7.1 whitespace before extension", te + "3 ;a\r\nabc\r\n0\r\n\r\n", ErrChunkSize},
		{"§7.1.1 extension without name", te + "3;\r\nabc\r\n0\r\n\r\n", ErrChunkExtension},
		{"§7.1.1 extension with empty value", te + "3;a=\r\nabc\r\n0\r\n\r\n", ErrChunkExtension},
		{"§7.1.1 whitespace without a name", te + "3; \r\nabc\r\n0\r\n\r\n", ErrChunkExtension},
		{"§7.1.1 whitespace after the name at line end", te + "3;a \r\nabc\r\n0\r\n\r\n", ErrChunkExtension},
		{"§7.1.1 whitespace after the value at line end", te + "3;a=b\t\r\nabc\r\n0\r\n\r\n", ErrChunkExtension},
		{"§7.1.1 whitespace inside a name", te + "3;a b\r\nabc\r\n0\r\n\r\n", ErrChunkExtension},
		{"§7.1.1 unterminated quoted value", te + "3;a=\"b\r\nabc\r\n0\r\n\r\n", ErrChunkExtension},
		{"§7.1.1 bare LF in extension", te + "3;a\nabc\r\n0\r\n\r\n", ErrBareLF},
		{"§7.1 empty chunk size", te + "\r\nabc\r\n0\r\n\r\n", ErrChunkSize},
		{"§7.1 chunk size not hex", te + "g\r\n", ErrChunkSize},
		{"§7.1 negative chunk size", te + "-1\r\n", ErrChunkSize},
		{"§7.1 chunk size 0x prefix", te + "0x3\r\nabc\r\n0\r\n\r\n", ErrChunkSize},
		{"§7.1 chunk size overflow", te + "8000000000000000\r\n", ErrChunkSize},
		{"§7.1 chunk size too many digits", te + "00000000000000001\r\na\r\n0\r\n\r\n", ErrChunkSize},
		{"§7.1 bare LF after chunk size", te + "3\nabc\r\n0\r\n\r\n", ErrBareLF},
		{"§7.1 chunk data longer than size", te + "3\r\nabcd\r\n0\r\n\r\n", ErrChunkData},
		{"§7.1 chunk data with bare LF", te + "3\r\nabc\n0\r\n\r\n", ErrChunkData},
		{"§7.1 chunk data then CR without LF", te + "3\r\nabc\r0\r\n\r\n", ErrBareCR},
		{"§7.1.2 obs-fold in trailer", te + "0\r\nX: a\r\n b\r\n\r\n", ErrObsFold},
		{"Content_Length imitation in a trailer", te + "0\r\ncontent_length: 3\r\n\r\n", ErrMaskedFraming},
		{"discarded trailer field still bounded: bare LF", te + "0\r\nCookie: a\nX: 1\r\n\r\n", ErrBareLF},
		{"discarded trailer field still bounded: control byte", te + "0\r\nExpect: a\x00b\r\n\r\n", ErrHeaderValue},
		{"§6.5 Content-Length in a trailer", te + "0\r\nContent-Length: 3\r\n\r\n", ErrTrailer},
		{"§6.5 Transfer-Encoding in a trailer", te + "0\r\nVary: *\r\ntransfer-ENCODING: chunked\r\n\r\n", ErrTrailer},
		{"§6.5 Host in a trailer, after a discarded field", te + "0\r\nCookie: a\r\nHost: evil\r\n\r\n", ErrTrailer},
		{"§6.5 bare LF ends trailer", te + "0\r\n\n", ErrBareLF},
	}
	var f RequestFramer
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := checkSplits(t, &f, tt.in)
			if !errors.Is(r.err, tt.want) {
				t.Fatalf("got %v, want error %v", r, tt.want)
			}
			var e *Error
			if !errors.As(r.err, &e) || e.Status() != tt.want.Status() || strings.ContainsAny(e.Message(), "\"\\") {
				t.Fatalf("error %v: status %d", r.err, e.Status())
			}
		})
	}
}

func TestFramerLimits(t *testing.T) {
	tests := []struct {
		name   string
		limits Limits
		in     string
		want   *Error
	}{
		{"header bytes at limit", Limits{MaxHeaderBytes: len(get)}, get, nil},
		{"header bytes over limit", Limits{MaxHeaderBytes: len(get) - 1}, get, ErrHeaderTooLarge},
		{"empty lines count", Limits{MaxHeaderBytes: len(get) + 1}, "\r\n" + get, ErrHeaderTooLarge},
		{"long value over limit", Limits{MaxHeaderBytes: 100}, "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("v", 100) + "\r\n\r\n", ErrHeaderTooLarge},
		{"long target over limit", Limits{MaxHeaderBytes: 100}, "GET /" + strings.Repeat("t", 100) + " HTTP/1.1\r\nHost: a\r\n\r\n", ErrHeaderTooLarge},
		{"default limit", Limits{MaxFieldLineBytes: 1 << 20}, "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("v", DefaultMaxHeaderBytes) + "\r\n\r\n", ErrHeaderTooLarge},
		{"fields at limit", Limits{MaxHeaders: 2}, "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n", nil},
		{"fields over limit", Limits{MaxHeaders: 2}, "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nY: 2\r\n\r\n", ErrTooManyHeaders},
		{"trailer fields over limit", Limits{MaxHeaders: 2}, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", ErrTooManyHeaders},
		{"body at limit", Limits{MaxBodyBytes: 3}, post, nil},
		{"body over limit", Limits{MaxBodyBytes: 2}, post, ErrBodyTooLarge},
		{"chunked body over limit", Limits{MaxBodyBytes: 4}, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", ErrBodyTooLarge},
		{"chunk extension over limit", Limits{MaxChunkExtBytes: 4}, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;abcd\r\nabc\r\n0\r\n\r\n", ErrChunkExtension},
		{"chunk extension at limit", Limits{MaxChunkExtBytes: 5}, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;abcd\r\nabc\r\n0\r\n\r\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := RequestFramer{Limits: tt.limits}
			r := checkSplits(t, &f, tt.in)
			if tt.want == nil && r.err != nil || tt.want != nil && !errors.Is(r.err, tt.want) {
				t.Fatalf("got %v, want %v", r, tt.want)
			}
		})
	}
}

// TestFramerLineLimits pins the per-line limits at their boundary: a line of
// exactly the limit (CRLF not counted) passes, one byte more is refused at
// that byte, whole, byte by byte and at random splits (checkSplits), on the
// fast paths (whole lines in one call) and the byte-at-a-time states.
func TestFramerLineLimits(t *testing.T) {
	// line(n) is a request-line of n+13 bytes, field(n) a field line of n.
	line := func(target int) string { return "GET /" + strings.Repeat("t", target-1) + " HTTP/1.1" }
	field := func(n int) string { return "X: " + strings.Repeat("v", n-3) }
	const host = "Host: a\r\n"
	chunked := "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
	tests := []struct {
		name   string
		limits Limits
		in     string
		want   *Error
		at     int // offset of the refused byte
	}{
		{"request-line at limit", Limits{MaxRequestLineBytes: 40}, line(27) + "\r\n" + host + "\r\n", nil, 0},
		{"request-line over limit", Limits{MaxRequestLineBytes: 40}, line(28) + "\r\n" + host + "\r\n", ErrRequestLineTooLong, 40},
		{"request-line over limit in the version", Limits{MaxRequestLineBytes: 20}, "GET /0123456 HTTP/1.1\r\n" + host + "\r\n", ErrRequestLineTooLong, 20},
		{"request-line over limit, absolute-form", Limits{MaxRequestLineBytes: 12}, "GET http://a/ HTTP/1.1\r\n" + host + "\r\n", ErrRequestLineTooLong, 12},
		{"request-line after empty lines", Limits{MaxRequestLineBytes: 40}, "\r\n\r\n" + line(27) + "\r\n" + host + "\r\n", nil, 0},
		{"request-line default at limit", Limits{MaxHeaderBytes: 64 << 10}, line(DefaultMaxRequestLineBytes-13) + "\r\n" + host + "\r\n", nil, 0},
		{"request-line default over limit", Limits{MaxHeaderBytes: 64 << 10}, line(DefaultMaxRequestLineBytes-12) + "\r\n" + host + "\r\n", ErrRequestLineTooLong, DefaultMaxRequestLineBytes},
		{"field line at limit", Limits{MaxFieldLineBytes: 10}, "GET / HTTP/1.1\r\n" + host + field(10) + "\r\n\r\n", nil, 0},
		{"field line over limit", Limits{MaxFieldLineBytes: 10}, "GET / HTTP/1.1\r\n" + host + field(11) + "\r\n\r\n", ErrFieldTooLarge, 16 + 9 + 10},
		{"field line over limit in the name", Limits{MaxFieldLineBytes: 7}, "GET / HTTP/1.1\r\nHost: a\r\nLong-Name: v\r\n\r\n", ErrFieldTooLarge, 16 + 9 + 7},
		{"field line over limit in trailing whitespace", Limits{MaxFieldLineBytes: 7}, "GET / HTTP/1.1\r\nHost: a \r\n\r\n", ErrFieldTooLarge, 16 + 7},
		{"Host line over limit", Limits{MaxFieldLineBytes: 6}, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", ErrFieldTooLarge, 16 + 6},
		{"field lines each at limit", Limits{MaxFieldLineBytes: 10}, "GET / HTTP/1.1\r\n" + host + field(10) + "\r\n" + field(10) + "\r\n\r\n", nil, 0},
		{"field line default at limit", Limits{}, "GET / HTTP/1.1\r\n" + host + field(DefaultMaxFieldLineBytes) + "\r\n\r\n", nil, 0},
		{"field line default over limit", Limits{}, "GET / HTTP/1.1\r\n" + host + field(DefaultMaxFieldLineBytes+1) + "\r\n\r\n", ErrFieldTooLarge, 25 + DefaultMaxFieldLineBytes},
		{"trailer field at limit", Limits{MaxFieldLineBytes: 30}, chunked + field(30) + "\r\n\r\n", nil, 0},
		{"trailer field over limit", Limits{MaxFieldLineBytes: 30}, chunked + field(31) + "\r\n\r\n", ErrFieldTooLarge, len(chunked) + 30},
		{"the header section bound still applies", Limits{MaxHeaderBytes: 40, MaxFieldLineBytes: 100}, "GET / HTTP/1.1\r\n" + host + field(20) + "\r\n\r\n", ErrHeaderTooLarge, 40},
		{"header fields at the default", Limits{}, "GET / HTTP/1.1\r\n" + host + strings.Repeat("X: 1\r\n", DefaultMaxHeaders-1) + "\r\n", nil, 0},
		{"header fields over the default", Limits{}, "GET / HTTP/1.1\r\n" + host + strings.Repeat("X: 1\r\n", DefaultMaxHeaders) + "\r\n", ErrTooManyHeaders, 16 + 9 + 6*(DefaultMaxHeaders-1) + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := RequestFramer{Limits: tt.limits}
			r := checkSplits(t, &f, tt.in)
			if tt.want == nil {
				if r.err != nil || len(r.msgs) != 1 || !r.idle {
					t.Fatalf("got %v, want one message", r)
				}
				return
			}
			if !errors.Is(r.err, tt.want) || r.errAt != tt.at {
				t.Fatalf("got %v, want %v at %d (%q)", r, tt.want, tt.at, tt.in[min(r.errAt, len(tt.in)-1)])
			}
			// The limits are kept across messages: the same request after a
			// short one fails the same way.
			if frameAll(&f, get, nil).err != nil {
				return // the limit is below get's lines
			}
			r = frameAll(&f, get+tt.in, nil)
			if !errors.Is(r.err, tt.want) || r.errAt != len(get)+tt.at || len(r.msgs) != 1 {
				t.Fatalf("after a message: %v", r)
			}
		})
	}
}

// TestFramerObsFold checks limits.obs_fold: unfold (Limits.UnfoldObsFold):
// each obs-fold's CRLF becomes two SP in the bytes passed on, whole, byte by
// byte and at random splits (frameAll applies UnfoldedBefore as a caller
// must); folds stay refused where the framer reads the value, before a
// section's first field, and by default.
func TestFramerObsFold(t *testing.T) {
	const head = "GET / HTTP/1.1\r\nHost: a\r\n"
	te := "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
	unfold := Limits{UnfoldObsFold: true}
	tests := []struct {
		name   string
		limits Limits
		in     string
		want   string // the message as passed on
		err    *Error
	}{
		{"one fold", unfold, head + "X: a\r\n b\r\n\r\n", head + "X: a   b\r\n\r\n", nil},
		{"HTAB fold, then a field", unfold, head + "X: a\r\n\tb\r\nY: c\r\n\r\n", head + "X: a  \tb\r\nY: c\r\n\r\n", nil},
		{"two folds", unfold, head + "X: a\r\n b\r\n  c\r\n\r\n", head + "X: a   b    c\r\n\r\n", nil},
		{"whitespace-only continuation (gunicorn obs_fold_whitespace)", unfold, head + "Connection: keep-alive\r\n \r\n\r\n", head + "Connection: keep-alive   \r\n\r\n", nil},
		{"empty value folded", unfold, head + "X:\r\n b\r\n\r\n", head + "X:   b\r\n\r\n", nil},
		{"fold after Host is still a fold of Host", unfold, "GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", "", ErrObsFold},
		{"fold of Content-Length", unfold, head + "Content-Length: 3\r\n 4\r\n\r\nabc", "", ErrObsFold},
		{"fold of Transfer-Encoding", unfold, head + "Transfer-Encoding: gzip,\r\n chunked\r\n\r\n", "", ErrObsFold},
		{"whitespace before the first field", unfold, "GET / HTTP/1.1\r\n X: a\r\nHost: a\r\n\r\n", "", ErrObsFold},
		{"trailer fold", unfold, te + "X: a\r\n b\r\n\r\n", te + "X: a   b\r\n\r\n", nil},
		{"whitespace before the first trailer field", unfold, te + " X: a\r\n\r\n", "", ErrObsFold},
		{"refused by default", Limits{}, head + "X: a\r\n b\r\n\r\n", "", ErrObsFold},
		{"unfolded line at the field limit", Limits{UnfoldObsFold: true, MaxFieldLineBytes: 9}, head + "X: ab\r\n c\r\n\r\n", head + "X: ab   c\r\n\r\n", nil},
		{"unfolded line one byte over", Limits{UnfoldObsFold: true, MaxFieldLineBytes: 9}, head + "X: ab\r\n cd\r\n\r\n", "", ErrFieldTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := RequestFramer{Limits: tt.limits}
			r := checkSplits(t, &f, tt.in)
			if tt.err != nil {
				if !errors.Is(r.err, tt.err) {
					t.Fatalf("got %v, want %v", r, tt.err)
				}
				return
			}
			if r.err != nil || len(r.msgs) != 1 || r.msgs[0] != tt.want {
				t.Fatalf("got %v, want %q", r, tt.want)
			}
			// The unfolded bytes frame again as the same message, without folds.
			again := frameAll(&RequestFramer{}, tt.want, nil)
			if again.err != nil || len(again.msgs) != 1 || again.msgs[0] != tt.want {
				t.Fatalf("unfolded message framed again: %v", again)
			}
		})
	}
	// The offending byte of a too long unfolded line is the first over.
	f := RequestFramer{Limits: Limits{UnfoldObsFold: true, MaxFieldLineBytes: 9}}
	if r := frameAll(&f, head+"X: ab\r\n cd\r\n\r\n", nil); r.errAt != len(head)+9 {
		t.Fatalf("error at %d, want %d", r.errAt, len(head)+9)
	}
}

// TestFramerFoldPending pins what a caller passing bytes on at once needs:
// how many trailing bytes may still become SP, and how many before b did.
func TestFramerFoldPending(t *testing.T) {
	f := RequestFramer{Limits: Limits{UnfoldObsFold: true}}
	steps := []struct {
		in              string
		pending, before int
	}{
		{"GET / HTTP/1.1\r\n", 0, 0},
		{"Host: a\r\n", 0, 0}, // Host cannot be folded
		{"X: a\r", 1, 0},
		{"\n", 2, 0},
		{" b\r\n", 2, 2},
		{"Content-Length: 1\r\n", 0, 0},
		{"Y: c\r", 1, 0},
		{"\n\tc\r\n", 2, 1},
		{"\r\n", 0, 0},
	}
	for _, s := range steps {
		b := []byte(s.in)
		if _, _, err := f.Scan(b); err != nil {
			t.Fatalf("%q: %v", s.in, err)
		}
		if f.FoldPending() != s.pending || f.UnfoldedBefore() != s.before {
			t.Fatalf("%q: pending %d, before %d; want %d, %d", s.in, f.FoldPending(), f.UnfoldedBefore(), s.pending, s.before)
		}
	}
	var off RequestFramer
	if _, _, _ = off.Scan([]byte("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n")); off.FoldPending() != 0 {
		t.Fatal("FoldPending without UnfoldObsFold")
	}
}

// TestFramerAccessors checks what a caller streaming a body needs: the header
// length and framing as soon as the header section is complete.
func TestFramerAccessors(t *testing.T) {
	var f RequestFramer
	in := "\r\n" + post
	n, done, err := f.Scan([]byte(in[:len(in)-2]))
	if err != nil || done || n != len(in)-2 {
		t.Fatalf("n=%d done=%v err=%v", n, done, err)
	}
	if !f.HeaderDone() || f.HeaderLen() != len(post)-3 || f.Framing() != Length || f.ContentLength() != 3 || f.Skipped() != 2 {
		t.Fatalf("header %v len %d framing %v cl %d skipped %d", f.HeaderDone(), f.HeaderLen(), f.Framing(), f.ContentLength(), f.Skipped())
	}
	if maj, minor := f.Version(); maj != 1 || minor != 1 {
		t.Fatalf("version %d.%d", maj, minor)
	}
	n, done, err = f.Scan([]byte(in[len(in)-2:] + get))
	if err != nil || !done || n != 2 {
		t.Fatalf("n=%d done=%v err=%v", n, done, err)
	}
	if f.Idle() != true {
		t.Fatalf("not idle after a message")
	}
	n, done, _ = f.Scan([]byte(get))
	if !done || n != len(get) || f.Framing() != NoBody || f.ContentLength() != -1 || f.Skipped() != 0 {
		t.Fatalf("second message: n=%d done=%v framing %v", n, done, f.Framing())
	}
	// A sticky error.
	if _, _, err := f.Scan([]byte("GET /\r\n")); !errors.Is(err, ErrRequestLine) {
		t.Fatalf("err %v", err)
	}
	if n, _, err := f.Scan([]byte(get)); n != 0 || !errors.Is(err, ErrRequestLine) || f.Err() == nil {
		t.Fatalf("not sticky: n=%d err=%v", n, err)
	}
	f.Reset()
	if _, done, err := f.Scan([]byte(get)); !done || err != nil {
		t.Fatalf("after Reset: %v %v", done, err)
	}
}

// discardedTrailers are the trailer field names the framer discards, as a
// client may spell them: every name fasthttp refuses in a trailer section,
// and the two prefixes.
func discardedTrailers() []string {
	names := []string{"X-Forwarded-For", "x-forwarded-for-something-much-longer-than-nineteen", "X-Forwarded", "X-Real-IP", "x-real-ip-2", "CONTENT-TYPE", "proxy-AUTHORIZATION"}
	for _, n := range badTrailerNames {
		if n != "content-length" && n != "transfer-encoding" && n != "host" {
			names = append(names, n)
		}
	}
	return names
}

// trailerTE starts a chunked POST up to its trailer section.
const trailerTE = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"

// trailerCase is a stream with discarded trailer fields (in) and what a
// caller passes on (out).
type trailerCase struct {
	name, in, out string
	limits        Limits
}

func trailerDiscardCases() []trailerCase {
	const te = trailerTE
	var tests []trailerCase
	for _, n := range discardedTrailers() {
		tests = append(tests,
			trailerCase{n + " alone", te + n + ": v\r\n\r\n" + get, te + "\r\n" + get, Limits{}},
			trailerCase{n + " between kept fields", te + "Vary: *\r\n" + n + ":v\r\nX-Sum: 1\r\n\r\n", te + "Vary: *\r\nX-Sum: 1\r\n\r\n", Limits{}},
			trailerCase{n + " folded", te + "A: 1\r\n" + n + ": v\r\n w\r\n\tx\r\nB: 2\r\n\r\n", te + "A: 1\r\nB: 2\r\n\r\n", Limits{UnfoldObsFold: true}},
		)
	}
	tests = append(tests,
		trailerCase{"gunicorn valid/012", te + "Vary: *\r\nContent-Type: text/plain\r\n\r\n", te + "Vary: *\r\n\r\n", Limits{}},
		trailerCase{"several in a row", te + "Cookie: a\r\nTE: b\r\nContent-Range: 9\r\nTrailer: gzip\r\n\r\n" + post, te + "\r\n" + post, Limits{}},
		trailerCase{"lookalikes kept", te + "Cookies: 1\r\nX-Forwarde: 2\r\nHosts: 3\r\nTE2: 4\r\n\r\n", te + "Cookies: 1\r\nX-Forwarde: 2\r\nHosts: 3\r\nTE2: 4\r\n\r\n", Limits{}},
		trailerCase{"kept field folded after a discarded one", te + "Cookie: a\r\nX: 1\r\n 2\r\n\r\n", te + "X: 1   2\r\n\r\n", Limits{UnfoldObsFold: true}},
	)
	return tests
}

// TestFramerDiscardsTrailer: a trailer field fasthttp refuses is discarded
// (RFC 9110 §6.5.1-§6.5.2), not refused: the message is accepted, the
// field's line (obs-folds included) is the DropTail of a Scan call however
// the stream is split, the other trailer fields stay, and fasthttp reads the
// bytes a caller passes on with the body and the kept fields.
func TestFramerDiscardsTrailer(t *testing.T) {
	const te = trailerTE
	tests := trailerDiscardCases()
	var f RequestFramer
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.Limits = tt.limits
			r := checkSplits(t, &f, tt.in)
			if r.err != nil || strings.Join(r.out, "") != tt.out {
				t.Fatalf("%v\nwant out[0] %q", r, tt.out)
			}
			var req fasthttp.Request
			if err := req.Read(bufio.NewReader(strings.NewReader(r.out[0]))); err != nil {
				t.Fatalf("fasthttp on %q: %v", r.out[0], err)
			}
			if string(req.Body()) != "hello" {
				t.Fatalf("body %q", req.Body())
			}
			for _, n := range discardedTrailers() {
				if v := req.Header.Peek(n); len(v) > 0 && string(v) == "v" {
					t.Fatalf("%s reached fasthttp", n)
				}
			}
			// The event-loop core's way: the whole message, compacted in place.
			b := []byte(tt.in)
			f.Reset()
			n, _, done, err := f.ScanMessage(b, false)
			if err != nil || !done || n != len(r.msgs[0]) || (f.Discarded() == 0) != (tt.in == tt.out) {
				t.Fatalf("ScanMessage: %d %v %v, discarded %d", n, done, err, f.Discarded())
			}
			f.Reset()
			n2, w, done, err := f.ScanMessage(b[:n], true)
			if err != nil || !done || n2 != n || string(b[:w]) != tt.out[:w] || w != len(r.out[0]) {
				t.Fatalf("ScanMessage compacted: %q (%d of %d) %v %v", b[:w], n2, n, done, err)
			}
		})
	}
	// The trailer limits count the discarded lines too.
	f.Limits = Limits{MaxHeaders: 2}
	if r := frameAll(&f, te+"Cookie: 1\r\nRange: 2\r\nA: 3\r\n\r\n", []int{1}); !errors.Is(r.err, ErrTooManyHeaders) {
		t.Fatalf("three trailer fields, two discarded, over a limit of 2: %v", r)
	}
	f.Limits = Limits{MaxFieldLineBytes: 10}
	if r := frameAll(&f, te+"Cookie: 12345\r\n\r\n", nil); !errors.Is(r.err, ErrFieldTooLarge) {
		t.Fatalf("discarded line over the line limit: %v", r)
	}
	f.Limits = Limits{MaxHeaderBytes: 64}
	if r := frameAll(&f, te+"Cookie: "+strings.Repeat("c", 70)+"\r\n\r\n", nil); !errors.Is(r.err, ErrHeaderTooLarge) {
		t.Fatalf("discarded line over the section limit: %v", r)
	}
}

// identityCases are streams with identity in Transfer-Encoding (in) and what
// a caller passes on (out): a line naming only identity taken out, identity
// and the commas in the line naming chunked overwritten with SP. drops is
// HeaderDropped of the first message.
func identityCases() []struct {
	trailerCase
	drops int
} {
	const (
		head = "POST / HTTP/1.1\r\nHost: a\r\n"
		body = "\r\n5\r\nhello\r\n0\r\n\r\n"
	)
	type c = struct {
		trailerCase
		drops int
	}
	return []c{
		{trailerCase{"identity, chunked (gunicorn rfc9112_smuggle_te_identity_chunked_01)", head + "Transfer-Encoding: identity, chunked\r\n" + body + get,
			head + "Transfer-Encoding:           chunked\r\n" + body + get, Limits{}}, 0},
		{trailerCase{"identity then chunked on two lines (gunicorn valid/030)", head + "Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n" + body + get,
			head + "Transfer-Encoding: chunked\r\n" + body + get, Limits{}}, 1},
		{trailerCase{"identity lines around other fields, any case", head + "transfer-encoding: IDENTITY\r\nX: 1\r\nTransfer-Encoding:identity,identity ,\tIdentity\r\nTRANSFER-ENCODING: identity,Chunked \r\nY: 2\r\n" + body,
			head + "X: 1\r\nTRANSFER-ENCODING:          Chunked \r\nY: 2\r\n" + body, Limits{}}, 2},
		{trailerCase{"dropped line last in the header", head + "Transfer-Encoding: chunked\r\nX: 1\r\nTransfer-Encoding: identity\r\n" + body,
			"", Limits{}}, 0}, // refused: chunked is not the last coding
		{trailerCase{"with obs-fold unfolding on", head + "X: a\r\n b\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\nY: c\r\n d\r\n" + body,
			head + "X: a   b\r\nTransfer-Encoding: chunked\r\nY: c   d\r\n" + body, Limits{UnfoldObsFold: true}}, 1},
	}
}

// TestFramerIdentity: identity in a Transfer-Encoding list is a no-op coding
// (chunked must still be the last one): the framer drops the lines naming
// only identity and overwrites identity in the line naming chunked, however
// the stream is split, so fasthttp reads "Transfer-Encoding: chunked" once
// and the same body.
func TestFramerIdentity(t *testing.T) {
	var f RequestFramer
	for _, tt := range identityCases() {
		t.Run(tt.name, func(t *testing.T) {
			f.Limits = tt.limits
			r := checkSplits(t, &f, tt.in)
			if tt.out == "" {
				if !errors.Is(r.err, ErrTransferEncoding) {
					t.Fatalf("%v, want ErrTransferEncoding", r)
				}
				return
			}
			if r.err != nil || strings.Join(r.out, "") != tt.out {
				t.Fatalf("%v\nwant out %q", r, tt.out)
			}
			wantChunkedHello(t, r.out[0])
			// The event-loop core's way: the whole message, compacted.
			b := []byte(tt.in)
			f.Reset()
			n, _, done, err := f.ScanMessage(b, false)
			if err != nil || !done || n != len(r.msgs[0]) || f.HeaderDropped() != tt.drops {
				t.Fatalf("ScanMessage: %d %v %v, dropped %d", n, done, err, f.HeaderDropped())
			}
			f.Reset()
			_, w, _, _ := f.ScanMessage(b[:n], true)
			if string(b[:w]) != r.out[0] {
				t.Fatalf("ScanMessage compacted: %q, want %q", b[:w], r.out[0])
			}
		})
	}
	const head = "POST / HTTP/1.1\r\nHost: a\r\n"
	refused := []struct {
		name, in string
		err      error
	}{
		{"identity alone", head + "Transfer-Encoding: identity\r\n\r\n", ErrTransferEncoding},
		{"chunked, identity (gunicorn invalid/chunked_06)", head + "Transfer-Encoding: chunked, identity\r\n\r\n", ErrTransferEncoding},
		{"chunked then identity lines", head + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n", ErrTransferEncoding},
		{"chunked twice around identity (gunicorn invalid/chunked_03)", head + "Transfer-Encoding: identity, chunked, identity, chunked\r\n\r\n", ErrTransferEncoding},
		{"identity with a parameter", head + "Transfer-Encoding: identity;q=1, chunked\r\n\r\n0\r\n\r\n", ErrUnsupportedCoding},
		{"empty element after identity", head + "Transfer-Encoding: identity,,chunked\r\n\r\n", ErrTransferEncoding},
		{"identity with Content-Length", head + "Transfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc", ErrLengthAndChunked},
		{"identity, chunked with Content-Length", head + "Content-Length: 3\r\nTransfer-Encoding: identity, chunked\r\n\r\n", ErrLengthAndChunked},
		{"identity in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: identity, chunked\r\n\r\n", ErrTransferEncoding},
		{"identity in a trailer", trailerTE + "Transfer-Encoding: identity\r\n\r\n", ErrTrailer},
		{"Transfer-Encoding line one byte over its limit", head + "Transfer-Encoding: identity," + strings.Repeat(" ", MaxTransferEncodingLine-len("Transfer-Encoding: identity,chunked")+1) + "chunked\r\n\r\n", ErrTransferEncoding},
		{"dropped line one byte over its limit", head + "Transfer-Encoding: identity" + strings.Repeat(" ", MaxTransferEncodingLine-len("Transfer-Encoding: identity")+1) + "\r\nTransfer-Encoding: chunked\r\n\r\n", ErrTransferEncoding},
	}
	for _, tt := range refused {
		if r := checkSplits(t, &f, tt.in); !errors.Is(r.err, tt.err) {
			t.Errorf("%s: %v, want %v", tt.name, r, tt.err)
		}
	}
	// At the limit, a Transfer-Encoding line is taken.
	atLimit := head + "Transfer-Encoding: identity," + strings.Repeat(" ", MaxTransferEncodingLine-len("Transfer-Encoding: identity,chunked")) + "chunked\r\n\r\n0\r\n\r\n"
	if r := checkSplits(t, &f, atLimit); r.err != nil || len(r.msgs) != 1 {
		t.Fatalf("a Transfer-Encoding line at its limit: %v", r)
	}
}

// dangerousCases are messages accepted only with
// Limits.TolerateDangerousFraming, with what is passed on of each (in, one
// message; out, its bytes as a server reads them) and the body fasthttp must
// read from out.
func dangerousCases() []struct {
	trailerCase
	body string
} {
	const (
		head = "POST / HTTP/1.1\r\nHost: a\r\n"
		body = "\r\n5\r\nhello\r\n0\r\n\r\n"
		te   = "Transfer-Encoding: chunked\r\n"
	)
	tol := Limits{TolerateDangerousFraming: true}
	type c = struct {
		trailerCase
		body string
	}
	return []c{
		// §6.3 rule 3: framed by Transfer-Encoding alone. A valid length
		// before it is left to fasthttp, which frames by chunked too and
		// keeps no Content-Length with a chunked body.
		{trailerCase{"Content-Length before Transfer-Encoding", head + "Content-Length: 3\r\n" + te + body, head + "Content-Length: 3\r\n" + te + body, tol}, "hello"},
		{trailerCase{"Content-Length after Transfer-Encoding: dropped", head + te + "Content-Length: 3\r\n" + body, head + te + body, tol}, "hello"},
		{trailerCase{"invalid Content-Length with Transfer-Encoding: dropped (gunicorn valid/025compat)", head + te + "Content-Length: -1\r\n" + body, head + te + body, tol}, "hello"},
		{trailerCase{"invalid Content-Length before Transfer-Encoding: dropped", head + "content-length:  x1 \r\n" + te + body, head + te + body, tol}, "hello"},
		{trailerCase{"empty Content-Length with Transfer-Encoding: dropped", head + "Content-Length:\r\n" + te + body, head + te + body, tol}, "hello"},
		{trailerCase{"identity line and Content-Length: both dropped", head + "Transfer-Encoding: identity\r\nContent-Length: 5\r\n" + te + body, head + te + body, tol}, "hello"},
		// RFC 9110 §5.5: a bare LF in a field value becomes SP; the line
		// stays one field line (gunicorn valid/invalid_field_value_01_compat).
		{trailerCase{"bare LF in a field value", "GET / HTTP/1.1\r\nHost: a\r\nNewline: a\nContent-Length: 26\r\nX: y\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\nNewline: a Content-Length: 26\r\nX: y\r\n\r\n", tol}, ""},
		{trailerCase{"bare LF first in a field value", "GET / HTTP/1.1\r\nHost: a\r\nX:\nContent-Length: 3\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\nX: Content-Length: 3\r\n\r\n", tol}, ""},
		{trailerCase{"bare LF then a valid Content-Length", head + "X: a\n\nb\r\nContent-Length: 5\r\n\r\nhello", head + "X: a  b\r\nContent-Length: 5\r\n\r\nhello", tol}, "hello"},
	}
}

// TestFramerDangerousFraming pins Limits.TolerateDangerousFraming: what it
// accepts, what is passed on (never both Content-Length and Transfer-Encoding
// as framed, never a bare LF), that fasthttp reads the same body, that the
// message is marked MustClose, and what stays refused with it and without it.
func TestFramerDangerousFraming(t *testing.T) {
	var f RequestFramer
	for _, tt := range dangerousCases() {
		t.Run(tt.name, func(t *testing.T) {
			f.Limits = tt.limits
			r := checkSplits(t, &f, tt.in)
			if r.err != nil || len(r.out) != 1 || r.out[0] != tt.out {
				t.Fatalf("%v\nwant out %q", r, tt.out)
			}
			if !f.MustClose() {
				t.Fatal("not marked MustClose")
			}
			var req fasthttp.Request
			if err := req.Read(bufio.NewReader(strings.NewReader(r.out[0]))); err != nil {
				t.Fatalf("fasthttp on %q: %v", r.out[0], err)
			}
			if string(req.Body()) != tt.body {
				t.Fatalf("fasthttp read body %q, want %q", req.Body(), tt.body)
			}
			if req.Header.ContentLength() == -1 && len(req.Header.Peek("Content-Length")) > 0 {
				t.Fatalf("fasthttp keeps Content-Length %q with a chunked body", req.Header.Peek("Content-Length"))
			}
			// The default refuses each.
			f.Limits = Limits{}
			if r := checkSplits(t, &f, tt.in); r.err == nil {
				t.Fatalf("accepted by default: %v", r)
			}
			// The event-loop core's way: the whole message, compacted.
			f.Limits = tt.limits
			b := []byte(tt.in)
			f.Reset()
			n, _, done, err := f.ScanMessage(b, false)
			if err != nil || !done || n != len(tt.in) || !f.MustClose() {
				t.Fatalf("ScanMessage: %d %v %v, MustClose %v", n, done, err, f.MustClose())
			}
			f.Reset()
			_, w, _, _ := f.ScanMessage(b[:n], true)
			if string(b[:w]) != tt.out {
				t.Fatalf("ScanMessage compacted: %q, want %q", b[:w], tt.out)
			}
		})
	}
	tol := Limits{TolerateDangerousFraming: true}
	const head = "POST / HTTP/1.1\r\nHost: a\r\n"
	for _, tt := range []struct {
		name, in string
		err      error
	}{
		{"invalid Content-Length alone", head + "Content-Length: -1\r\n\r\n", ErrContentLength},
		{"empty Content-Length alone", head + "Content-Length: \r\n\r\n", ErrContentLength},
		{"Content-Length twice", head + "Content-Length: 3\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", ErrContentLength},
		{"Content-Length line over its bound", head + "Content-Length: 3" + strings.Repeat(" ", MaxTransferEncodingLine) + "\r\nTransfer-Encoding: chunked\r\n\r\n", ErrContentLength},
		{"Content-Length with Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", ErrTransferEncoding},
		{"bare LF ending the request-line", "GET / HTTP/1.1\nHost: a\r\n\r\n", ErrBareLF},
		{"bare LF in Host", "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", ErrBareLF},
		{"bare LF in Content-Length", head + "Content-Length: 3\nX: y\r\n\r\nabc", ErrBareLF},
		{"bare LF in Transfer-Encoding", head + "Transfer-Encoding: chunked\nX: y\r\n\r\n0\r\n\r\n", ErrBareLF},
		{"bare LF for a field name", "GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\nZ: 1\r\n\r\n", ErrBareLF},
		{"bare LF in a trailer field", trailerTE + "X: a\nb\r\n\r\n", ErrBareLF},
		{"bare LF after the chunk size", trailerTE[:len(trailerTE)-3] + "\n\r\n", ErrBareLF},
	} {
		f.Limits = tol
		if r := checkSplits(t, &f, tt.in); !errors.Is(r.err, tt.err) {
			t.Errorf("%s: %v, want %v", tt.name, r, tt.err)
		}
	}
	// Without Transfer-Encoding a valid Content-Length is kept and the
	// connection stays open.
	f.Limits = tol
	if r := checkSplits(t, &f, post+get); r.err != nil || len(r.out) != 2 || r.out[0] != post || f.MustClose() {
		t.Fatalf("ordinary requests with the setting on: %v, MustClose %v", r, f.MustClose())
	}
}

// TestFramerCodings: a Transfer-Encoding list ending in chunked with other
// codings before it (RFC 9112 §6.1, §7: a proxy forwards what it does not
// decode while chunked is final) is framed as chunked; the codings come out
// of Codings, normalised, and out of the bytes passed on as identity does
// (SP in the line naming chunked, other lines dropped), however the stream
// is split, so fasthttp reads "Transfer-Encoding: chunked" and the coded
// body's bytes, and the caller carries the codings on.
func TestFramerCodings(t *testing.T) {
	const (
		head = "POST / HTTP/1.1\r\nHost: a\r\n"
		body = "\r\n5\r\nhello\r\n0\r\n\r\n"
	)
	accepted := []struct {
		name, in, out, codings string
		drops                  int
	}{
		{"gzip, chunked (gunicorn rfc9112_smuggle_gzip_chunked_01)", head + "Transfer-Encoding: gzip, chunked\r\n" + body,
			head + "Transfer-Encoding:       chunked\r\n" + body, "gzip", 0},
		{"gzip,chunked (gunicorn valid/025_line)", head + "Transfer-Encoding: gzip,chunked\r\n" + body,
			head + "Transfer-Encoding:      chunked\r\n" + body, "gzip", 0},
		{"several codings, any case, odd whitespace", head + "transfer-encoding:Deflate ,\tBR,chunked \r\n" + body,
			head + "transfer-encoding:" + strings.Repeat(" ", len("Deflate ,\tBR,")) + "chunked \r\n" + body, "deflate, br", 0},
		{"identity left out", head + "Transfer-Encoding: identity, gzip, identity, chunked\r\n" + body,
			head + "Transfer-Encoding:" + strings.Repeat(" ", len(" identity, gzip, identity, ")) + "chunked\r\n" + body, "gzip", 0},
		{"identity lookalikes are codings", head + "Transfer-Encoding: identityx, ident, chunked\r\n" + body,
			head + "Transfer-Encoding:                   chunked\r\n" + body, "identityx, ident", 0},
		{"every token character", head + "Transfer-Encoding: x-Custom!#$%&'*+.^_`|~9, chunked\r\n" + body,
			head + "Transfer-Encoding:                          chunked\r\n" + body, "x-custom!#$%&'*+.^_`|~9", 0},
		{"codings on lines of their own", head + "Transfer-Encoding: gzip\r\nX: 1\r\nTransfer-Encoding: identity, br, chunked\r\n" + body,
			head + "X: 1\r\nTransfer-Encoding:               chunked\r\n" + body, "gzip, br", 1},
		{"a pipelined request after it is plain", head + "Transfer-Encoding: gzip, chunked\r\n" + body + get,
			head + "Transfer-Encoding:       chunked\r\n" + body + get, "gzip", 0},
	}
	var f RequestFramer
	for _, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			f.Limits = Limits{}
			r := checkSplits(t, &f, tt.in)
			if r.err != nil || strings.Join(r.out, "") != tt.out || r.codings[0] != tt.codings || r.framing[0] != Chunked {
				t.Fatalf("%v\nwant out %q, codings %q", r, tt.out, tt.codings)
			}
			for _, c := range r.codings[1:] {
				if c != "" {
					t.Fatalf("the next message has codings %q", c)
				}
			}
			wantChunkedHello(t, r.out[0])
			// The event-loop core's way: framed in place with Preserve (the
			// bytes stay as sent, so framing them again finds the codings
			// again), then a copy framed without it and compacted.
			b := []byte(tt.in)
			pf := RequestFramer{Preserve: true}
			for range 2 {
				pf.Reset()
				n, _, done, err := pf.ScanMessage(b, false)
				if err != nil || !done || n != len(r.msgs[0]) || pf.HeaderDropped() != tt.drops || !pf.Rewrote() || string(pf.Codings()) != tt.codings {
					t.Fatalf("ScanMessage with Preserve: %d %v %v, dropped %d, rewrote %v, codings %q", n, done, err, pf.HeaderDropped(), pf.Rewrote(), pf.Codings())
				}
				if string(b) != tt.in {
					t.Fatalf("Preserve changed the bytes: %q", b)
				}
			}
			cp := []byte(tt.in)
			f.Reset()
			_, w, _, _ := f.ScanMessage(cp, true)
			if string(cp[:w]) != r.out[0] || string(f.Codings()) != tt.codings {
				t.Fatalf("ScanMessage compacted: %q (codings %q), want %q", cp[:w], f.Codings(), r.out[0])
			}
		})
	}
	// Two codings, "xxx…, xxx…", one byte over.
	long := strings.Repeat("x", MaxCodingsBytes-len(", ")+1)
	refused := []struct {
		name, in string
		limits   Limits
		err      error
	}{
		{"chunked not last", head + "Transfer-Encoding: gzip, chunked, gzip\r\n\r\n", Limits{}, ErrTransferEncoding},
		{"coding alone", head + "Transfer-Encoding: gzip\r\n\r\n", Limits{}, ErrTransferEncoding},
		{"coding line after chunked", head + "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", Limits{}, ErrTransferEncoding},
		{"chunked twice", head + "Transfer-Encoding: gzip, chunked, chunked\r\n\r\n", Limits{}, ErrTransferEncoding},
		{"empty element", head + "Transfer-Encoding: gzip,,chunked\r\n\r\n", Limits{}, ErrTransferEncoding},
		{"not a token", head + "Transfer-Encoding: g@zip, chunked\r\n\r\n", Limits{}, ErrTransferEncoding},
		{"no comma", head + "Transfer-Encoding: gzip chunked\r\n\r\n", Limits{}, ErrTransferEncoding},
		{"a quoted coding", head + "Transfer-Encoding: \"gzip\", chunked\r\n\r\n", Limits{}, ErrTransferEncoding},
		{"with a parameter", head + "Transfer-Encoding: gzip;q=1, chunked\r\n\r\n", Limits{}, ErrUnsupportedCoding},
		{"with Content-Length", head + "Content-Length: 3\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Limits{}, ErrLengthAndChunked},
		{"in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Limits{}, ErrTransferEncoding},
		{"in a trailer", trailerTE + "Transfer-Encoding: gzip, chunked\r\n\r\n", Limits{}, ErrTrailer},
		{"codings over MaxCodingsBytes", head + "Transfer-Encoding: " + long[:len(long)/2] + ", " + long[len(long)/2:] + ", chunked\r\n\r\n", Limits{}, ErrTransferEncoding},
	}
	for _, tt := range refused {
		f.Limits = tt.limits
		if r := checkSplits(t, &f, tt.in); !errors.Is(r.err, tt.err) {
			t.Errorf("%s: %v, want %v", tt.name, r, tt.err)
		}
	}
	// At MaxCodingsBytes the codings are taken.
	at := strings.Repeat("y", MaxCodingsBytes)
	f.Limits = Limits{}
	if r := checkSplits(t, &f, head+"Transfer-Encoding: "+at+", chunked\r\n"+body); r.err != nil || r.codings[0] != at {
		t.Fatalf("codings at their limit: %v", r)
	}
	// With limits.dangerous_framing: tolerate, Content-Length goes and the
	// codings stay.
	f.Limits = Limits{TolerateDangerousFraming: true}
	r := checkSplits(t, &f, head+"Content-Length: 3\r\nTransfer-Encoding: gzip, chunked\r\n"+body+get)
	if r.err != nil || len(r.msgs) != 1 || r.codings[0] != "gzip" || !r.idle {
		t.Fatalf("tolerated Content-Length with codings: %v", r)
	}
}

// wantChunkedHello checks that fasthttp reads msg, what the framer passed on,
// as a chunked request whose body is "hello".
func wantChunkedHello(t *testing.T, msg string) {
	t.Helper()
	var req fasthttp.Request
	if err := req.Read(bufio.NewReader(strings.NewReader(msg))); err != nil {
		t.Fatalf("fasthttp on %q: %v", msg, err)
	}
	if string(req.Body()) != "hello" || req.Header.ContentLength() != -1 {
		t.Fatalf("fasthttp read body %q, length %d", req.Body(), req.Header.ContentLength())
	}
}
