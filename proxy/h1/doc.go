// Package h1 is a strict, incremental HTTP/1.1 request framer (RFC 9112): it
// reads the bytes a client sends, rejects any framing the edge does not accept,
// and finds where each request (request-line, header section, body, trailer
// section) ends, so a proxy never forwards a request another parser might read
// differently (request smuggling).
//
// It does not parse a request for use: it keeps no field values and allocates
// nothing. fasthttp's parser reads the requests the framer passed; the framer
// makes sure fasthttp only ever sees a stream whose message boundaries are the
// ones the RFC defines, with nothing in it that fasthttp (or the origin behind
// the edge) would be lenient about.
//
// # Contract of RequestFramer
//
//   - Scan(b) consumes bytes of the current message from the front of b and
//     returns how many (n). The framer keeps its state between calls, so a
//     message may be split anywhere over any number of calls; no byte is read
//     twice and b is not kept. b is not changed either, except with
//     Limits.UnfoldObsFold, where Scan writes SP over each obs-fold's CRLF in
//     b (UnfoldedBefore reports fold bytes an earlier call consumed, and
//     FoldPending the trailing ones a fold may still claim), and at the end
//     of a Transfer-Encoding line naming identity before chunked, which Scan
//     overwrites with SP up to chunked (RewriteBefore names the part before
//     b), and with Limits.TolerateDangerousFraming, where Scan writes SP over
//     a bare LF in a header field value (MustClose then tells the caller to
//     close after the message). Framing the changed bytes again gives the
//     same result, MustClose aside: a caller that frames a message again
//     notes it the first time.
//   - done == true: the message ended at b[n-1]. b[n:] is not consumed and
//     belongs to the next message; the next Scan call starts it. Until then,
//     Skipped, HeaderLen, Framing, ContentLength and Version describe the
//     finished message.
//   - done == false, err == nil: n == len(b), more bytes are needed; or
//     n < len(b) where a discarded trailer field line ends (below): the
//     caller calls again with b[n:].
//   - err != nil: an *Error (one of the exported Err* values) whose Status()
//     is the answer (400, 413, 414, 431, 501, 505) and Message() the JSON-safe
//     text. b[n] is the offending byte, or for rules checked when the header
//     section is complete (Host, Content-Length with Transfer-Encoding, body
//     limit) the section's final LF. The error is sticky: every later Scan
//     returns it with n == 0 until Reset. The caller answers the error after
//     answering the earlier complete messages, and closes the connection.
//   - Empty lines (CRLF) before a request-line are consumed and counted by
//     Skipped (§2.2); they are always the first Skipped bytes consumed for a
//     message and are not part of it. A caller that hands the message to
//     another parser drops them.
//   - Once HeaderDone() is true (at the latest when the header section's
//     final LF has been consumed), HeaderLen() is the header length and
//     Framing()/ContentLength() the body framing, so a caller can start
//     streaming the body before it is complete.
//   - Trailer fields that fasthttp refuses in a trailer section, but for
//     Content-Length, Transfer-Encoding and Host (refused: ErrTrailer), are
//     discarded (RFC 9110 §6.5.1-§6.5.2): the message is accepted, and a
//     caller passing its bytes on must leave those lines out. DropTail() is
//     how many of the last bytes a call consumed belong to one; a discarded
//     line is always the tail of a call. When DropTail() exceeds n the line
//     began in bytes an earlier call left Pending(): a caller that passes
//     bytes on as soon as they are scanned holds the last Pending() bytes of
//     each call back (a trailer field name that may still be discarded, at
//     most 19 bytes, a Transfer-Encoding line so far, at most
//     MaxTransferEncodingLine+1, or a line end an obs-fold may claim) until
//     the next call. Discarded() counts the message's discarded lines; they
//     still count towards the trailer section's limits. The same goes for
//     the Transfer-Encoding lines of the header section that name only
//     identity (HeaderDropped()), which fasthttp would refuse. ScanMessage
//     does all this for a caller that holds a whole message.
//   - Idle() reports that no byte of a request is pending: an end of stream
//     there is a clean close; elsewhere the request was cut short.
//   - Reset() readies the framer for a new connection (and clears an error).
//     The zero value is ready; Limits are kept by Reset.
//
// Conn and Listener put a RequestFramer in front of fasthttp's connection
// reads (the goroutine I/O core); see Conn for how errors reach fasthttp's
// ErrorHandler.
//
// What is accepted and what is rejected, with the RFC section for each rule,
// is listed in docs/http-parsing.md. The package must never let through a
// byte stream whose message boundaries it is unsure of: when in doubt, reject.
package h1
