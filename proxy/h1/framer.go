package h1

import "math"

// Framing is how a request's body is delimited (RFC 9112 §6.3).
type Framing uint8

const (
	// NoBody: neither Content-Length nor Transfer-Encoding, so the body is
	// empty (§6.3 point 7); the message ends with its header section.
	NoBody Framing = iota
	// Length: Content-Length bytes follow the header section (§6.3 point 5).
	Length
	// Chunked: the body is in the chunked coding, ended by a zero-size chunk
	// and the trailer section (§7.1).
	Chunked
)

func (f Framing) String() string {
	switch f {
	case Length:
		return "content-length"
	case Chunked:
		return "chunked"
	}
	return "none"
}

// Default limits, used where a Limits field is zero.
const (
	DefaultMaxHeaderBytes = 16 << 10
	// DefaultMaxRequestLineBytes admits a request-target of 8 KiB (the edge's
	// limits.max_uri_bytes) with room for the method, the spaces and the
	// version: the URI limit (414 from the handler) decides for any usual
	// method, and a longer line gets 414 from the framer.
	DefaultMaxRequestLineBytes = 8<<10 + 32
	// DefaultMaxFieldLineBytes is Apache's LimitRequestFieldSize (8190),
	// also what fits nginx's 8 KiB large_client_header_buffers with its CRLF.
	DefaultMaxFieldLineBytes = 8190
	DefaultMaxHeaders        = 100
	DefaultMaxChunkExtBytes  = 1 << 10
	// MaxChunkSizeDigits bounds a chunk size line's hex digits (leading zeros
	// included): 16 digits cover int64, more are rejected as ErrChunkSize.
	MaxChunkSizeDigits = 16
	// MaxTransferEncodingLine bounds a Transfer-Encoding field line, its CRLF
	// not counted ("Transfer-Encoding: identity, chunked" is 36 bytes): past
	// it, ErrTransferEncoding. A line that names no chunked is dropped
	// (HeaderDropped), so a caller passing bytes on holds the line back until
	// its end (Pending): this bounds what it holds.
	MaxTransferEncodingLine = 128
	// MaxCodingsBytes bounds the transfer codings a request names before
	// chunked, as Codings returns them ("gzip, x-custom"): past it,
	// ErrTransferEncoding.
	MaxCodingsBytes = 64
)

// Limits bound what a RequestFramer accepts. A zero field takes its default.
type Limits struct {
	// MaxHeaderBytes bounds the empty lines before the request-line, the
	// request-line and the header section together, including the final CRLF;
	// the trailer section has a bound of its own of the same size. Past it:
	// ErrHeaderTooLarge (431). Default DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// MaxRequestLineBytes bounds the request-line, its CRLF not counted (as
	// Apache's LimitRequestLine). Past it: ErrRequestLineTooLong (414).
	// Default DefaultMaxRequestLineBytes.
	MaxRequestLineBytes int
	// MaxFieldLineBytes bounds one field line of the header or the trailer
	// section, its CRLF not counted (as Apache's LimitRequestFieldSize). Past
	// it: ErrFieldTooLarge (431). Default DefaultMaxFieldLineBytes.
	MaxFieldLineBytes int
	// MaxHeaders bounds the field lines of the header section, and separately
	// of the trailer section. Past it: ErrTooManyHeaders (431). Default
	// DefaultMaxHeaders.
	MaxHeaders int
	// MaxChunkExtBytes bounds the chunk extensions of one chunk size line.
	// Past it: ErrChunkExtension (400). Default DefaultMaxChunkExtBytes.
	MaxChunkExtBytes int
	// UnfoldObsFold replaces each obsolete line folding (obs-fold: a field
	// line's CRLF followed by SP or HTAB, §5.2) with SP instead of refusing
	// it (ErrObsFold): Scan overwrites the fold's CR and LF in b with two SP,
	// so the bytes passed on hold one field line with the same length, and an
	// origin never sees a fold. A fold whose CRLF an earlier Scan consumed is
	// reported by UnfoldedBefore; FoldPending says when the last bytes of a
	// call may still become one. Folds stay refused in Content-Length,
	// Transfer-Encoding and Host (the fields the framer reads), and before
	// the first field of a section (§2.2).
	UnfoldObsFold bool
	// TolerateDangerousFraming accepts two framings a strict recipient
	// refuses (limits.dangerous_framing: tolerate; gunicorn's
	// tolerate_dangerous_framing), in the forms RFC 9110 and 9112 allow, and
	// marks the message MustClose: the caller closes the connection after
	// answering it, so nothing a client sends after such a message is read.
	//   - Content-Length with Transfer-Encoding (RFC 9112 §6.1, §6.3 rule 3:
	//     a server MAY frame by Transfer-Encoding alone and MUST close after
	//     responding): the body is framed by Transfer-Encoding, and a
	//     Content-Length line (whatever its value) that comes after
	//     Transfer-Encoding or is not a valid length is dropped from the
	//     bytes passed on (HeaderDropped); a valid one before it is left to
	//     fasthttp, which frames by Transfer-Encoding too and forwards no
	//     Content-Length with a chunked body. Never both reach an origin.
	//     Under this setting a Content-Length line is bounded like a
	//     Transfer-Encoding line (MaxTransferEncodingLine), since a caller
	//     holds it back until its end (Pending).
	//   - a bare LF inside a header field's value (RFC 9110 §5.5: a recipient
	//     of CR, LF or NUL in a field value MUST reject the message or
	//     replace each with SP before processing or forwarding it): Scan
	//     writes SP over it in b, so the line stays one field line, as
	//     gunicorn reads it, and no origin ever sees the LF. Not in
	//     Content-Length, Transfer-Encoding or Host (the fields the framer
	//     reads), not in a trailer section, never as a line end.
	TolerateDangerousFraming bool
	// MaxBodyBytes bounds a body's length (a Content-Length, or the chunk data
	// of a chunked body); past it: ErrBodyTooLarge (413). Zero or negative
	// means no bound (the goroutine core leaves the body limit to fasthttp).
	MaxBodyBytes int64
}

// RequestFramer finds where each HTTP/1.1 request of a client's byte stream
// ends, rejecting any framing it does not accept. See the package doc for the
// contract. The zero value is ready to use (with default Limits); it must not
// be copied after first use, nor used from two goroutines at once.
type RequestFramer struct {
	// Limits may be set before the first Scan and between messages.
	Limits Limits
	// Preserve leaves Transfer-Encoding lines as sent: Scan does not write
	// SP over what comes before chunked (teRewrite), and Rewrote says where
	// it would have. For a caller that keeps a message's bytes and may frame
	// them again from the start (the event-loop core): the codings before
	// chunked must still be there the second time (Codings). Kept by Reset.
	Preserve bool

	err   *Error
	state uint8
	// trailer: the field states are reading the trailer section.
	trailer bool
	// drop: the current trailer field line is one the framer discards
	// (Discarded); dropTail and discarded are DropTail and Discarded.
	drop      bool
	dropTail  int
	discarded int
	// unfolded: bytes before this call's b that an obs-fold turned into SP.
	unfolded uint8
	// hdrDropped: Transfer-Encoding lines of the header section dropped
	// (HeaderDropped), and Content-Length lines with TolerateDangerousFraming.
	hdrDropped int
	// mustClose: the message was accepted through TolerateDangerousFraming
	// (MustClose).
	mustClose bool
	// clBad: with TolerateDangerousFraming, the Content-Length value is not
	// a length (refused at the end of the header section unless
	// Transfer-Encoding frames the body).
	clBad bool
	// rewFrom, rewTo: RewriteBefore.
	rewFrom, rewTo int
	// rewrote: a Transfer-Encoding line of the message had something before
	// chunked (Rewrote).
	rewrote bool
	// cod[:codLen] are the transfer codings named before chunked, other
	// than identity, lower-cased and joined with ", " (Codings); codEnd is
	// the end of the coding being read (its bytes after codLen, with the
	// separator; past len(cod) only counted); codOver: they did not fit.
	cod     [MaxCodingsBytes]byte
	codLen  int
	codEnd  int
	codOver bool

	skipped   int   // bytes of empty lines before the request-line
	hdr       int   // bytes of the current header (or trailer) section so far, skipped included
	line      int   // bytes of the current request-line or field line before this Scan call
	headerLen int   // request-line + header section length once known
	fields    int   // field lines of the current section
	pos       uint8 // position in "HTTP/x.y"
	mpos      uint8 // method bytes so far
	mConnect  bool  // the method so far is a prefix of CONNECT (then: is CONNECT)
	mOptions  bool  // the same for OPTIONS
	major     byte
	minor     byte

	framing   Framing
	length    int64 // Content-Length value
	remaining int64 // body bytes or chunk data bytes still to come
	body      int64 // chunk data bytes so far
	digits    uint8 // hex digits of the current chunk size
	extBytes  int   // chunk extension bytes of the current size line

	// The current field line.
	name    [nameCap]byte // lower-cased start of the name
	nameLen int
	kind    uint8
	vstate  uint8 // per-kind value parsing state
	tokLen  int   // Transfer-Encoding: current coding's length
	tokOK   bool  // Transfer-Encoding: current coding is a prefix of "chunked"
	tokID   bool  // Transfer-Encoding: current coding is a prefix of "identity"
	tokAt   int   // Transfer-Encoding: current coding's offset in the line
	// teLine: the current Transfer-Encoding line has a chunked coding, at
	// offset teChunkAt; its value starts at teVal (-1: not yet).
	teLine    bool
	teChunkAt int
	teVal     int
	// nonEmpty: the value has a byte other than whitespace.
	nonEmpty bool

	// The header section so far.
	clSeen    bool
	ctSeen    bool
	hostCount uint8
	hostEmpty bool
	teEmpty   bool // an empty element in a Transfer-Encoding list
	teSeen    bool
	teChunked int
	// teParams: a coding with parameters (identity;q=1): refused
	// (ErrUnsupportedCoding), since chunked takes none and the edge does not
	// read them for the others.
	teParams    bool
	teLastChunk bool
}

const nameCap = len("proxy-authorization")

const (
	kindOther uint8 = iota
	kindContentLength
	kindTransferEncoding
	kindHost
	// kindContentType is a singleton the framer only counts (startValue).
	kindContentType
	// kindMasked is content_length or transfer_encoding: refused (ErrMaskedFraming).
	kindMasked
)

// States. The order matters: sStart to sEndLF are the request-line, header and
// trailer sections, whose bytes count towards MaxHeaderBytes, and sSlash1 and
// sSlash2 follow each other.
const (
	sStart uint8 = iota
	sLeadLF
	sMethod
	sTarget0
	sTarget
	sTargetStar
	sScheme
	sSlash1
	sSlash2
	sVersion
	sLineLF
	sFieldStart
	sName
	sValueOWS
	sValue
	sValueLF
	sEndLF
	sChunkSize0
	sChunkSize
	sChunkSizeLF
	sExtName0
	sExtName
	sExtVal0
	sExtVal
	sExtQuoted
	sExtQuotedPair
	sExtQuotedEnd
	sExtNameBWS
	sExtValBWS
	sBodyLength
	sChunkData
	sChunkDataCR
	sChunkDataLF
	sDone
)

// Reset forgets everything, including a sticky error, and readies the framer
// for a new connection. Limits are kept.
func (f *RequestFramer) Reset() {
	l, p := f.Limits, f.Preserve
	*f = RequestFramer{Limits: l, Preserve: p}
}

// next starts a new message on the same connection.
func (f *RequestFramer) next() {
	l, p := f.Limits, f.Preserve
	*f = RequestFramer{Limits: l, Preserve: p}
}

// Codings are the transfer codings the current message's Transfer-Encoding
// names before chunked, identity left out, lower-cased (transfer coding
// names are case-insensitive, RFC 9112 §7) and joined with ", " in the
// order sent, across field lines ("gzip", "x-snappy, gzip"); empty for a
// plain chunked message. Valid once HeaderDone, until the next message
// starts; the bytes are the framer's own, overwritten then.
//
// Such a message is accepted (RFC 9112 §6.1, §7: a proxy need not decode a
// transfer coding to forward it while chunked is final): the framer reads
// it as chunked, and in the bytes it passes on the codings are taken out of
// the field as identity is (HeaderDropped, RewriteBefore), so fasthttp
// reads "chunked". The caller carries Codings with the request and sends
// the body on still coded, "Transfer-Encoding: <Codings>, chunked"; it must
// never forward the body as if it were not coded.
func (f *RequestFramer) Codings() []byte {
	if f.err != nil || f.headerLen == 0 {
		return nil
	}
	return f.cod[:f.codLen]
}

// Rewrote reports that a Transfer-Encoding line of the current message had
// something before chunked (identity or other codings, and commas), which
// Scan overwrites with SP in the bytes it scanned, or with Preserve would
// have: a Preserve caller passes the message on from a copy framed again
// without Preserve.
func (f *RequestFramer) Rewrote() bool { return f.rewrote }

// Err returns the framing error that stopped the framer, or nil.
func (f *RequestFramer) Err() error {
	if f.err == nil {
		return nil
	}
	return f.err
}

// Idle reports that no byte of a request has been consumed since the last
// complete message (or Reset), empty lines aside: an end of stream here is a
// clean close.
func (f *RequestFramer) Idle() bool {
	return f.err == nil && (f.state == sStart || f.state == sLeadLF || f.state == sDone)
}

// MustClose reports that the current message was accepted only through
// Limits.TolerateDangerousFraming (Content-Length with Transfer-Encoding, or a
// bare LF in a field value replaced with SP): the caller answers it and
// closes the connection (RFC 9112 §6.3 rule 3), reading nothing after it.
// Known once HeaderDone, and until the next message starts.
func (f *RequestFramer) MustClose() bool { return f.err == nil && f.mustClose }

// Skipped is how many bytes of empty lines (CRLF) came before the current
// message's request-line (§2.2). They are consumed by Scan but are not part of
// the message, and they are always the first bytes consumed for it.
func (f *RequestFramer) Skipped() int { return f.skipped }

// HeaderDone reports that the current message's request-line and header
// section are complete and valid, so HeaderLen, Framing, ContentLength and
// Version are known.
func (f *RequestFramer) HeaderDone() bool { return f.err == nil && f.headerLen > 0 }

// HeaderLen is the length of the request-line and header section including
// the final empty line, Skipped bytes not counted; 0 until HeaderDone.
func (f *RequestFramer) HeaderLen() int { return f.headerLen }

// Framing is the current message's body framing; valid once HeaderDone.
func (f *RequestFramer) Framing() Framing { return f.framing }

// ContentLength is the Content-Length of a Length-framed message, -1 for the
// others; valid once HeaderDone.
func (f *RequestFramer) ContentLength() int64 {
	if f.framing != Length {
		return -1
	}
	return f.length
}

// Version is the request's HTTP version (1.0 or 1.1) once the request-line is
// complete.
func (f *RequestFramer) Version() (major, minor int) { return int(f.major), int(f.minor) }

func (f *RequestFramer) fail(e *Error) *Error {
	f.err = e
	return e
}

// Scan consumes as much of b as belongs to the current message. done reports
// that the message ended at b[n-1]; the bytes from b[n:] belong to the next
// message, which the next call starts on (the accessors describe the finished
// message until then). With err != nil, b[n] is the byte that made the message
// invalid (or, for a rule checked at the end of the header section, its final
// LF); the error is sticky until Reset. Scan never keeps b.
func (f *RequestFramer) Scan(b []byte) (n int, done bool, err error) {
	if f.err != nil {
		return 0, false, f.err
	}
	if f.state == sDone {
		f.next()
	}
	f.unfolded, f.dropTail, f.rewFrom, f.rewTo = 0, 0, 0, 0
	st := f.state
	// b[runFrom:i] are this call's bytes of a discarded trailer field line
	// (f.drop); runFrom < 0 when the line's first bytes came before b.
	runFrom := 0
	maxHdr := f.Limits.MaxHeaderBytes
	if maxHdr <= 0 {
		maxHdr = DefaultMaxHeaderBytes
	}
	maxLine, maxField := f.Limits.MaxRequestLineBytes, f.Limits.MaxFieldLineBytes
	if maxLine <= 0 {
		maxLine = DefaultMaxRequestLineBytes
	}
	if maxField <= 0 {
		maxField = DefaultMaxFieldLineBytes
	}
	// Header and trailer section bytes are counted per call: b[from:i] are
	// this call's so far, and b[lim] would be one past MaxHeaderBytes.
	from, lim := 0, maxHdr-f.hdr
	// The same for the current line (the request-line or a field line, CRLF
	// not counted): b[lfrom:i] are this call's bytes of it, and b[llim] would
	// be one past its limit. Set again where each line starts.
	lfrom, llim := 0, maxField-f.line
	if st <= sVersion {
		llim = maxLine - f.line
	}
	i := 0
	for i < len(b) {
		c := b[i]
		if st <= sEndLF && i >= lim {
			return i, false, f.fail(ErrHeaderTooLarge)
		}
		if i >= llim && inLine(st) && c != '\r' {
			if st <= sVersion {
				return i, false, f.fail(ErrRequestLineTooLong)
			}
			return i, false, f.fail(ErrFieldTooLarge)
		}
		switch st {
		case sStart:
			switch {
			case c == '\r':
				f.skipped++
				st = sLeadLF
			case tchar[c]:
				f.line, lfrom, llim = 0, i, i+maxLine
				// A request-line within its limit fits b[i:llim+2] with its CRLF.
				if n := f.requestLine(b[i:min(len(b), lim, llim+2)]); n > 0 {
					i += n
					st = sFieldStart
					continue
				}
				f.mpos, f.mConnect, f.mOptions = 0, true, true
				st = sMethod
				continue // the method's first byte, read again in sMethod
			case c == '\n':
				return i, false, f.fail(ErrBareLF)
			case c == ' ' || c == '\t':
				return i, false, f.fail(ErrRequestLine)
			default:
				return i, false, f.fail(ErrMethod)
			}
		case sLeadLF:
			if c != '\n' {
				return i, false, f.fail(ErrBareCR)
			}
			f.skipped++
			st = sStart
		case sMethod:
			switch {
			case tchar[c]:
				// Methods are case-sensitive (RFC 9110 §9.1).
				f.mConnect = f.mConnect && f.mpos < 7 && c == "CONNECT"[f.mpos]
				f.mOptions = f.mOptions && f.mpos < 7 && c == "OPTIONS"[f.mpos]
				f.mpos++
			case c == ' ':
				f.mConnect = f.mConnect && f.mpos == 7
				f.mOptions = f.mOptions && f.mpos == 7
				st = sTarget0
			case c == '\r' || c == '\n' || c == '\t':
				return i, false, f.fail(ErrRequestLine)
			default:
				return i, false, f.fail(ErrMethod)
			}
		case sTarget0:
			// The four forms of §3.2: origin-form; authority-form, only for
			// CONNECT (a host name, an IPv4 address or an IP literal, then a
			// port); absolute-form, a scheme then "://"; asterisk-form, only
			// for OPTIONS. fasthttp refuses the others too.
			switch {
			case c == '/':
				st = sTarget
			case f.mConnect && (isAlpha(c) || c >= '0' && c <= '9' || c == '['):
				st = sTarget
			case isAlpha(c):
				st = sScheme
			case c == '*' && f.mOptions:
				st = sTargetStar
			case c == ' ' || c == '\r' || c == '\n':
				return i, false, f.fail(ErrRequestLine)
			default:
				return i, false, f.fail(ErrTarget)
			}
		case sTarget:
			// The hot part of the request-line: run through the target.
			j := i + targetRun(b[i:max(i, min(len(b), lim, llim))])
			if j > i {
				i = j
				continue
			}
			switch c {
			case ' ':
				st = sVersion
			case '\r', '\n':
				return i, false, f.fail(ErrRequestLine)
			default:
				return i, false, f.fail(ErrTarget)
			}
		case sTargetStar:
			if c != ' ' {
				return i, false, f.fail(ErrTarget)
			}
			st = sVersion
		case sScheme:
			switch {
			case isAlpha(c) || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.':
			case c == ':':
				st = sSlash1
			default:
				return i, false, f.fail(ErrTarget)
			}
		case sSlash1, sSlash2:
			if c != '/' {
				return i, false, f.fail(ErrTarget)
			}
			if st++; st > sSlash2 {
				st = sTarget
			}
		case sVersion:
			switch p := f.pos; {
			case p < 5:
				if c != "HTTP/"[p] {
					return i, false, f.fail(ErrRequestLine)
				}
			case p == 5 || p == 7:
				if c < '0' || c > '9' {
					return i, false, f.fail(ErrRequestLine)
				}
				if p == 5 {
					f.major = c - '0'
				} else {
					f.minor = c - '0'
					if f.major != 1 || f.minor > 1 {
						return i, false, f.fail(ErrVersion)
					}
				}
			case p == 6:
				if c != '.' {
					return i, false, f.fail(ErrRequestLine)
				}
			default: // p == 8
				switch c {
				case '\r':
					st = sLineLF
				case '\n':
					return i, false, f.fail(ErrBareLF)
				default:
					return i, false, f.fail(ErrRequestLine)
				}
			}
			f.pos++
		case sLineLF:
			if c != '\n' {
				return i, false, f.fail(ErrBareCR)
			}
			st = sFieldStart
		case sFieldStart:
			if f.drop && !((c == ' ' || c == '\t') && f.Limits.UnfoldObsFold) {
				// A discarded line ends (no obs-fold goes on with it): return
				// so that it is the tail of what this call consumed.
				f.drop = false
				if i > 0 {
					f.state, f.dropTail = st, i-runFrom
					f.hdr += i - from
					f.line += i - lfrom
					return i, false, nil
				}
			}
			switch {
			case tchar[c]:
				f.line, lfrom, llim = 0, i, i+maxField
				if n, e, at := f.fieldLine(b[i:min(len(b), lim, llim+2)]); e != nil {
					return i + at, false, f.fail(e)
				} else if n > 0 {
					if f.drop {
						runFrom = i
					}
					i += n
					continue
				}
				f.nameLen = 0
				f.addName(c)
				st = sName
			case c == '\r':
				st = sEndLF
			case (c == ' ' || c == '\t') && f.Limits.UnfoldObsFold && f.fields > 0 && f.kind == kindOther:
				// An obs-fold (§5.2): the line goes on, its CRLF (b[i-2:i],
				// or partly before b) becomes two SP. The line's length and
				// limit run on: f.line counts the CRLF (see below).
				for k := max(i-2, 0); k < i; k++ {
					b[k] = ' '
				}
				if i < 2 {
					f.unfolded = uint8(2 - i)
				}
				st = sValue
				continue // c, read again as value whitespace
			case c == ' ' || c == '\t':
				return i, false, f.fail(ErrObsFold)
			case c == '\n':
				return i, false, f.fail(ErrBareLF)
			default:
				return i, false, f.fail(ErrHeaderName)
			}
		case sName:
			j, end := i, max(i, min(len(b), lim, llim))
			for j < end && tchar[b[j]] {
				f.addName(b[j])
				j++
			}
			if j > i {
				if f.trailer && !f.drop && badTrailerPrefix(f.name[:min(f.nameLen, nameCap)]) {
					// X-Forwarded-*, X-Real-IP*: discarded whatever follows.
					f.drop, runFrom = true, j-f.nameLen
					f.discarded++
				}
				i = j
				continue
			}
			switch {
			case c == ':':
				kind := kindOther
				if f.nameLen <= nameCap {
					kind = classify(f.name[:f.nameLen])
				}
				if f.trailer && (kind == kindOther || kind == kindContentType) && (f.drop || badTrailer(f.name[:min(f.nameLen, nameCap)], f.nameLen)) {
					// Discarded (Discarded). Content-Length, Transfer-Encoding
					// and Host are refused instead (startValue).
					kind = kindOther
					if !f.drop {
						f.drop, runFrom = true, i-f.nameLen
						f.discarded++
					}
				}
				if e := f.startValue(kind); e != nil {
					return i, false, f.fail(e)
				}
				st = sValueOWS
			case c == '\n':
				return i, false, f.fail(ErrBareLF)
			default:
				return i, false, f.fail(ErrHeaderName)
			}
		case sValueOWS:
			if f.heldLine() && c != '\r' && f.line+i-lfrom >= MaxTransferEncodingLine {
				return i, false, f.fail(f.heldLineErr())
			}
			switch {
			case c == ' ' || c == '\t':
			case c == '\r':
				st = sValueLF
			case c == '\n' && f.lfToSP():
				b[i] = ' '
			case c == '\n':
				return i, false, f.fail(ErrBareLF)
			case fieldChar[c]:
				st, f.nonEmpty = sValue, true
				continue
			default:
				return i, false, f.fail(ErrHeaderValue)
			}
		case sValue:
			if f.kind == kindOther {
				j := i + fieldRun(b[i:max(i, min(len(b), lim, llim))])
				if j > i {
					i = j
					continue
				}
			}
			switch {
			case c == '\r':
				st = sValueLF
			case c == '\n' && f.lfToSP():
				b[i] = ' '
			case c == '\n':
				return i, false, f.fail(ErrBareLF)
			case !fieldChar[c]:
				return i, false, f.fail(ErrHeaderValue)
			case f.heldLine() && f.line+i-lfrom >= MaxTransferEncodingLine:
				return i, false, f.fail(f.heldLineErr())
			default:
				if e := f.valueByte(c, f.line+i-lfrom); e != nil {
					return i, false, f.fail(e)
				}
			}
		case sValueLF:
			if c != '\n' {
				return i, false, f.fail(ErrBareCR)
			}
			drop := f.drop
			if e := f.endValue(); e != nil {
				return i, false, f.fail(e)
			}
			if f.drop && !drop {
				// A dropped Transfer-Encoding line (HeaderDropped), from
				// its first byte, which may be before b (held: Pending).
				runFrom = lfrom - f.line
			}
			f.teRewrite(b, lfrom-f.line)
			st = sFieldStart
		case sEndLF:
			if c != '\n' {
				return i, false, f.fail(ErrBareCR)
			}
			f.hdr += i + 1 - from
			if f.trailer {
				f.state = sDone
				return i + 1, true, nil
			}
			if e := f.endHeader(); e != nil {
				return i, false, f.fail(e)
			}
			f.headerLen = f.hdr - f.skipped
			switch f.framing {
			case NoBody:
				f.state = sDone
				return i + 1, true, nil
			case Length:
				if f.length == 0 {
					f.state = sDone
					return i + 1, true, nil
				}
				f.remaining = f.length
				st = sBodyLength
			default:
				st = sChunkSize0
			}
		case sBodyLength:
			take := int64(len(b) - i)
			if take >= f.remaining {
				i += int(f.remaining)
				f.remaining = 0
				f.state = sDone
				return i, true, nil
			}
			f.remaining -= take
			f.state = st
			return len(b), false, nil
		case sChunkSize0:
			v := unhex[c]
			if v == 0xff {
				if c == '\n' {
					return i, false, f.fail(ErrBareLF)
				}
				return i, false, f.fail(ErrChunkSize)
			}
			f.remaining, f.digits, f.extBytes = int64(v), 1, 0
			st = sChunkSize
		case sChunkSize:
			if v := unhex[c]; v != 0xff {
				if f.digits >= MaxChunkSizeDigits || f.remaining > math.MaxInt64>>4 {
					return i, false, f.fail(ErrChunkSize)
				}
				f.digits++
				f.remaining = f.remaining<<4 | int64(v)
				break
			}
			switch c {
			case '\r':
				st = sChunkSizeLF
			case ';':
				st = sExtName0
			case '\n':
				return i, false, f.fail(ErrBareLF)
			default:
				// Whitespace after the size too: the BWS the grammar allows
				// before ";" is where parsers disagree (§7.1.1).
				return i, false, f.fail(ErrChunkSize)
			}
		case sChunkSizeLF:
			if c != '\n' {
				return i, false, f.fail(ErrBareCR)
			}
			if f.remaining == 0 {
				f.trailer = true
				f.hdr, f.fields = 0, 0
				from, lim = i+1, i+1+maxHdr
				st = sFieldStart
				break
			}
			if m := f.Limits.MaxBodyBytes; m > 0 && f.remaining > m-f.body {
				return i, false, f.fail(ErrBodyTooLarge)
			}
			f.body += f.remaining
			st = sChunkData
		case sExtName0, sExtName, sExtVal0, sExtVal, sExtQuoted, sExtQuotedPair, sExtQuotedEnd, sExtNameBWS, sExtValBWS:
			maxExt := f.Limits.MaxChunkExtBytes
			if maxExt <= 0 {
				maxExt = DefaultMaxChunkExtBytes
			}
			if f.extBytes++; f.extBytes > maxExt {
				return i, false, f.fail(ErrChunkExtension)
			}
			var e *Error
			if st, e = extByte(st, c); e != nil {
				return i, false, f.fail(e)
			}
		case sChunkData:
			take := int64(len(b) - i)
			if take >= f.remaining {
				i += int(f.remaining)
				f.remaining = 0
				st = sChunkDataCR
				continue
			}
			f.remaining -= take
			f.state = st
			return len(b), false, nil
		case sChunkDataCR:
			if c != '\r' {
				return i, false, f.fail(ErrChunkData)
			}
			st = sChunkDataLF
		case sChunkDataLF:
			if c != '\n' {
				return i, false, f.fail(ErrBareCR)
			}
			st = sChunkSize0
		}
		i++
	}
	if st <= sEndLF {
		f.hdr += i - from
	}
	if inLine(st) || st == sValueLF || st == sFieldStart {
		// A field line's CR and LF count too: an obs-fold may continue it.
		f.line += i - lfrom
	}
	if f.drop {
		f.dropTail = i - runFrom
	}
	f.state = st
	return i, false, nil
}

// DropTail is how many of the last bytes the last Scan call consumed belong to
// a trailer field line the framer discards (see Discarded) or a
// Transfer-Encoding line it drops (HeaderDropped): the caller drops
// them from what it passes on. When it is above the call's n, the line began
// before b, in bytes an earlier call left Pending: the caller drops those too.
// A discarded line is always the tail of a call's bytes: Scan returns early
// (done == false, n < len(b)) where one ends.
func (f *RequestFramer) DropTail() int { return f.dropTail }

// Discarded is how many trailer field lines of the current message the
// framer discarded so far: the fields fasthttp refuses in a trailer section
// (badTrailer: Content-Type, Authorization, Cookie, X-Forwarded-*, ...)
// except Content-Length, Transfer-Encoding and Host, which the framer still
// refuses (ErrTrailer: they frame and route the message, a sender MUST NOT
// put them in a trailer, RFC 9110 §6.5.1, and gunicorn refuses them too).
// RFC 9110 §6.5.1 forbids merging a trailer field into the header section
// unless it is known to be allowed there, and §6.5.2 lets a recipient that
// removes the chunked coding discard the trailer fields it does not pass on;
// fasthttp refuses the request instead, so the framer takes them out (the
// request is valid), and they never reach the origin. Such a line still
// counts towards the trailer section's limits (bytes, field lines, line
// length).
func (f *RequestFramer) Discarded() int { return f.discarded }

// HeaderDropped is how many Transfer-Encoding field lines of the current
// message's header section the framer dropped: lines that name no chunked
// coding, only identity, which names no coding at all (RFC 7230 took it out
// of the transfer coding registry; RFC 9112 §7 has none by that name), as in
// "Transfer-Encoding: identity" then "Transfer-Encoding: chunked" on the next
// line, or other codings, which Codings carries instead ("Transfer-Encoding:
// gzip" then "Transfer-Encoding: chunked"). fasthttp refuses a second Transfer-Encoding line and any value but
// chunked, so a caller passing the bytes on leaves these lines out, as it
// does the discarded trailer lines (DropTail, Pending; ScanMessage with
// compact). In the line that names chunked, identity and the commas are
// overwritten with SP (teRewrite, RewriteBefore). The origin then sees the
// body framed as the edge sends it (chunked, or a length), never identity.
func (f *RequestFramer) HeaderDropped() int { return f.hdrDropped }

// Pending is how many of the last bytes Scan consumed a caller that passes
// bytes on as soon as they are scanned (Conn) must hold back until the next
// call: the line end an obs-fold may still turn into SP (FoldPending), the
// name so far of a trailer field that may still be one the framer discards
// (at most len("proxy-authorization") bytes), or a header field line so far
// that is or may still be Transfer-Encoding, dropped or rewritten at its end
// (at most MaxTransferEncodingLine bytes and its CR).
func (f *RequestFramer) Pending() int {
	if f.err == nil && f.trailer && f.state == sName && !f.drop && f.nameLen <= nameCap && mayBeBadTrailer(f.name[:f.nameLen]) {
		return f.nameLen
	}
	if f.err == nil && !f.trailer && !f.drop {
		switch f.state {
		case sName:
			// A name that may still be Transfer-Encoding (lower-cased), or
			// Content-Length with TolerateDangerousFraming.
			if te := "transfer-encoding"; f.nameLen <= len(te) && string(f.name[:f.nameLen]) == te[:f.nameLen] {
				return f.nameLen
			}
			if cl := "content-length"; f.Limits.TolerateDangerousFraming && f.nameLen <= len(cl) && string(f.name[:f.nameLen]) == cl[:f.nameLen] {
				return f.nameLen
			}
		case sValueOWS, sValue, sValueLF:
			// A Transfer-Encoding line is dropped or rewritten at its end
			// (HeaderDropped, RewriteBefore), and so may a Content-Length
			// line be with TolerateDangerousFraming: all of it so far, at
			// most MaxTransferEncodingLine bytes and its CR.
			if f.heldLine() {
				return f.line
			}
		}
	}
	return f.FoldPending()
}

// ScanMessage is Scan carried on past the early returns at discarded trailer
// lines: it consumes b until the message ends, b is used up or an error, and
// moves the bytes it keeps together at b's front (the discarded lines out)
// when compact is set; w is their count (n without compact). Made for a
// caller that holds a whole message (the event-loop core): Skipped empty
// lines and Pending bytes at the end of b stay in b[:w].
func (f *RequestFramer) ScanMessage(b []byte, compact bool) (n, w int, done bool, err error) {
	for {
		k, d, e := f.Scan(b[n:])
		if e != nil {
			return n + k, w, false, e
		}
		drop := 0
		if compact {
			drop = min(f.DropTail(), k)
			if w != n {
				copy(b[w:], b[n:n+k-drop])
			}
		}
		w += k - drop
		n += k
		if d || n == len(b) {
			return n, w, d, nil
		}
	}
}

// UnfoldedBefore is how many bytes just before the last Scan call's b (1: a
// CR, 2: a CR and LF) were the start of an obs-fold that call unfolded: the
// caller must replace them with SP where it still holds them, as Scan did with
// the rest of the fold in b. Always 0 without Limits.UnfoldObsFold.
func (f *RequestFramer) UnfoldedBefore() int { return int(f.unfolded) }

// FoldPending is how many of the last bytes Scan consumed (1: the CR, 2: the
// CR and LF ending a field line) an obs-fold may still turn into SP, depending
// on the next byte: a caller that passes bytes on as soon as they are scanned
// (Conn) holds them back until then. Always 0 without Limits.UnfoldObsFold.
func (f *RequestFramer) FoldPending() int {
	if !f.Limits.UnfoldObsFold || f.err != nil || f.kind != kindOther || f.fields == 0 || f.drop {
		return 0
	}
	switch f.state {
	case sValueLF:
		return 1
	case sFieldStart:
		return 2
	}
	return 0
}

// heldLine reports that the current field line is one a caller holds back
// until its end (Pending): Transfer-Encoding, or Content-Length with
// TolerateDangerousFraming; both are bounded by MaxTransferEncodingLine.
func (f *RequestFramer) heldLine() bool {
	return !f.trailer && (f.kind == kindTransferEncoding || f.kind == kindContentLength && f.Limits.TolerateDangerousFraming)
}

// heldLineErr is the error for a held line over MaxTransferEncodingLine.
func (f *RequestFramer) heldLineErr() *Error {
	if f.kind == kindContentLength {
		return ErrContentLength
	}
	return ErrTransferEncoding
}

// lfToSP reports whether a bare LF in the current field value becomes SP
// (TolerateDangerousFraming: a header field the framer does not read), and
// marks the message MustClose when it does.
func (f *RequestFramer) lfToSP() bool {
	if !f.Limits.TolerateDangerousFraming || f.trailer || f.kind != kindOther || f.drop {
		return false
	}
	f.mustClose = true
	return true
}

// inLine reports that st reads the bytes of a request-line or a field line
// after its first, the ones its length limit applies to (the CR that ends it
// aside).
func inLine(st uint8) bool { return st >= sMethod && st <= sVersion || st >= sName && st <= sValue }

// extByte reads one byte of a chunk extension (§7.1.1):
//
//	*( BWS ";" BWS chunk-ext-name [ BWS "=" BWS ( token / quoted-string ) ] )
//
// Whitespace is taken where the grammar has BWS after the first ";" (after
// a ";", around "=", before the next ";"), as gunicorn and llhttp do; it is
// refused between the size and the first ";" (sChunkSize: fasthttp refuses it,
// and that is where parsers disagree) and at the end of the line, where no
// BWS is allowed.
func extByte(st uint8, c byte) (uint8, *Error) {
	switch st {
	case sExtName0:
		switch {
		case tchar[c]:
			st = sExtName
		case c == ' ' || c == '\t':
		case c == '\n':
			return st, ErrBareLF
		default:
			return st, ErrChunkExtension
		}
	case sExtName, sExtVal, sExtQuotedEnd, sExtNameBWS, sExtValBWS:
		switch {
		case tchar[c] && (st == sExtName || st == sExtVal):
		case c == '=' && (st == sExtName || st == sExtNameBWS):
			st = sExtVal0
		case c == ';':
			st = sExtName0
		case c == ' ' || c == '\t':
			if st == sExtName || st == sExtNameBWS {
				st = sExtNameBWS
			} else {
				st = sExtValBWS
			}
		case c == '\r' && st != sExtNameBWS && st != sExtValBWS:
			st = sChunkSizeLF
		case c == '\n':
			return st, ErrBareLF
		default:
			return st, ErrChunkExtension
		}
	case sExtVal0:
		switch {
		case tchar[c]:
			st = sExtVal
		case c == '"':
			st = sExtQuoted
		case c == ' ' || c == '\t':
		case c == '\n':
			return st, ErrBareLF
		default:
			return st, ErrChunkExtension
		}
	case sExtQuoted:
		switch {
		case c == '"':
			st = sExtQuotedEnd
		case c == '\\':
			st = sExtQuotedPair
		case !qdtext[c]:
			if c == '\n' {
				return st, ErrBareLF
			}
			return st, ErrChunkExtension
		}
	case sExtQuotedPair:
		if !fieldChar[c] {
			return st, ErrChunkExtension
		}
		st = sExtQuoted
	}
	return st, nil
}

func (f *RequestFramer) addName(c byte) {
	if f.nameLen < nameCap {
		f.name[f.nameLen] = c | 0x20 // tchar letters only; other tchars never match
	}
	f.nameLen++
}

// classify tells the fields the framer reads from the others; name is
// lower-cased already or not (ASCII letters are compared without case).
func classify(name []byte) uint8 {
	switch len(name) {
	case len("host"):
		if eqFold(name, "host") {
			return kindHost
		}
	case len("content-length"):
		if eqFold(name, "content-length") {
			return kindContentLength
		}
		// eqFold sets bit 0x20, which turns '_' into 0x7f (DEL, never in a
		// name): this matches content_length in any case.
		if eqFold(name, "content\x7flength") {
			return kindMasked
		}
	case len("transfer-encoding"):
		if eqFold(name, "transfer-encoding") {
			return kindTransferEncoding
		}
		if eqFold(name, "transfer\x7fencoding") {
			return kindMasked
		}
	case len("content-type"):
		if eqFold(name, "content-type") {
			return kindContentType
		}
	}
	return kindOther
}

// badTrailerNames are the trailer fields fasthttp (v1.78, isBadTrailer)
// refuses in a trailer section, besides the X-Forwarded* and X-Real-IP*
// prefixes (badTrailerPrefix). fasthttp refuses the whole request for one;
// the framer discards them instead (Discarded), on both cores (gunicorn's
// valid/012 sends Content-Type there), but for Content-Length,
// Transfer-Encoding and Host, which it refuses (ErrTrailer).
var badTrailerNames = [...]string{"authorization", "content-encoding", "content-length", "content-type", "content-range",
	"connection", "cookie", "expect", "host", "keep-alive", "location", "max-forwards",
	"proxy-connection", "proxy-authenticate", "proxy-authorization", "range", "set-cookie",
	"te", "trailer", "transfer-encoding", "www-authenticate"}

// badTrailer reports whether a trailer field, its lower-cased name starting
// with name and n bytes long, is one fasthttp refuses in a trailer section.
func badTrailer(name []byte, n int) bool {
	if n == len(name) {
		for _, s := range badTrailerNames {
			if string(name) == s {
				return true
			}
		}
	}
	return badTrailerPrefix(name)
}

// badTrailerPrefix reports whether a lower-cased name (or its start) begins
// with X-Forwarded or X-Real-IP, which fasthttp refuses in a trailer whatever
// follows.
func badTrailerPrefix(name []byte) bool {
	return len(name) >= 11 && string(name[:11]) == "x-forwarded" || len(name) >= 9 && string(name[:9]) == "x-real-ip"
}

// mayBeBadTrailer reports whether a trailer field name so far (lower-cased,
// complete or not) may still turn out to be one badTrailer names.
func mayBeBadTrailer(name []byte) bool {
	if badTrailerPrefix(name) {
		return true
	}
	for _, s := range badTrailerNames {
		if len(name) <= len(s) && s[:len(name)] == string(name) {
			return true
		}
	}
	return len(name) <= 11 && "x-forwarded"[:len(name)] == string(name) || len(name) <= 9 && "x-real-ip"[:len(name)] == string(name)
}

// badTrailerName is badTrailer for a name as sent (any case).
func badTrailerName(raw []byte) bool {
	var low [nameCap]byte
	k := min(len(raw), nameCap)
	for i := range k {
		low[i] = raw[i] | 0x20 // tchar letters only; other tchars never match
	}
	return badTrailer(low[:k], len(raw))
}

// eqFold compares a token with a lower-case name, ignoring ASCII case: |0x20
// maps only letters onto themselves, and the names hold no byte it could
// confuse ("-" stays "-", since 0x2d|0x20 == 0x2d).
func eqFold(b []byte, lower string) bool {
	for i := range len(b) {
		if b[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}

// startValue runs at a field's colon: it counts the line and applies the
// per-field rules of the fields the framer reads.
func (f *RequestFramer) startValue(kind uint8) *Error {
	maxFields := f.Limits.MaxHeaders
	if maxFields <= 0 {
		maxFields = DefaultMaxHeaders
	}
	if f.fields++; f.fields > maxFields {
		return ErrTooManyHeaders
	}
	switch kind {
	case kindMasked:
		return ErrMaskedFraming
	case kindContentType:
		if f.trailer {
			return ErrTrailer
		}
		if f.ctSeen {
			return ErrContentType
		}
		f.ctSeen, kind = true, kindOther
	}
	f.kind, f.vstate, f.nonEmpty = kind, 0, false
	if kind == kindOther {
		return nil
	}
	if f.trailer {
		return ErrTrailer
	}
	switch f.kind {
	case kindContentLength:
		if f.clSeen {
			return ErrContentLength
		}
		f.clSeen, f.length = true, 0
	case kindTransferEncoding:
		f.teSeen, f.teLine, f.teVal, f.teChunkAt = true, false, -1, -1
	case kindHost:
		if f.hostCount++; f.hostCount > 1 {
			return ErrHost
		}
	}
	return nil
}

// valueByte reads one byte (a field-vchar, SP or HTAB, never the first one
// whitespace) of a Content-Length, Transfer-Encoding or Host value; at is its
// offset in the field line.
func (f *RequestFramer) valueByte(c byte, at int) *Error {
	ws := c == ' ' || c == '\t'
	switch f.kind {
	case kindContentLength:
		// vstate 0: digits; 1: trailing whitespace.
		switch {
		case f.clBad:
		case f.vstate == 0 && c >= '0' && c <= '9':
			if f.length > (math.MaxInt64-9)/10 {
				return f.badLength()
			}
			f.length = f.length*10 + int64(c-'0')
		case ws:
			f.vstate = 1
		default:
			return f.badLength()
		}
	case kindHost:
		// vstate 0: host; 1: trailing whitespace.
		switch {
		case f.vstate == 0 && hostChar[c]:
		case ws:
			f.vstate = 1
		default:
			return ErrHost
		}
	case kindTransferEncoding:
		if f.teVal < 0 {
			f.teVal = at
		}
		// vstate 0: before a coding; 1: in it; 2: after it; 3: in parameters.
		switch f.vstate {
		case 0:
			switch {
			case tchar[c]:
				f.tokLen, f.tokOK, f.tokID, f.tokAt = 0, true, true, at
				f.codEnd = f.codLen
				if f.codLen > 0 {
					f.codByte(',')
					f.codByte(' ')
				}
				f.tokByte(c)
				f.vstate = 1
			case ws:
			case c == ',':
				f.teEmpty = true // ", chunked"
			default:
				return ErrTransferEncoding
			}
		case 1:
			switch {
			case tchar[c]:
				f.tokByte(c)
			case ws:
				f.endCoding()
				f.vstate = 2
			case c == ',':
				f.endCoding()
				f.vstate = 0
			case c == ';':
				f.endCoding()
				f.teParams, f.teLastChunk = true, false
				f.vstate = 3
			default:
				return ErrTransferEncoding
			}
		case 2:
			switch {
			case ws:
			case c == ',':
				f.vstate = 0
			case c == ';':
				f.teParams, f.teLastChunk = true, false
				f.vstate = 3
			default:
				return ErrTransferEncoding
			}
		default:
			// Parameters: the request is refused whatever follows, since
			// chunked takes none; only a later coding matters.
			if c == ',' {
				f.vstate = 0
			}
		}
	}
	return nil
}

// badLength is an invalid Content-Length value: refused at once, or with
// TolerateDangerousFraming noted (clBad), the line dropped, and refused at
// the end of the header section unless Transfer-Encoding frames the body.
func (f *RequestFramer) badLength() *Error {
	if !f.Limits.TolerateDangerousFraming {
		return ErrContentLength
	}
	f.clBad = true
	return nil
}

func (f *RequestFramer) tokByte(c byte) {
	if f.tokLen >= len("chunked") || c|0x20 != "chunked"[f.tokLen] {
		f.tokOK = false
	}
	if f.tokLen >= len("identity") || c|0x20 != "identity"[f.tokLen] {
		f.tokID = false
	}
	f.tokLen++
	if isAlpha(c) {
		c |= 0x20
	}
	f.codByte(c)
}

// codByte adds a byte to the coding being read (Codings); past the buffer
// it is only counted, and the coding refused if it turns out not to be
// chunked or identity (endCoding).
func (f *RequestFramer) codByte(c byte) {
	if f.codEnd < len(f.cod) {
		f.cod[f.codEnd] = c
	}
	f.codEnd++
}

// endCoding ends a transfer coding of a Transfer-Encoding list. identity
// (no parameters) is a no-op coding: it is left out (teRewrite, and the line
// is dropped when it names no chunked), but chunked must still come after it
// (§6.3: "chunked, identity" is refused). Any other coding is noted in
// Codings and left out of the bytes passed on the same way.
func (f *RequestFramer) endCoding() {
	switch {
	case f.tokOK && f.tokLen == len("chunked"):
		f.teChunked++
		f.teLastChunk, f.teLine, f.teChunkAt = true, true, f.tokAt
	case f.tokID && f.tokLen == len("identity"):
		f.teLastChunk = false
	default:
		f.teLastChunk = false
		if f.codEnd > len(f.cod) {
			f.codOver = true
			f.codEnd = f.codLen
			return
		}
		f.codLen = f.codEnd
		return
	}
	f.codEnd = f.codLen
}

// teRewrite runs at the end of a Transfer-Encoding line that is kept (it
// names chunked), the line starting at b[line] (line < 0: it began before b,
// in bytes a caller holds, Pending): what comes before chunked in its value is
// overwritten with SP. In a request the framer accepts that is identity and
// commas (anything else is refused at the end of the header section, whatever
// was overwritten), so fasthttp reads "chunked" with whitespace around it.
// The part before b is left to the caller (RewriteBefore). Done only once
// the line is whole, so that framing the rewritten bytes again (the event-loop
// core frames a message's bytes from its start on every read) gives the same
// result.
func (f *RequestFramer) teRewrite(b []byte, line int) {
	if f.kind != kindTransferEncoding || f.trailer || f.drop || !f.teLine || f.teChunkAt <= f.teVal {
		return
	}
	f.rewrote = true
	if f.Preserve {
		return
	}
	from, to := line+f.teVal, line+f.teChunkAt
	for k := max(from, 0); k < to; k++ {
		b[k] = ' '
	}
	if from < 0 {
		f.rewFrom, f.rewTo = from, min(to, 0)
	}
}

// RewriteBefore is the part of b's past, [from, to) relative to the last
// Scan call's b (both <= 0), that the call rewrote with SP but could not reach
// (a Transfer-Encoding line whose start a caller held back, Pending): the
// caller writes SP there too. Empty (0, 0) but for such a line.
func (f *RequestFramer) RewriteBefore() (from, to int) { return f.rewFrom, f.rewTo }

// endValue runs at a field line's end.
func (f *RequestFramer) endValue() *Error {
	switch f.kind {
	case kindContentLength:
		// An empty value, or whitespace only, is not a length.
		// sValue fails at once on a first byte that is not a digit.
		if !f.nonEmpty {
			if e := f.badLength(); e != nil {
				return e
			}
		}
		if f.Limits.TolerateDangerousFraming && (f.clBad || f.teSeen) {
			// Transfer-Encoding frames the body (or the request is
			// refused at the end of the header section): the line is
			// taken out of what is passed on.
			f.drop = true
			f.hdrDropped++
		}
	case kindTransferEncoding:
		switch f.vstate {
		case 0:
			f.teEmpty = true // "chunked," or an empty value
		case 1:
			f.endCoding()
		}
		if !f.teLine && !f.trailer {
			// No chunked: identity or other codings (noted in Codings),
			// or the request is refused at the end of the header section.
			// fasthttp takes one Transfer-Encoding line, so the line is
			// taken out of what it reads.
			f.drop = true
			f.hdrDropped++
		}
	case kindHost:
		f.hostEmpty = !f.nonEmpty
	}
	return nil
}

// endHeader applies the rules that need the whole header section: Host
// (§3.2) and the body framing (§6.1, §6.3).
func (f *RequestFramer) endHeader() *Error {
	if f.minor == 1 && (f.hostCount == 0 || f.hostEmpty) {
		return ErrMissingHost
	}
	if f.teSeen {
		switch {
		case f.clSeen && !f.Limits.TolerateDangerousFraming:
			return ErrLengthAndChunked
		case f.minor == 0, !f.teLastChunk, f.teChunked > 1, f.teEmpty, f.codOver:
			return ErrTransferEncoding
		case f.teParams:
			return ErrUnsupportedCoding
		}
		// With TolerateDangerousFraming, Transfer-Encoding frames the body
		// alone (§6.3 rule 3) and the connection closes after the answer.
		f.mustClose = f.mustClose || f.clSeen
		f.framing = Chunked
		return nil
	}
	if f.clBad {
		return ErrContentLength
	}
	if f.clSeen {
		if m := f.Limits.MaxBodyBytes; m > 0 && f.length > m {
			return ErrBodyTooLarge
		}
		f.framing = Length
	}
	return nil
}

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// Byte classes.
var (
	// tchar: token characters (RFC 9110 §5.6.2).
	tchar = makeClass(func(c byte) bool {
		return isAlpha(c) || c >= '0' && c <= '9' || c < 0x80 && c != 0 && contains("!#$%&'*+-.^_`|~", c)
	})
	// targetChar: what a request-target may hold: visible ASCII. The URI
	// grammar (RFC 3986) is narrower; fasthttp's URI parser judges the rest.
	targetChar = makeClass(func(c byte) bool { return c > 0x20 && c < 0x7f })
	// fieldChar: field-vchar, SP and HTAB (RFC 9110 §5.5), obs-text included.
	fieldChar = makeClass(func(c byte) bool { return c == ' ' || c == '\t' || c > 0x20 && c != 0x7f })
	// qdtext: quoted-string text (RFC 9110 §5.6.4).
	qdtext = makeClass(func(c byte) bool { return fieldChar[c] && c != '"' && c != '\\' })
	// hostChar: uri-host and port (RFC 3986 §3.2.2): unreserved, sub-delims,
	// pct-encoded, ":" and the brackets of an IP literal.
	hostChar = makeClass(func(c byte) bool {
		return isAlpha(c) || c >= '0' && c <= '9' || c < 0x80 && c != 0 && contains("-._~!$&'()*+,;=:[]%", c)
	})
	unhex = func() (t [256]byte) {
		for i := range t {
			c := byte(i)
			switch {
			case c >= '0' && c <= '9':
				t[i] = c - '0'
			case c|0x20 >= 'a' && c|0x20 <= 'f':
				t[i] = (c | 0x20) - 'a' + 10
			default:
				t[i] = 0xff
			}
		}
		return t
	}()
)

func makeClass(in func(c byte) bool) (t [256]bool) {
	for i := range t {
		t[i] = in(byte(i))
	}
	return t
}

func contains(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}

// requestLine is the fast path for the usual request-line: a method, an
// origin-form target and HTTP/1.1 or HTTP/1.0, all in b. It returns the line's
// length with its CRLF, or 0 to leave the line to the byte-at-a-time states
// (which also find any error).
func (f *RequestFramer) requestLine(b []byte) int {
	j := 0
	for j < len(b) && tchar[b[j]] {
		j++
	}
	if j+1 >= len(b) || b[j] != ' ' || b[j+1] != '/' {
		return 0
	}
	j++
	j += targetRun(b[j:])
	const v = len(" HTTP/1.1\r\n")
	if j+v > len(b) {
		return 0
	}
	switch string(b[j : j+v]) {
	case " HTTP/1.1\r\n":
		f.major, f.minor = 1, 1
	case " HTTP/1.0\r\n":
		f.major, f.minor = 1, 0
	default:
		return 0
	}
	return j + v
}

// fieldLine is the fast path for a whole field line "name: value CRLF" at the
// start of b. It returns the line's length, or 0 to leave the line to the
// byte-at-a-time states; a rule broken by a well-formed line (a repeated
// Content-Length, say) comes back as e, with at its offset in b, the same
// byte the slow path would name.
func (f *RequestFramer) fieldLine(b []byte) (n int, e *Error, at int) {
	j := 0
	for j < len(b) && tchar[b[j]] {
		j++
	}
	colon := j
	if j >= len(b) || b[j] != ':' {
		return 0, nil, 0
	}
	j++
	for j < len(b) && (b[j] == ' ' || b[j] == '\t') {
		j++
	}
	from := j
	j += fieldRun(b[j:])
	if j+1 >= len(b) || b[j] != '\r' || b[j+1] != '\n' {
		return 0, nil, 0
	}
	kind := classify(b[:colon])
	if f.trailer && (kind == kindOther || kind == kindContentType) && badTrailerName(b[:colon]) {
		// Discarded (Discarded); it still counts as a field line.
		if e := f.startValue(kindOther); e != nil {
			return 0, e, colon
		}
		f.drop = true
		f.discarded++
		return j + 2, nil, 0
	}
	if e := f.startValue(kind); e != nil {
		return 0, e, colon
	}
	if f.kind != kindOther {
		f.nonEmpty = j > from
		end := j
		if f.heldLine() {
			end = min(j, MaxTransferEncodingLine)
		}
		for k := from; k < end; k++ {
			if e := f.valueByte(b[k], k); e != nil {
				return 0, e, k
			}
		}
		if end < j {
			return 0, f.heldLineErr(), end
		}
		if e := f.endValue(); e != nil {
			return 0, e, j + 1
		}
		f.teRewrite(b, 0)
	}
	return j + 2, nil, 0
}
