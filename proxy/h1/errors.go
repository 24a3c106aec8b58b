package h1

// Error is a framing error: the bytes a client sent are not an HTTP/1.1 request
// this edge will forward. Status is the answer the client should get before the
// connection is closed; Message is a short JSON-safe ASCII text for the
// {"error": "..."} body. The exported values below are the only instances, so
// errors.Is works on them.
type Error struct {
	status int
	msg    string
}

func (e *Error) Error() string { return "h1: " + e.msg }

// Status is the HTTP status that answers the bad request (400, 413, 414, 431,
// 501 or 505).
func (e *Error) Status() int { return e.status }

// Message is the text for the JSON error body: ASCII without quotes or
// backslashes.
func (e *Error) Message() string { return e.msg }

func newError(status int, msg string) *Error { return &Error{status: status, msg: msg} }

// The framing errors, each with the RFC 9112 rule it enforces.
var (
	// ErrRequestLine: the request-line is not method SP request-target SP
	// HTTP-version CRLF (§3), for example a missing part, two spaces, or an
	// HTTP/0.9 line without a version.
	ErrRequestLine = newError(400, "malformed request line")
	// ErrMethod: the method is not a token (§3.1, RFC 9110 §9.1). Unknown but
	// valid tokens are allowed.
	ErrMethod = newError(400, "invalid method")
	// ErrTarget: the request-target holds a byte outside visible ASCII
	// (controls, DEL, non-ASCII), or is not one of the four forms (§3.2).
	ErrTarget = newError(400, "invalid request target")
	// ErrVersion: a well-formed HTTP-version other than HTTP/1.0 or HTTP/1.1
	// (§2.3); answered with 505.
	ErrVersion = newError(505, "unsupported HTTP version")
	// ErrBareLF: a LF not preceded by CR anywhere in the request-line, the
	// header section, a chunk line or the trailer section (§2.2: this edge
	// does not take the MAY that lets a recipient accept it).
	ErrBareLF = newError(400, "bare LF in the message framing")
	// ErrBareCR: a CR not followed by LF (§2.2).
	ErrBareCR = newError(400, "bare CR in the message framing")
	// ErrObsFold: a field line that starts with whitespace (obsolete line
	// folding, or whitespace before the first field, §5.2 and §2.2). Rejected
	// everywhere, never unfolded or dropped.
	ErrObsFold = newError(400, "obsolete line folding")
	// ErrHeaderName: a field name that is empty or not a token, or whitespace
	// between the name and the colon (§5.1).
	ErrHeaderName = newError(400, "invalid header field name")
	// ErrHeaderValue: a control character (other than HTAB) in a field value
	// (RFC 9110 §5.5).
	ErrHeaderValue = newError(400, "invalid header field value")
	// ErrMissingHost: an HTTP/1.1 request without Host (§3.2).
	ErrMissingHost = newError(400, "missing Host header")
	// ErrHost: more than one Host field line, or a Host value that is not
	// uri-host [":" port] (§3.2).
	ErrHost = newError(400, "invalid Host header")
	// ErrMaskedFraming: a field named Content_Length or Transfer_Encoding. They
	// are other, valid field names to HTTP, but CGI-style origins (WSGI, PHP,
	// Rack) map "-" and "_" to the same variable, so such a field can frame the
	// body differently behind the edge: a smuggling vector (nginx drops names
	// with underscores by default; gunicorn refuses these two).
	ErrMaskedFraming = newError(400, "field name imitates Content-Length or Transfer-Encoding")
	// ErrContentType: Content-Type more than once. It is a singleton (RFC 9110
	// §8.3, §5.3): with two, the edge and the origin could each read a
	// different one.
	ErrContentType = newError(400, "repeated Content-Type")
	// ErrContentLength: a Content-Length that is not 1*DIGIT within int64,
	// repeated, or a list (§6.3 point 5; this edge does not merge identical
	// values, RFC 9110 §8.6 allows either).
	ErrContentLength = newError(400, "invalid Content-Length")
	// ErrLengthAndChunked: both Content-Length and Transfer-Encoding (§6.1,
	// §6.3 point 3). Rejected rather than dropping the length: a sender that
	// writes both is either broken or smuggling, and closing after answering
	// would still forward a request another hop may have framed differently.
	ErrLengthAndChunked = newError(400, "both Content-Length and Transfer-Encoding")
	// ErrTransferEncoding: a Transfer-Encoding whose final coding is not
	// chunked, chunked applied twice, a transfer coding with parameters on
	// chunked, or any Transfer-Encoding in an HTTP/1.0 request (§6.1, §6.3
	// point 4, §7).
	ErrTransferEncoding = newError(400, "invalid Transfer-Encoding")
	// ErrUnsupportedCoding: a valid Transfer-Encoding ending in chunked that
	// also names another coding (gzip, chunked); the edge decodes only
	// chunked (§6.1: 501).
	ErrUnsupportedCoding = newError(501, "unsupported transfer coding")
	// ErrChunkSize: a chunk size that is not 1*HEXDIG, has more digits than
	// the limit, overflows int64, or is followed by anything but ";" or CRLF
	// (whitespace included, §7.1).
	ErrChunkSize = newError(400, "invalid chunk size")
	// ErrChunkExtension: a chunk extension without a name, or whose name or
	// value is not a token or quoted-string (§7.1.1); whitespace around ";"
	// and "=" is not accepted either. Also its length past the limit.
	ErrChunkExtension = newError(400, "invalid chunk extension")
	// ErrChunkData: the bytes after a chunk's data are not CRLF, so the data
	// is longer than its size said (§7.1).
	ErrChunkData = newError(400, "chunk data does not match its size")
	// ErrTrailer: Content-Length, Transfer-Encoding or Host in a trailer
	// section, fields that frame or route the message (§6.5, RFC 9110
	// §6.5.1). The other fields fasthttp refuses in a trailer are discarded
	// (RequestFramer.Discarded).
	ErrTrailer = newError(400, "forbidden trailer field")
	// ErrHeaderTooLarge: the request-line and header section (or the trailer
	// section) are longer than Limits.MaxHeaderBytes; 431 (RFC 6585 §5).
	ErrHeaderTooLarge = newError(431, "request header too large")
	// ErrRequestLineTooLong: a request-line longer than
	// Limits.MaxRequestLineBytes; 414, as nginx answers a request-line over its
	// buffer ("Request-URI Too Large"): the target is what makes a line long.
	ErrRequestLineTooLong = newError(414, "request line too long")
	// ErrFieldTooLarge: a header or trailer field line longer than
	// Limits.MaxFieldLineBytes; 431 (RFC 6585 §5 names one field too large as
	// a reason).
	ErrFieldTooLarge = newError(431, "request header field too large")
	// ErrTooManyHeaders: more field lines than Limits.MaxHeaders; 431.
	ErrTooManyHeaders = newError(431, "too many header fields")
	// ErrBodyTooLarge: a Content-Length, or chunk data so far, above
	// Limits.MaxBodyBytes; 413.
	ErrBodyTooLarge = newError(413, "request body too large")
)
