//go:build linux

package evloop

import (
	"bytes"
	"time"

	"github.com/valyala/fasthttp"
)

// Light answers (issue 11, Config.LightAnswers).
//
// fasthttp's path for an origin's answer copies it twice and parses every
// field: the read buffer is parsed into a Response (each field copied into the
// header's arena, the body into the Response's buffer), the handler edits it,
// and Response.Write serializes it again into the client's output. For the
// ordinary answer (a final status with its standard reason phrase,
// Content-Length, a Content-Type, fields written the canonical way) the loop
// instead scans the header section once, puts into ctx.Response only what
// fasthttp serializes in fixed places (status, Server, Content-Type,
// Content-Length) plus the origin's Date, so the handler's checks see it, and
// keeps the offsets of the other fields and of the body. When the answer goes
// out, the edited ctx.Response's header block is serialized by fasthttp as
// before and the origin's other fields are spliced in where fasthttp would have
// put them (right after Content-Length, ahead of what the handler added), and
// the body follows: one copy from the read buffer to the client's output.
//
// The client receives the same bytes as on fasthttp's path; anything outside
// the ordinary shape (chunked or close-delimited bodies, HEAD, 1xx, 204, 304,
// hop-by-hop fields, Set-Cookie, Content-Encoding, a field the handler sets in
// place, obs-fold, odd spacing or case, non-ASCII bytes, repeated framing
// fields, a header section near the size limit) takes fasthttp's path, so
// malformed answers get fasthttp's verdict, as before (FuzzLightAnswer,
// TestLightAnswerTable).

// maxLightRuns bounds the runs of consecutive origin fields a light answer
// copies (fields the loop leaves out or moves split runs); more take
// fasthttp's path.
const maxLightRuns = 16

type span struct{ off, end int }

// lightAnswer is a loop's one light answer in flight: from the read that
// completed it to respond, all on the loop, no other answer is read.
type lightAnswer struct {
	ctx  *fasthttp.RequestCtx // whose answer; nil when none
	data []byte               // the origin's bytes
	hold *[]byte              // the pooled buffer data lives in, if not the loop's
	runs [maxLightRuns]span   // origin fields copied as they are
	nrun int
	body span
	code int
	cl   int
	hdr  []byte // scratch: ctx.Response's header block
}

// maxLightFields bounds the fields of a light answer that fasthttp would keep
// in its header's list (all but Server, Content-Type and Content-Length).
const maxLightFields = 32

// lightField is one field line of the origin's header section.
type lightField struct {
	span
	date bool
	drop int8 // index in Config.DropAnswerFields, or -1
}

// lightScan is what scanLight found.
type lightScan struct {
	code               int
	cl                 int
	hdrEnd             int
	server, ctype      span
	date               span
	fields             [maxLightFields]lightField
	nf                 int
	runs               [maxLightRuns]span
	nrun               int
	hasServer, hasDate bool
}

const (
	lightNo   = iota // not ordinary: fasthttp's path
	lightNeed        // ordinary so far, incomplete
	lightDone        // a whole ordinary answer
)

// scanLight reads b as an ordinary answer. It returns lightNeed with the bytes
// worth waiting for, lightDone with the answer's length, or lightNo. eof: the
// origin closed after b. maxHdr bounds the header section, maxBody the body.
func scanLight(b []byte, eof bool, maxHdr, maxBody int, drop, set []string, s *lightScan) (state, n int) {
	// Status line: "HTTP/1.1 ddd Reason\r\n", the reason fasthttp would write.
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		if eof || len(b) > 64 {
			return lightNo, 0
		}
		return lightNeed, len(b) + 1
	}
	if nl < 14 || string(b[:9]) != "HTTP/1.1 " || b[12] != ' ' || b[nl-1] != '\r' {
		return lightNo, 0
	}
	code := 0
	for _, c := range b[9:12] {
		if c < '0' || c > '9' {
			return lightNo, 0
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code > 599 || code == fasthttp.StatusNoContent || code == fasthttp.StatusNotModified ||
		string(b[13:nl-1]) != fasthttp.StatusMessage(code) {
		return lightNo, 0
	}
	s.code, s.cl, s.nf, s.nrun, s.hasServer, s.hasDate = code, -1, 0, 0, false, false
	var hasCT bool
	pos := nl + 1
	for {
		if pos > maxHdr {
			return lightNo, 0
		}
		rest := b[pos:]
		if len(rest) >= 2 && rest[0] == '\r' && rest[1] == '\n' {
			pos += 2
			break
		}
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			if eof {
				return lightNo, 0
			}
			return lightNeed, len(b) + 1
		}
		if nl < 4 || rest[nl-1] != '\r' {
			return lightNo, 0
		}
		line := rest[:nl-1]
		colon := canonicalName(line)
		if colon <= 0 || colon+2 >= len(line) || line[colon+1] != ' ' || !plainValue(line[colon+2:]) {
			return lightNo, 0
		}
		name, v := line[:colon], span{pos + colon + 2, pos + len(line)}
		end := pos + nl + 1
		switch string(name) {
		case "Content-Length":
			if s.cl >= 0 {
				return lightNo, 0
			}
			if s.cl = decimal(line[colon+2:]); s.cl < 0 {
				return lightNo, 0
			}
		case "Content-Type":
			if hasCT {
				return lightNo, 0
			}
			hasCT, s.ctype = true, v
		case "Server":
			if s.hasServer {
				return lightNo, 0
			}
			s.hasServer, s.server = true, v
		case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
			"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Set-Cookie", "Content-Encoding":
			return lightNo, 0
		default:
			// A field of fasthttp's list. Date stays in it (the handler
			// sees the first) but is not written: fasthttp's path sends
			// the server's own Date.
			if s.nf == maxLightFields || listed(set, name) >= 0 {
				return lightNo, 0
			}
			f := lightField{span: span{pos, end}, drop: int8(listed(drop, name))}
			if string(name) == "Date" {
				f.date = true
				if !s.hasDate {
					s.hasDate, s.date = true, v
				}
			}
			s.fields[s.nf] = f
			s.nf++
		}
		pos = end
	}
	if pos > maxHdr || s.cl < 0 || !hasCT || s.cl > maxBody || !s.order(len(drop)) {
		return lightNo, 0
	}
	s.hdrEnd = pos
	if pos+s.cl > len(b) {
		if eof {
			return lightNo, 0
		}
		return lightNeed, pos + s.cl
	}
	return lightDone, pos + s.cl
}

// canonicalName returns the index of the colon ending line's field name when
// the name is letters, digits and dashes in the form fasthttp normalizes to
// (each word capitalized), else -1.
func canonicalName(line []byte) int {
	up := true
	for i, c := range line {
		switch {
		case c == ':':
			return i
		case c == '-':
			up = true
			continue
		case c >= 'A' && c <= 'Z':
			if !up {
				return -1
			}
		case c >= 'a' && c <= 'z':
			if up {
				return -1
			}
		case c >= '0' && c <= '9':
		default:
			return -1
		}
		up = false
	}
	return -1
}

// plainValue: printable ASCII, no leading or trailing space (fasthttp would
// trim it), no tab.
func plainValue(v []byte) bool {
	if len(v) == 0 || v[0] == ' ' || v[len(v)-1] == ' ' {
		return false
	}
	for _, c := range v {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// decimal parses a Content-Length as fasthttp writes it back (no sign, no
// leading zero), or returns -1.
func decimal(v []byte) int {
	if len(v) == 0 || len(v) > 9 || (v[0] == '0' && len(v) > 1) {
		return -1
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// listed returns name's index in names, or -1.
func listed(names []string, name []byte) int {
	for i, s := range names {
		if string(name) == s {
			return i
		}
	}
	return -1
}

// order works out the runs of origin field lines to copy, in the order
// fasthttp's path writes them: the handler deletes each of the dropped names
// in turn (Config.DropAnswerFields' order), and fasthttp deletes a field by
// swapping the last one into its place, which moves that one up; then the
// Date fields are left out. It reports false when the runs do not fit.
func (s *lightScan) order(drops int) bool {
	f := s.fields[:s.nf]
	for d := 0; d < drops; d++ {
		n := len(f)
		for i := 0; i < n; i++ {
			if int(f[i].drop) == d {
				f[i], f[n-1] = f[n-1], f[i]
				n--
				i--
			}
		}
		f = f[:n]
	}
	s.nrun = 0
	for _, x := range f {
		switch {
		case x.date:
		case s.nrun > 0 && s.runs[s.nrun-1].end == x.off:
			s.runs[s.nrun-1].end = x.end
		case s.nrun == maxLightRuns:
			return false
		default:
			s.runs[s.nrun] = x.span
			s.nrun++
		}
	}
	return true
}

var (
	strContentLength = []byte("\r\nContent-Length: ")
)

// setLight makes ctx's answer the light answer scanned in data: ctx.Response
// gets the status and the fields fasthttp keeps apart, and the loop keeps the
// rest until respond. hold is the pooled buffer holding data, if any; it goes
// back to the pool with the answer.
func (l *loop) setLight(ctx *fasthttp.RequestCtx, data []byte, hold *[]byte, s *lightScan) {
	l.dropLight()
	resp := &ctx.Response
	// As frameResponse: a plain Reset, so the answer goes out with the
	// server's Date, as a forwarded answer does on the goroutine core.
	resp.Reset()
	h := &resp.Header
	h.SetStatusCode(s.code)
	if s.hasServer {
		h.SetServerBytes(data[s.server.off:s.server.end])
	}
	h.SetContentTypeBytes(data[s.ctype.off:s.ctype.end])
	h.SetContentLength(s.cl)
	// The handler adds a Date where an answer has none (the proxy's
	// ensureDate: formatting the clock and a Del per request), though
	// fasthttp's serializer writes the server's Date in its place anyway.
	// The loop's date of this second saves that work.
	// fasthttp's setters ignore Date ("managed automatically"); a field
	// named while the header announces it as a trailer is a plain one (the
	// trick of proxy/cache.SetDate).
	date := l.httpDate()
	if s.hasDate {
		date = data[s.date.off:s.date.end]
	}
	if h.SetTrailer(fasthttp.HeaderDate) == nil {
		h.AddBytesV(fasthttp.HeaderDate, date)
		_ = h.SetTrailer("")
	}
	a := &l.light
	a.ctx, a.data, a.hold = ctx, data, hold
	a.runs, a.nrun = s.runs, s.nrun
	a.body = span{s.hdrEnd, s.hdrEnd + s.cl}
	a.code, a.cl = s.code, s.cl
}

// lightFor reports whether ctx's answer is the loop's light answer and still
// what setLight made of it: a handler that replaced the answer (an error
// answer has a body) gets fasthttp's serializer.
func (l *loop) lightFor(ctx *fasthttp.RequestCtx) bool {
	a := &l.light
	if a.ctx == nil || a.ctx != ctx {
		return false
	}
	resp := &ctx.Response
	if resp.StatusCode() != a.code || resp.Header.ContentLength() != a.cl || len(resp.Body()) != 0 || resp.IsBodyStream() || resp.SkipBody {
		l.dropLight()
		return false
	}
	return true
}

// dropLight forgets the loop's light answer.
func (l *loop) dropLight() {
	a := &l.light
	if a.hold != nil {
		putBuf(a.hold)
	}
	a.ctx, a.data, a.hold, a.nrun = nil, nil, nil, 0
}

// writeLight appends ctx's light answer to out: ctx.Response's header block
// with the origin's other fields after its Content-Length line, then the
// body.
func (l *loop) writeLight(out []byte, ctx *fasthttp.RequestCtx) []byte {
	a := &l.light
	a.hdr = ctx.Response.Header.AppendBytes(a.hdr[:0])
	split := len(a.hdr) - 2 // before the blank line, if no Content-Length line
	if i := bytes.Index(a.hdr, strContentLength); i >= 0 {
		if j := bytes.IndexByte(a.hdr[i+2:], '\n'); j >= 0 {
			split = i + 2 + j + 1
		}
	}
	out = append(out, a.hdr[:split]...)
	for _, r := range a.runs[:a.nrun] {
		out = append(out, a.data[r.off:r.end]...)
	}
	out = append(out, a.hdr[split:]...)
	out = append(out, a.data[a.body.off:a.body.end]...)
	l.dropLight()
	l.lights.Add(1)
	return out
}

// httpDate is the loop's clock as an HTTP date, formatted once a second.
func (l *loop) httpDate() []byte {
	if sec := l.now / int64(time.Second); sec != l.dateSec || len(l.date) == 0 {
		l.date = fasthttp.AppendHTTPDate(l.date[:0], time.Unix(sec, 0))
		l.dateSec = sec
	}
	return l.date
}

// DropAnswer tells the loop running ctx that ctx.Response no longer holds the
// origin's answer (the handler answers with an error instead). Not needed
// for correctness (respond checks the answer), but it returns the buffer at
// once. Safe to call on any ctx.
func DropAnswer(ctx *fasthttp.RequestCtx) {
	if c, ok := ctx.Conn().(*conn); ok && c.l != nil && c.l.light.ctx == ctx {
		c.l.dropLight()
	}
}
