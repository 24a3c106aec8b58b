package h1

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// FuzzFramer feeds arbitrary bytes to the framer, split at a fuzzed point and
// byte by byte, and checks that:
//   - the split does not change the messages found or the error;
//   - every message it accepts, framed again alone, is one whole message;
//   - fasthttp's parser, given an accepted message, either rejects it or reads
//     exactly its bytes, with the body the framing says: the two never
//     disagree on where a request ends (the smuggling property);
//   - with line limits set from the fuzzed limit (0: the defaults), no line
//     of an accepted message's request-line, header or trailer section is
//     longer than its limit, wherever the stream was split;
//   - with an odd limit, obs-folds are unfolded (Limits.UnfoldObsFold), and
//     no accepted header section holds one either way;
//   - with limit%4 >= 2, Limits.TolerateDangerousFraming: no message passed
//     on holds a bare LF in its header section, none is framed by both
//     Content-Length and Transfer-Encoding for fasthttp, and nothing after
//     a MustClose message is read;
//   - a server reading the stream through a Conn (split at the fuzzed point)
//     reads exactly the accepted messages with the discarded trailer lines
//     taken out (DropTail), and no trailer section it reads holds a field
//     fasthttp refuses there (the fields the framer discards never reach
//     the origin);
//   - a message passed on names no transfer coding but chunked, once, in
//     one Transfer-Encoding line: the codings before it (identity aside)
//     are in Codings, and only a chunked message has any.
func FuzzFramer(f *testing.F) {
	for _, s := range []string{
		get, post, get + "\r\n" + post + get,
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;a=\"b\"\r\nabc\r\n0\r\nX: y\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nFoo: bar\r\n Content-Length: 3\r\n\r\nabc",
		"GET / HTTP/1.1\r\nHost: a\r\nDummy: x\nContent-Length: 3\r\n\r\nabc",
		"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
		"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
		"GET / HTTP/1.0\r\nContent-Length: 2\r\n\r\nab",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nVary: *\r\nContent-Type: text/plain\r\nX-Forwarded-For: 1\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nCookie: a\r\n b\r\nHost: c\r\nX-Real-IP: d\r\n\r\n" + get,
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked\r\n\r\n1\r\na\r\n0\r\n\r\n" + get,
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\nX: 1\r\ntransfer-encoding: Identity,chunked\r\n\r\n1\r\na\r\n0\r\n\r\n" + post,
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
		// Codings before chunked (Codings).
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + get,
		"POST /chunked HTTP/1.1\r\nTransfer-Encoding: gzip,chunked\r\nHost: a\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n" + post,
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Deflate\r\nX: 1\r\ntransfer-encoding: identity,BR ,chunked\r\n\r\n1\r\na\r\n0\r\nX-T: 1\r\n\r\n" + get,
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip;q=1, chunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: x-a, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + get,
		// Limits.TolerateDangerousFraming (limit 14 and 15 below).
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: -1\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + get,
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + post,
		"GET / HTTP/1.1\r\nHost: x\r\nNewline: a\nContent-Length: 26\r\nX-Forwarded-By: broken-proxy\r\n\r\nGET / HTTP/1.1\nHost: x\r\n\r\n",
	} {
		f.Add([]byte(s), uint16(len(s)/2), uint8(0))
		f.Add([]byte(s), uint16(len(s)/3), uint8(14))
	}
	fold := "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\tc\r\n\r\n" + post
	f.Add([]byte(fold), uint16(30), uint8(15))
	f.Add([]byte(fold), uint16(29), uint8(255))
	f.Fuzz(func(t *testing.T, in []byte, split uint16, limit uint8) {
		var fr RequestFramer
		if limit > 0 {
			fr.Limits = Limits{MaxRequestLineBytes: int(limit), MaxFieldLineBytes: int(limit)/2 + 1, UnfoldObsFold: limit%2 == 1,
				TolerateDangerousFraming: limit%4 >= 2}
		}
		whole := frameAll(&fr, string(in), nil)
		cut := int(split) % (len(in) + 1)
		for _, sizes := range [][]int{{1}, {max(cut, 1), len(in) + 1}} {
			if got := frameAll(&fr, string(in), sizes); got.String() != whole.String() {
				t.Fatalf("split %v: %v\nwhole: %v", sizes, got, whole)
			}
		}
		var m memConn
		m.chunks = [][]byte{append([]byte(nil), in[:cut]...), append([]byte(nil), in[cut:]...)}
		read, _ := readAll(NewConn(&m, fr.Limits), 64)
		if passed := strings.Join(whole.out, ""); !strings.HasPrefix(read, passed) || whole.err == nil && whole.idle && read != passed {
			t.Fatalf("through a Conn (split at %d) the server reads %q; framed %v", cut, read, whole)
		}
		for i, m := range whole.out {
			if whole.framing[i] == Chunked {
				checkNoDiscardedTrailer(t, m)
			}
		}
		for i, m := range whole.msgs {
			again := frameAll(&fr, m, nil)
			if again.err != nil || len(again.msgs) != 1 || again.msgs[0] != m {
				t.Fatalf("message %q framed again: %v", m, again)
			}
			checkFasthttpAgrees(t, whole.out[i], whole.framing[i])
			if head, _, _ := strings.Cut(m, "\r\n\r\n"); strings.Contains(head, "\r\n ") || strings.Contains(head, "\r\n\t") {
				t.Fatalf("accepted %q with an obs-fold", m)
			}
			if head, _, _ := strings.Cut(whole.out[i], "\r\n\r\n"); strings.Contains(strings.ReplaceAll(head, "\r\n", ""), "\n") {
				t.Fatalf("passed on %q with a bare LF in its header section", whole.out[i])
			}
			if limit > 0 {
				checkLineLimits(t, m, whole.framing[i], fr.Limits)
			}
			checkOnlyChunked(t, whole.out[i], whole.framing[i], whole.codings[i])
		}
	})
}

// checkFasthttpAgrees parses one accepted message with fasthttp, followed by
// a sentinel request: fasthttp must either fail or end exactly where the
// framer did. It reports whether fasthttp parsed it.
func checkFasthttpAgrees(t *testing.T, msg string, framing Framing) bool {
	t.Helper()
	const next = "NEXT / HTTP/1.1\r\nHost: n\r\n\r\n"
	br := bufio.NewReaderSize(strings.NewReader(msg+next), 64<<10)
	var req fasthttp.Request
	if err := req.Read(br); err != nil {
		return false // fasthttp is stricter here: the edge answers 400, nothing forwarded
	}
	rest, _ := br.Peek(br.Buffered())
	if !bytes.HasPrefix(rest, []byte("NEXT ")) && !(len(rest) == 0 && req.Header.IsConnect()) {
		t.Fatalf("fasthttp and the framer disagree on where %q ends (framing %v): left %q", msg, framing, rest)
	}
	var second fasthttp.Request
	if err := second.Read(br); err != nil || string(second.Header.Method()) != "NEXT" {
		t.Fatalf("after %q fasthttp reads %q, %v", msg, second.Header.Method(), err)
	}
	return true
}

// checkLineLimits checks the lines of an accepted message's request-line and
// header section (and, chunked, its trailer section) against the limits.
func checkLineLimits(t *testing.T, msg string, framing Framing, l Limits) {
	t.Helper()
	head, rest, _ := strings.Cut(msg, "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	for framing == Chunked {
		// Walk the chunks (the message is well-formed) to the trailer section.
		sizeLine, after, _ := strings.Cut(rest, "\r\n")
		hex, _, _ := strings.Cut(sizeLine, ";")
		size, err := strconv.ParseInt(hex, 16, 64)
		if err != nil {
			t.Fatalf("accepted %q: chunk size line %q", msg, sizeLine)
		}
		if size > 0 {
			rest = after[size+2:]
			continue
		}
		if tr := strings.TrimSuffix(after, "\r\n"); tr != "" {
			lines = append(lines, strings.Split(strings.TrimSuffix(tr, "\r\n"), "\r\n")...)
		}
		break
	}
	for k, line := range lines {
		bound := l.MaxFieldLineBytes
		if k == 0 {
			bound = l.MaxRequestLineBytes
		}
		if len(line) > bound {
			t.Fatalf("accepted %q: line %q is %d bytes, over %d", msg, line, len(line), bound)
		}
	}
}

// checkNoDiscardedTrailer checks that the trailer section of a chunked message
// as passed on holds no field the framer discards, and that fasthttp, if it
// reads the message, does not refuse a trailer field.
func checkNoDiscardedTrailer(t *testing.T, msg string) {
	t.Helper()
	_, rest, _ := strings.Cut(msg, "\r\n\r\n")
	for {
		sizeLine, after, _ := strings.Cut(rest, "\r\n")
		hex, _, _ := strings.Cut(sizeLine, ";")
		size, err := strconv.ParseInt(hex, 16, 64)
		if err != nil {
			t.Fatalf("passed on %q: chunk size line %q", msg, sizeLine)
		}
		if size > 0 {
			rest = after[size+2:]
			continue
		}
		for _, line := range strings.Split(strings.TrimSuffix(after, "\r\n"), "\r\n") {
			name, _, _ := strings.Cut(line, ":")
			if name != "" && badTrailer([]byte(strings.ToLower(name))[:min(len(name), nameCap)], len(name)) {
				t.Fatalf("passed on %q with trailer field %q", msg, name)
			}
		}
		break
	}
	var req fasthttp.Request
	if err := req.Read(bufio.NewReader(strings.NewReader(msg))); err != nil && strings.Contains(err.Error(), "trailer") {
		t.Fatalf("fasthttp on %q: %v", msg, err)
	}
}

// checkOnlyChunked checks that a message as passed on names no transfer
// coding but chunked: at most one Transfer-Encoding line, whose value is
// chunked alone, and only for a chunked message; codings (Codings) only on a
// chunked one, each a lower-case token, none of them chunked or identity.
func checkOnlyChunked(t *testing.T, msg string, framing Framing, codings string) {
	t.Helper()
	head, _, _ := strings.Cut(msg, "\r\n\r\n")
	te := 0
	for _, line := range strings.Split(head, "\r\n")[1:] {
		name, value, _ := strings.Cut(line, ":")
		if !strings.EqualFold(name, "transfer-encoding") {
			continue
		}
		te++
		if !strings.EqualFold(strings.Trim(value, " \t"), "chunked") {
			t.Fatalf("passed on %q with Transfer-Encoding %q", msg, value)
		}
	}
	if te > 1 || te == 1 && framing != Chunked {
		t.Fatalf("passed on %q (framing %v) with %d Transfer-Encoding lines", msg, framing, te)
	}
	if codings == "" {
		return
	}
	if framing != Chunked {
		t.Fatalf("codings %q on a message framed %v", codings, framing)
	}
	for _, c := range strings.Split(codings, ", ") {
		if c == "" || c == "chunked" || c == "identity" || c != strings.ToLower(c) || strings.ContainsAny(c, " \t,;\"") {
			t.Fatalf("codings %q of %q", codings, msg)
		}
	}
}
