package h2srv

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// fieldRef locates one answer field's name and value in conn.vals.
type fieldRef struct{ ns, ne, vs, ve int }

// answer state kept on the stream between calls of writeAnswer.
type answerState struct {
	hdrSent bool
	stream  bool
	body    []byte
	off     int
}

// writeAnswer writes st's answer from its RequestCtx (mu held). With wait
// false (the reading goroutine) it never blocks: it reports false when a
// flow-control window or a streamed body leaves the rest to a goroutine
// (finish). It reports true when the answer is complete or the stream is
// gone.
func (c *conn) writeAnswer(st *stream, wait bool) bool {
	if st.reset || c.closed || st.ctx == nil {
		return true
	}
	a := &st.ans
	resp := &st.ctx.Response
	if !a.hdrSent {
		a.stream = resp.IsBodyStream()
		if a.stream && !wait {
			return false
		}
		status := resp.StatusCode()
		bodyOK := !st.head && status >= 200 && status != fasthttp.StatusNoContent && status != fasthttp.StatusNotModified
		clen := -1
		if !a.stream {
			body := resp.Body()
			if st.head && len(body) == 0 {
				// A HEAD answer without its body (the cache's) says its
				// length in the header.
				clen = resp.Header.ContentLength()
			} else {
				clen = len(body)
			}
			if bodyOK {
				a.body = body
			}
		} else {
			clen = resp.Header.ContentLength()
		}
		c.encodeAnswer(status, &resp.Header, clen)
		end := (!a.stream && len(a.body) == 0) || (a.stream && !bodyOK)
		c.writeHeaderBlock(st.id, end)
		a.hdrSent = true
		if end {
			return true
		}
	}
	if a.stream {
		return c.streamBody(st, resp.BodyStream())
	}
	for a.off < len(a.body) {
		n := c.window(st, len(a.body)-a.off)
		if n <= 0 {
			if !wait {
				return false
			}
			if !c.waitWindow(st) {
				return true
			}
			continue
		}
		end := a.off+n == len(a.body)
		c.writeData(st, a.body[a.off:a.off+n], end)
		a.off += n
		if len(c.out.b) >= outFlushBytes {
			c.mu.Unlock()
			c.flush()
			c.mu.Lock()
			if st.reset || c.closed {
				return true
			}
		}
	}
	return true
}

// window is how much of n bytes may go in st's next DATA frame.
func (c *conn) window(st *stream, n int) int {
	n = min(n, c.peerMaxFrame)
	if int64(n) > st.sendWin {
		n = int(max(st.sendWin, 0))
	}
	if int64(n) > c.sendWin {
		n = int(max(c.sendWin, 0))
	}
	return n
}

func (c *conn) writeData(st *stream, p []byte, end bool) {
	st.sendWin -= int64(len(p))
	c.sendWin -= int64(len(p))
	var fl http2.Flags
	if end {
		fl = http2.FlagDataEndStream
	}
	c.out.grow()
	c.out.b = appendFrameHeader(c.out.b, len(p), http2.FrameData, fl, st.id)
	c.out.b = append(c.out.b, p...)
}

// waitWindow waits (mu held) until st may send again; false when the
// stream or connection is gone, or WriteTimeout passed (the stream is then
// reset: a client that never opens its window cannot hold a worker).
func (c *conn) waitWindow(st *stream) bool {
	c.kick() // what was written must leave for the client to answer it
	t := time.AfterFunc(c.cfg.WriteTimeout, func() {
		c.mu.Lock()
		st.timedOut = true
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	for !st.reset && !c.closed && !st.timedOut && (st.sendWin <= 0 || c.sendWin <= 0) {
		c.cond.Wait()
	}
	t.Stop()
	if st.timedOut && !st.reset && !c.closed && (st.sendWin <= 0 || c.sendWin <= 0) {
		c.cfg.CountError("write_window_timeout")
		c.resetLocked(st.id, http2.ErrCodeCancel)
		c.kick()
		return false
	}
	st.timedOut = false
	return !st.reset && !c.closed
}

// kick wakes the flusher (mu may be held).
func (c *conn) kick() {
	select {
	case c.flushCh <- struct{}{}:
	default:
	}
}

var chunkPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// streamBody copies a streamed answer body (an origin's stream) to DATA
// frames (mu held, released around each read). A body that breaks mid-way
// resets the stream, so the client cannot take a truncated body for the
// whole.
func (c *conn) streamBody(st *stream, r io.Reader) bool {
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	for {
		n := min(len(*bp), c.peerMaxFrame)
		c.mu.Unlock()
		m, err := r.Read((*bp)[:n])
		c.mu.Lock()
		if st.reset || c.closed {
			return true
		}
		p := (*bp)[:m]
		for len(p) > 0 {
			k := c.window(st, len(p))
			if k <= 0 {
				if !c.waitWindow(st) {
					return true
				}
				continue
			}
			c.writeData(st, p[:k], false)
			p = p[k:]
		}
		switch {
		case err == io.EOF:
			c.writeData(st, nil, true)
			c.kick()
			return true
		case err != nil:
			c.cfg.CountError("body_stream_broken")
			c.resetLocked(st.id, http2.ErrCodeInternal)
			c.kick()
			return true
		}
		if m > 0 {
			c.kick()
		}
	}
}

// encodeAnswer HPACK-encodes an answer's head into c.hbuf: :status, the
// fields less those HTTP/2 forbids (names in lower case), content-length
// when known, and date when the handler set none. Names and values are
// gathered in one buffer and turned into one string, so the encoder (whose
// table keeps what it indexes) costs one allocation per answer.
func (c *conn) encodeAnswer(status int, h *fasthttp.ResponseHeader, clen int) {
	vals := c.vals[:0]
	refs := c.refs[:0]
	sawDate := false
	for k, v := range h.All() {
		switch string(k) {
		case "Content-Length", "Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "Proxy-Connection":
			continue
		case "Date":
			sawDate = true
		}
		r := fieldRef{ns: len(vals)}
		for _, b := range k {
			if 'A' <= b && b <= 'Z' {
				b += 'a' - 'A'
			}
			vals = append(vals, b)
		}
		r.ne = len(vals)
		vals = append(vals, v...)
		r.vs, r.ve = r.ne, len(vals)
		refs = append(refs, r)
	}
	if clen >= 0 {
		r := fieldRef{ns: len(vals)}
		vals = append(vals, "content-length"...)
		r.ne = len(vals)
		vals = strconv.AppendInt(vals, int64(clen), 10)
		r.vs, r.ve = r.ne, len(vals)
		refs = append(refs, r)
	}
	c.vals, c.refs = vals, refs
	c.hbuf.Reset()
	_ = c.enc.WriteField(hpack.HeaderField{Name: ":status", Value: statusString(status)})
	if len(vals) > 0 {
		all := string(vals)
		for _, r := range refs {
			_ = c.enc.WriteField(hpack.HeaderField{Name: all[r.ns:r.ne], Value: all[r.vs:r.ve]})
		}
	}
	if !sawDate {
		_ = c.enc.WriteField(hpack.HeaderField{Name: "date", Value: httpDate()})
	}
}

// writeHeaderBlock writes c.hbuf as HEADERS (+ CONTINUATION) on id.
func (c *conn) writeHeaderBlock(id uint32, endStream bool) {
	blk := c.hbuf.Bytes()
	first := true
	for {
		n := min(len(blk), c.peerMaxFrame)
		var fl http2.Flags
		last := n == len(blk)
		if last {
			fl |= http2.FlagHeadersEndHeaders
		}
		t := http2.FrameContinuation
		if first {
			t = http2.FrameHeaders
			if endStream {
				fl |= http2.FlagHeadersEndStream
			}
		}
		c.out.grow()
		c.out.b = appendFrameHeader(c.out.b, n, t, fl, id)
		c.out.b = append(c.out.b, blk[:n]...)
		blk = blk[n:]
		first = false
		if last {
			return
		}
	}
}

var statusStrings = func() (s [600]string) {
	for i := 100; i < 600; i++ {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

func statusString(code int) string {
	if code >= 100 && code < 600 {
		return statusStrings[code]
	}
	return strconv.Itoa(code)
}

type dateCache struct {
	sec int64
	s   string
}

var dateNow atomic.Pointer[dateCache]

// httpDate is the Date field for now, formatted once a second.
func httpDate() string {
	now := time.Now()
	if d := dateNow.Load(); d != nil && d.sec == now.Unix() {
		return d.s
	}
	d := &dateCache{sec: now.Unix(), s: now.UTC().Format(http.TimeFormat)}
	dateNow.Store(d)
	return d.s
}
