package upstream

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// ErrHTTP10 is what forwarding a coded request (CodedBody) to a host that last
// answered in HTTP/1.0 gives, before anything is sent: RFC 9112 §6.1 forbids
// sending Transfer-Encoding to a server not known to handle HTTP/1.1, and an
// HTTP/1.0 server cannot read a chunked body. The edge answers 501.
var ErrHTTP10 = errors.New("upstream: the origin speaks HTTP/1.0 and cannot take a transfer coding")

// CodedBody is a request body in transfer codings besides chunked, which the
// edge forwards still coded (RFC 9112 §6.1, §7: a proxy need not understand a
// transfer coding to forward it while chunked is final): set it as the
// request's body stream (SetBodyStream(b, -1)) and the Upstream's HostClient
// sends "Transfer-Encoding: <Codings>, chunked" and R's bytes, untouched,
// chunked (the chunk boundaries are the hop's own, §7.1). R holds the body
// with chunked taken off, as fasthttp reads it: the client's bytes in their
// codings, which the edge never decodes.
//
// Only the edge makes one (from the framer's Codings), so a client cannot
// choose what the origin gets. Such a request is a streamed one to the retry
// logic (sent at most once) and never cached (it has a body).
type CodedBody struct {
	// R is the coded body, chunked taken off.
	R io.Reader
	// Codings are the transfer codings before chunked, normalised: tokens,
	// lower-case, ", " between them ("gzip", "deflate, br").
	Codings string
	// Deadline bounds the try (connect, write, answer); zero: none. The
	// forwarding code sets it before each try, since the HostClient's
	// request timeout is not visible to a Transport.
	Deadline time.Time
}

// Read reads the coded body.
func (b *CodedBody) Read(p []byte) (int, error) { return b.R.Read(p) }

// HTTP10 reports that the host's latest answer was HTTP/1.0 (RFC 9112 §6.1:
// then it is not known to handle HTTP/1.1, and no coded request goes to it).
// The HostClient's Transport notes every answer's version; a configured
// origin is taken for HTTP/1.1 until it answers otherwise.
func (u *Upstream) HTTP10() bool { return u.http10.Load() }

// transport is every Upstream's fasthttp Transport: fasthttp's own for every
// request but a coded one (CodedBody), which it writes itself, since
// fasthttp's request writer only ever sends "Transfer-Encoding: chunked". It
// notes each answer's HTTP version (Upstream.HTTP10).
type transport struct {
	http10 *atomic.Bool
}

func (t transport) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (bool, error) {
	cb, coded := req.BodyStream().(*CodedBody)
	if !coded {
		retry, err := fasthttp.DefaultTransport.RoundTrip(hc, req, resp)
		if err == nil {
			t.note(resp)
		}
		return retry, err
	}
	if t.http10.Load() {
		return false, ErrHTTP10
	}
	// Never retried by the HostClient: the body can be read once.
	err := roundTripCoded(hc, req, resp, cb)
	if err == nil {
		t.note(resp)
	}
	return false, err
}

// note records the answer's version, written only when it changes.
func (t transport) note(resp *fasthttp.Response) {
	if old := !resp.Header.IsHTTP11(); t.http10.Load() != old {
		t.http10.Store(old)
	}
}

var chunkBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// roundTripCoded sends req with its coded body on one of hc's connections and
// reads the whole answer (a streamed answer would need fasthttp's internals;
// hc.MaxResponseBodySize still bounds it). What it writes is what fasthttp's
// writer sends for a streamed chunked request, but the Transfer-Encoding line.
func roundTripCoded(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response, cb *CodedBody) error {
	var timeout time.Duration
	if !cb.Deadline.IsZero() {
		if timeout = time.Until(cb.Deadline); timeout <= 0 {
			return fasthttp.ErrTimeout
		}
	}
	head, err := codedHeader(req, cb.Codings)
	if err != nil {
		return err
	}
	cc, err := hc.AcquireConn(timeout, req.ConnectionClose())
	if err != nil {
		return err
	}
	conn := cc.Conn()
	resp.ParseNetConn(conn)
	if !cb.Deadline.IsZero() {
		if err := conn.SetDeadline(cb.Deadline); err != nil {
			hc.CloseConn(cc)
			return err
		}
	}
	bw := hc.AcquireWriter(conn)
	_, err = bw.Write(head)
	if err == nil {
		err = writeChunked(bw, cb.R)
	}
	if err == nil {
		// The trailer section, read from the client's stream once it
		// ended (empty: the final CRLF).
		_, err = bw.Write(req.Header.TrailerHeader())
	}
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if err != nil {
		hc.CloseConn(cc)
		return timeoutErr(err)
	}
	resp.StreamBody = false
	if req.Header.IsHead() {
		resp.SkipBody = true
	}
	br := hc.AcquireReader(conn)
	err = resp.ReadLimitBody(br, hc.MaxResponseBodySize)
	hc.ReleaseReader(br)
	if err != nil {
		hc.CloseConn(cc)
		return timeoutErr(err)
	}
	if req.ConnectionClose() || resp.ConnectionClose() || conn.SetDeadline(time.Time{}) != nil {
		hc.CloseConn(cc)
	} else {
		hc.ReleaseConn(cc)
	}
	return nil
}

// timeoutErr is fasthttp.ErrTimeout for any timeout, as fasthttp's transport
// reports it.
func timeoutErr(err error) error {
	if x, ok := err.(interface{ Timeout() bool }); ok && x.Timeout() {
		return fasthttp.ErrTimeout
	}
	return err
}

// errCodedHeader: the header fasthttp serialized has no Transfer-Encoding
// line to put the codings in (cannot happen for a chunked request).
var errCodedHeader = errors.New("upstream: no Transfer-Encoding line for the codings")

// codedHeader serializes req's request-line and header section as
// fasthttp's Request.Write would for a streamed chunked body (Host, the
// request-target from the parsed URI, Authorization from its user info), with
// "Transfer-Encoding: <codings>, chunked" in place of the chunked line
// fasthttp writes: a value fasthttp manages itself and cannot be given.
func codedHeader(req *fasthttp.Request, codings string) ([]byte, error) {
	h := &req.Header
	uri := req.URI()
	if host := uri.Host(); len(h.Host()) == 0 {
		if len(host) == 0 {
			return nil, errors.New("upstream: no Host for the request")
		}
		h.SetHostBytes(host)
	} else if !req.UseHostHeader {
		h.SetHostBytes(host)
	}
	h.SetRequestURIBytes(uri.RequestURI())
	if user := uri.Username(); len(user) > 0 && len(h.Peek(fasthttp.HeaderAuthorization)) == 0 {
		cred := append(append(append([]byte(nil), user...), ':'), uri.Password()...)
		h.Set(fasthttp.HeaderAuthorization, "Basic "+base64.StdEncoding.EncodeToString(cred))
	}
	h.SetContentLength(-1) // Transfer-Encoding: chunked, no Content-Length
	head := h.AppendBytes(nil)
	const line = "\r\nTransfer-Encoding: chunked\r\n"
	i := bytes.Index(head, []byte(line))
	if i < 0 || bytes.Contains(head[i+len(line)-2:], []byte(line)) {
		return nil, errCodedHeader
	}
	out := make([]byte, 0, len(head)+len(codings)+2)
	out = append(out, head[:i]...)
	out = append(out, "\r\nTransfer-Encoding: "...)
	out = append(out, codings...)
	out = append(out, ", chunked\r\n"...)
	return append(out, head[i+len(line):]...), nil
}

// writeChunked writes r's bytes as chunks, then the last chunk's size line
// ("0\r\n"); the trailer section follows.
func writeChunked(w *bufio.Writer, r io.Reader) error {
	bp := chunkBufs.Get().(*[]byte)
	defer chunkBufs.Put(bp)
	buf := *bp
	var size [20]byte
	for {
		n, err := r.Read(buf)
		if n > 0 {
			w.Write(strconv.AppendInt(size[:0], int64(n), 16))
			w.WriteString("\r\n")
			w.Write(buf[:n])
			if _, werr := w.WriteString("\r\n"); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			_, err = w.WriteString("0\r\n")
			return err
		}
		if err != nil {
			return err
		}
	}
}
