package h2srv

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

const (
	maxWindow      = 1<<31 - 1
	ourMaxFrame    = 16 << 10 // SETTINGS_MAX_FRAME_SIZE offered: the protocol minimum
	outFlushBytes  = 64 << 10 // a writer that finds this much pending flushes itself
	headerTableMax = 4096
)

type streamState uint8

const (
	stOpen       streamState = iota // receiving the request
	stHalfClosed                    // request complete (half-closed remote): answering
)

// stream is one request/answer exchange.
type stream struct {
	c        *conn
	id       uint32
	state    streamState
	ctx      *fasthttp.RequestCtx
	rest     fasthttp.RequestHandler
	sendWin  int64
	recvWin  int64 // what the client may still send on it
	unacked  int64 // received but not yet handed back by WINDOW_UPDATE
	declLen  int64 // content-length of the request, -1 none
	bodyLen  int64
	head     bool
	reset    bool // reset by either side: nothing more is written
	inMap    bool
	owned    bool // a handler (or a writer goroutine) owns ctx
	queued   bool
	timedOut bool
	ans      answerState
}

// conn is one HTTP/2 connection. mu guards everything but the reading
// side's own fields (br, rfr) and flushMu's socket write.
type conn struct {
	s       *Server
	cfg     *Config
	nc      net.Conn
	standIn net.Conn
	br      *bufio.Reader
	rfr     *http2.Framer

	mu   sync.Mutex
	cond sync.Cond
	// out is what waits for the socket; wfr writes frames into it.
	out     outBuf
	wfr     *http2.Framer
	enc     *hpack.Encoder
	hbuf    bytes.Buffer
	vals    []byte
	refs    []fieldRef
	streams map[uint32]*stream
	lastID  uint32 // highest client stream id seen
	// Flow control: what we may send (connection), what the peer's
	// streams start with, its largest frame.
	sendWin      int64
	peerInitWin  int64
	peerMaxFrame int
	recvWin      int64
	recvUnacked  int64
	running      int // handlers (and writer goroutines) not yet done
	queue        []*stream
	goaway       bool // GOAWAY sent: no new streams
	peerGoaway   bool
	closed       bool
	readerBusy   atomic.Bool // the reader will flush before it next blocks
	deadline     int8        // read deadline mode: 0 none, 1 idle, 2 reading a request
	deadlineAt   time.Time   // when the idle deadline was last set
	handlers     sync.WaitGroup

	flushMu sync.Mutex
	wdAt    time.Time     // when the write deadline was set (flushMu)
	wdBound time.Duration // the bound it was set with (flushMu)
	wt      time.Duration // socket write bound (mu): WriteTimeout, 1s when closing
	flushCh chan struct{}
	done    chan struct{}
}

// outBuf collects frames until a flush. Its buffer comes from outPool at
// the first frame and goes back after the flush, so an idle connection
// holds none.
type outBuf struct {
	b []byte
	p *[]byte // the pool's handle of b
}

func (o *outBuf) Write(p []byte) (int, error) {
	o.grow()
	o.b = append(o.b, p...)
	return len(p), nil
}

// grow makes sure o has a buffer.
func (o *outBuf) grow() {
	if o.p == nil {
		o.p = outPool.Get().(*[]byte)
		o.b = (*o.p)[:0]
	}
}

// outPool holds write buffers; ones grown past 256 KiB are dropped.
var outPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func putOut(p *[]byte, b []byte) {
	if cap(b) <= 256<<10 {
		*p = b[:0]
		outPool.Put(p)
	}
}

func newConn(s *Server, nc, standIn net.Conn) *conn {
	c := &conn{
		s: s, cfg: &s.cfg, nc: nc, standIn: standIn,
		br:           bufio.NewReaderSize(nc, 8<<10),
		streams:      map[uint32]*stream{},
		sendWin:      65535,
		peerInitWin:  65535,
		peerMaxFrame: 16384,
		recvWin:      int64(s.cfg.ConnWindow),
		wt:           s.cfg.WriteTimeout,
		flushCh:      make(chan struct{}, 1),
		done:         make(chan struct{}),
	}
	c.cond.L = &c.mu
	c.rfr = http2.NewFramer(nil, c.br)
	c.rfr.ReadMetaHeaders = hpack.NewDecoder(headerTableMax, nil)
	c.rfr.MaxHeaderListSize = s.cfg.MaxHeaderListSize
	c.rfr.SetMaxReadFrameSize(ourMaxFrame)
	c.rfr.SetReuseFrames()
	c.wfr = http2.NewFramer(&c.out, nil)
	c.enc = hpack.NewEncoder(&c.hbuf)
	c.enc.SetMaxDynamicTableSizeLimit(headerTableMax)
	return c
}

// serve runs the connection: preface, settings, then frames until the end.
func (c *conn) serve() {
	defer c.end()
	go c.flusher()
	_ = c.nc.SetReadDeadline(time.Now().Add(c.cfg.ReadTimeout))
	var pre [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(c.br, pre[:]); err != nil || string(pre[:]) != http2.ClientPreface {
		if err == nil {
			c.cfg.CountError("bad_preface")
			c.mu.Lock()
			c.writeGoAway(http2.ErrCodeProtocol)
			c.mu.Unlock()
		}
		return
	}
	c.mu.Lock()
	_ = c.wfr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: c.cfg.MaxConcurrentStreams},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: c.cfg.StreamWindow},
		http2.Setting{ID: http2.SettingMaxFrameSize, Val: ourMaxFrame},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: c.cfg.MaxHeaderListSize},
	)
	if d := c.cfg.ConnWindow - 65535; d > 0 {
		_ = c.wfr.WriteWindowUpdate(0, d)
	}
	c.mu.Unlock()
	c.flush()
	// The first frame must be the client's SETTINGS.
	f, err := c.rfr.ReadFrame()
	if err != nil {
		c.readError(err)
		return
	}
	if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
		c.connError(http2.ErrCodeProtocol, "preface_not_settings")
		return
	}
	c.mu.Lock()
	c.setDeadline()
	c.mu.Unlock()
	for {
		if f != nil {
			if err := c.frame(f); err != nil {
				return
			}
		}
		// Flush when the next read may block (nothing buffered), or when
		// enough waits that a client sending without reading must stall
		// here (bounded by WriteTimeout) rather than grow the buffer.
		idle := c.br.Buffered() == 0
		if idle {
			c.readerBusy.Store(false)
		}
		c.mu.Lock()
		full := len(c.out.b) >= outFlushBytes
		quiet := idle && c.quietLocked()
		c.mu.Unlock()
		if idle || full {
			c.flush()
		}
		if quiet {
			return
		}
		f, err = c.rfr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if !errors.As(err, &se) {
				c.readError(err)
				return
			}
			// The Framer read the whole frame (and kept the HPACK state);
			// only the stream fails.
			c.cfg.CountError("stream_error")
			c.mu.Lock()
			if se.StreamID > c.lastID && se.StreamID%2 == 1 {
				c.lastID = se.StreamID
			}
			c.resetLocked(se.StreamID, se.Code)
			c.mu.Unlock()
			f = nil
			continue
		}
		c.readerBusy.Store(true)
	}
}

// errEnd ends the reading loop (the reason was sent or the peer left).
var errEnd = errors.New("h2srv: connection ends")

// readError answers an error from the Framer.
func (c *conn) readError(err error) {
	var ce http2.ConnectionError
	switch {
	case errors.As(err, &ce):
		c.connError(http2.ErrCode(ce), "conn_error")
	case errors.Is(err, http2.ErrFrameTooLarge):
		c.connError(http2.ErrCodeFrameSize, "frame_too_large")
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.mu.Lock()
		c.writeGoAway(http2.ErrCodeNo)
		c.mu.Unlock()
	}
}

// connError sends GOAWAY code (the reader then ends the connection).
func (c *conn) connError(code http2.ErrCode, kind string) error {
	c.cfg.CountError(kind)
	c.mu.Lock()
	c.writeGoAway(code)
	c.mu.Unlock()
	return errEnd
}

// frame handles one frame on the reading goroutine; non-nil ends the connection.
func (c *conn) frame(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return c.headers(f)
	case *http2.DataFrame:
		return c.data(f)
	case *http2.SettingsFrame:
		return c.settings(f)
	case *http2.WindowUpdateFrame:
		return c.windowUpdate(f)
	case *http2.PingFrame:
		if f.IsAck() {
			return nil
		}
		c.mu.Lock()
		_ = c.wfr.WritePing(true, f.Data)
		c.mu.Unlock()
		return c.flushIfFull()
	case *http2.RSTStreamFrame:
		return c.rstStream(f)
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			c.cfg.CountError("priority_self")
			c.mu.Lock()
			c.resetLocked(f.StreamID, http2.ErrCodeProtocol)
			c.mu.Unlock()
		}
		return nil
	case *http2.GoAwayFrame:
		c.mu.Lock()
		c.peerGoaway = true
		end := c.quietLocked()
		c.mu.Unlock()
		if end {
			return errEnd
		}
		return nil
	case *http2.PushPromiseFrame:
		return c.connError(http2.ErrCodeProtocol, "push_promise")
	case *http2.ContinuationFrame:
		// The Framer assembles header blocks; a stray one is refused there.
		return c.connError(http2.ErrCodeProtocol, "continuation")
	}
	return nil // unknown frame types are ignored (RFC 9113 §5.5)
}

// quietLocked reports whether a draining connection has nothing left to do.
func (c *conn) quietLocked() bool {
	return (c.goaway || c.peerGoaway) && len(c.streams) == 0 && c.running == 0 && len(c.queue) == 0
}

func (c *conn) settings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingHeaderTableSize:
			c.enc.SetMaxDynamicTableSize(s.Val)
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - c.peerInitWin
			c.peerInitWin = int64(s.Val)
			for _, st := range c.streams {
				st.sendWin += delta
				if st.sendWin > maxWindow {
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
			}
			c.cond.Broadcast()
		case http2.SettingMaxFrameSize:
			c.peerMaxFrame = int(s.Val)
		}
		return nil
	})
	if err != nil {
		var ce http2.ConnectionError
		code := http2.ErrCodeProtocol
		if errors.As(err, &ce) {
			code = http2.ErrCode(ce)
		}
		c.cfg.CountError("settings")
		c.writeGoAway(code)
		return errEnd
	}
	_ = c.wfr.WriteSettingsAck()
	return nil
}

func (c *conn) windowUpdate(f *http2.WindowUpdateFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	inc := int64(f.Increment)
	if f.StreamID == 0 {
		c.sendWin += inc
		if c.sendWin > maxWindow {
			c.cfg.CountError("window_overflow")
			c.writeGoAway(http2.ErrCodeFlowControl)
			return errEnd
		}
		c.cond.Broadcast()
		return nil
	}
	if f.StreamID > c.lastID {
		c.cfg.CountError("window_idle_stream")
		c.writeGoAway(http2.ErrCodeProtocol)
		return errEnd
	}
	st := c.streams[f.StreamID]
	if st == nil {
		return nil // closed: frames in flight are ignored
	}
	st.sendWin += inc
	if st.sendWin > maxWindow {
		c.cfg.CountError("stream_window_overflow")
		c.resetLocked(st.id, http2.ErrCodeFlowControl)
		return nil
	}
	c.cond.Broadcast()
	return nil
}

func (c *conn) rstStream(f *http2.RSTStreamFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.StreamID > c.lastID {
		c.cfg.CountError("rst_idle_stream")
		c.writeGoAway(http2.ErrCodeProtocol)
		return errEnd
	}
	if st := c.streams[f.StreamID]; st != nil {
		c.closeStreamLocked(st)
	}
	return nil
}

// resetLocked sends RST_STREAM for id and forgets the stream.
func (c *conn) resetLocked(id uint32, code http2.ErrCode) {
	_ = c.wfr.WriteRSTStream(id, code)
	if st := c.streams[id]; st != nil {
		c.closeStreamLocked(st)
	}
}

// closeStreamLocked forgets st: nothing more is written on it; its context
// goes back to the pool now unless a handler or writer owns it.
func (c *conn) closeStreamLocked(st *stream) {
	st.reset = true
	if st.inMap {
		delete(c.streams, st.id)
		st.inMap = false
	}
	if !st.owned && !st.queued && st.ctx != nil {
		c.s.putCtx(st.ctx)
		st.ctx = nil
	}
	c.cond.Broadcast()
	c.setDeadline()
}

// data takes a DATA frame: flow control, then the request body.
func (c *conn) data(f *http2.DataFrame) error {
	c.mu.Lock()
	n := int64(f.Length)
	c.recvWin -= n
	if c.recvWin < 0 {
		c.mu.Unlock()
		return c.connError(http2.ErrCodeFlowControl, "conn_flow")
	}
	// The connection's window is handed back as soon as the frame is
	// taken: the body is bounded by MaxBodyBytes, not by the window.
	c.recvUnacked += n
	if c.recvUnacked >= int64(c.cfg.ConnWindow)/4 {
		_ = c.wfr.WriteWindowUpdate(0, uint32(c.recvUnacked))
		c.recvWin += c.recvUnacked
		c.recvUnacked = 0
	}
	id := f.StreamID
	if id > c.lastID {
		c.mu.Unlock()
		return c.connError(http2.ErrCodeProtocol, "data_idle_stream")
	}
	st := c.streams[id]
	if st == nil || st.state != stOpen {
		c.cfg.CountError("data_closed_stream")
		c.resetLocked(id, http2.ErrCodeStreamClosed)
		c.mu.Unlock()
		return nil
	}
	st.recvWin -= n
	if st.recvWin < 0 {
		c.cfg.CountError("stream_flow")
		c.resetLocked(id, http2.ErrCodeFlowControl)
		c.mu.Unlock()
		return nil
	}
	p := f.Data()
	st.bodyLen += int64(len(p))
	if st.declLen >= 0 && st.bodyLen > st.declLen {
		c.cfg.CountError("content_length")
		c.resetLocked(id, http2.ErrCodeProtocol)
		c.mu.Unlock()
		return nil
	}
	if st.bodyLen > int64(c.cfg.MaxBodyBytes) {
		c.answerEarly(st, fasthttp.StatusRequestEntityTooLarge, "request body too large")
		c.mu.Unlock()
		return nil
	}
	if len(p) > 0 {
		st.ctx.Request.AppendBody(p)
	}
	if !f.StreamEnded() {
		st.unacked += n
		if st.unacked >= int64(c.cfg.StreamWindow)/4 {
			_ = c.wfr.WriteWindowUpdate(id, uint32(st.unacked))
			st.recvWin += st.unacked
			st.unacked = 0
		}
		c.mu.Unlock()
		return nil
	}
	return c.endRequest(st) // unlocks
}

// endRequest: st's request is complete (mu held; it unlocks). The handler
// runs inline when Config.Inline can answer, else on a worker.
func (c *conn) endRequest(st *stream) error {
	if st.declLen >= 0 && st.bodyLen != st.declLen {
		c.cfg.CountError("content_length")
		c.resetLocked(st.id, http2.ErrCodeProtocol)
		c.mu.Unlock()
		return nil
	}
	st.state = stHalfClosed
	if st.bodyLen > 0 {
		st.ctx.Request.Header.SetContentLength(int(st.bodyLen))
	}
	if c.cfg.Inline == nil {
		c.setDeadline()
		c.startLocked(st)
		c.mu.Unlock()
		return nil
	}
	// The read deadline is left as it is while the inline handler runs
	// (nothing is read meanwhile): an answered hit then costs no deadline
	// change at all (see setDeadline).
	// Inline: the reader owns ctx while the handler runs unlocked.
	st.owned = true
	c.mu.Unlock()
	done, rest := c.runInline(st)
	c.mu.Lock()
	st.owned = false
	if done {
		c.s.Inlined.Add(1)
	}
	if !done {
		st.rest = rest
		if st.reset {
			c.s.putCtx(st.ctx)
			st.ctx = nil
		} else {
			c.startLocked(st)
		}
		c.setDeadline()
		c.mu.Unlock()
		return nil
	}
	if !c.writeAnswer(st, false) {
		// Flow control or a streamed body: a goroutine finishes it.
		st.owned = true
		c.running++
		c.handlers.Add(1)
		c.setDeadline()
		c.mu.Unlock()
		go st.finish()
		return nil
	}
	c.doneStream(st)
	ctx := st.ctx
	st.ctx = nil
	c.setDeadline()
	c.mu.Unlock()
	c.s.putCtx(ctx)
	return c.flushIfFull()
}

func (c *conn) runInline(st *stream) (done bool, rest fasthttp.RequestHandler) {
	defer func() {
		if r := recover(); r != nil {
			st.ctx.Response.Reset()
			st.ctx.SetStatusCode(fasthttp.StatusInternalServerError)
			done, rest = true, nil
		}
	}()
	return c.cfg.Inline(st.ctx)
}

// startLocked runs st's handler on a worker, or queues it while
// MaxConcurrentStreams handlers run (streams reset while running still
// count: rapid reset). A queue past 4× the limit ends the connection.
func (c *conn) startLocked(st *stream) {
	if c.closed {
		c.closeStreamLocked(st)
		return
	}
	if c.running >= int(c.cfg.MaxConcurrentStreams) {
		st.queued = true
		c.queue = append(c.queue, st)
		if len(c.queue) > 4*int(c.cfg.MaxConcurrentStreams) {
			c.cfg.CountError("too_many_queued")
			c.writeGoAway(http2.ErrCodeEnhanceYourCalm)
			c.closed = true
			_ = c.nc.SetReadDeadline(time.Now()) // wake the reader
		}
		return
	}
	st.owned = true
	c.running++
	c.handlers.Add(1)
	if !c.s.workers.Go(st) {
		go st.run()
	}
}

// run is a handler's goroutine: the handler, then the answer.
func (st *stream) run() {
	c := st.c
	h := st.rest
	if h == nil {
		h = c.cfg.Handler
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				st.ctx.Response.Reset()
				st.ctx.SetStatusCode(fasthttp.StatusInternalServerError)
			}
		}()
		h(st.ctx)
	}()
	st.finish()
}

// finish writes st's answer (waiting for windows) and releases it.
func (st *stream) finish() {
	c := st.c
	c.mu.Lock()
	c.writeAnswer(st, true)
	ctx := st.ctx
	st.ctx = nil
	st.owned = false
	c.doneStream(st)
	c.running--
	for c.running < int(c.cfg.MaxConcurrentStreams) && len(c.queue) > 0 {
		next := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		next.queued = false
		if next.reset || c.closed {
			if next.ctx != nil {
				c.s.putCtx(next.ctx)
				next.ctx = nil
			}
			continue
		}
		c.startLocked(next)
	}
	end := c.quietLocked()
	c.setDeadline()
	busy := c.readerBusy.Load()
	full := len(c.out.b) >= outFlushBytes
	c.mu.Unlock()
	if ctx != nil {
		c.s.putCtx(ctx)
	}
	switch {
	case full:
		c.flush()
	case !busy:
		c.kick()
	}
	if end {
		c.flush()
		_ = c.nc.Close()
	}
	c.handlers.Done()
}

// doneStream forgets a stream whose answer is complete (mu held).
func (c *conn) doneStream(st *stream) {
	if st.inMap {
		delete(c.streams, st.id)
		st.inMap = false
	}
	st.reset = true
}

// answerEarly answers st before its request is complete (413) and resets
// the rest of it (mu held).
func (c *conn) answerEarly(st *stream, status int, msg string) {
	c.writeError(st.id, status, msg)
	_ = c.wfr.WriteRSTStream(st.id, http2.ErrCodeNo)
	c.closeStreamLocked(st)
}

// writeError writes a JSON error answer on id (mu held); the body is left
// out when the windows cannot take it.
func (c *conn) writeError(id uint32, status int, msg string) {
	body := `{"error":"` + msg + `"}`
	c.hbuf.Reset()
	_ = c.enc.WriteField(hpack.HeaderField{Name: ":status", Value: strconv.Itoa(status)})
	_ = c.enc.WriteField(hpack.HeaderField{Name: "content-type", Value: "application/json"})
	st := c.streams[id]
	fits := int64(len(body)) <= c.sendWin && (st == nil || int64(len(body)) <= st.sendWin)
	if fits {
		_ = c.enc.WriteField(hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(body))})
	}
	c.writeHeaderBlock(id, !fits)
	if fits {
		c.sendWin -= int64(len(body))
		c.out.grow()
		c.out.b = appendFrameHeader(c.out.b, len(body), http2.FrameData, http2.FlagDataEndStream, id)
		c.out.b = append(c.out.b, body...)
	}
}

func (c *conn) writeGoAway(code http2.ErrCode) {
	if c.goaway && code == http2.ErrCodeNo {
		return
	}
	c.goaway = true
	_ = c.wfr.WriteGoAway(c.lastID, code, nil)
}

// shutdown sends GOAWAY and ends the connection once its streams are done.
func (c *conn) shutdown() {
	c.mu.Lock()
	c.writeGoAway(http2.ErrCodeNo)
	end := c.quietLocked()
	c.mu.Unlock()
	c.flush()
	if end {
		_ = c.nc.Close()
	}
}

// setDeadline sets the read deadline for the connection's state (mu held):
// IdleTimeout without streams, ReadTimeout while a request is being
// received, none while only answers are pending (WriteTimeout bounds those).
func (c *conn) setDeadline() {
	var mode int8
	switch {
	case len(c.streams) == 0 && c.running == 0 && len(c.queue) == 0:
		mode = 1
	default:
		for _, st := range c.streams {
			if st.state == stOpen {
				mode = 2
				break
			}
		}
	}
	if mode == c.deadline {
		// Still idle after a stream came and went without a mode change
		// (an inline answer): the idle deadline moves on, at most every
		// tenth of IdleTimeout, so a busy connection never idles out and a
		// hit costs no deadline syscall.
		if mode == 1 {
			if now := time.Now(); now.Sub(c.deadlineAt) > c.cfg.IdleTimeout/10 {
				c.deadlineAt = now
				_ = c.nc.SetReadDeadline(now.Add(c.cfg.IdleTimeout))
			}
		}
		return
	}
	c.deadline = mode
	switch mode {
	case 0:
		_ = c.nc.SetReadDeadline(time.Time{})
	case 1:
		c.deadlineAt = time.Now()
		_ = c.nc.SetReadDeadline(c.deadlineAt.Add(c.cfg.IdleTimeout))
	case 2:
		_ = c.nc.SetReadDeadline(time.Now().Add(c.cfg.ReadTimeout))
	}
}

// flushIfFull flushes when enough output waits, so a client that sends but
// never reads stalls the reader (bounded by WriteTimeout) instead of growing
// the buffer.
func (c *conn) flushIfFull() error {
	c.mu.Lock()
	full := len(c.out.b) >= outFlushBytes
	c.mu.Unlock()
	if full {
		c.flush()
	}
	return nil
}

// flush writes what waits to the socket; a failed or stalled write closes it.
func (c *conn) flush() {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	c.mu.Lock()
	b := c.out.b
	if len(b) == 0 {
		c.mu.Unlock()
		return
	}
	p := c.out.p
	c.out.b, c.out.p = nil, nil
	wt := c.wt
	c.mu.Unlock()
	// The write deadline moves at most every tenth of the bound (a
	// deadline change is a poller timer update), so each write gets at
	// least 0.9 of it.
	if now := time.Now(); wt != c.wdBound || now.Sub(c.wdAt) > wt/10 {
		c.wdAt, c.wdBound = now, wt
		_ = c.nc.SetWriteDeadline(now.Add(wt))
	}
	_, err := c.nc.Write(b)
	putOut(p, b)
	if err != nil {
		_ = c.nc.Close()
		c.mu.Lock()
		c.closed = true
		c.cond.Broadcast()
		c.mu.Unlock()
	}
}

// flusher writes what workers left in the buffer, so answers that finish
// close together leave in one write.
func (c *conn) flusher() {
	for {
		select {
		case <-c.flushCh:
			c.flush()
		case <-c.done:
			return
		}
	}
}

// end tears the connection down after the reader stopped.
func (c *conn) end() {
	c.mu.Lock()
	c.closed = true
	for _, st := range c.streams {
		c.closeStreamLocked(st)
	}
	for _, st := range c.queue {
		st.queued = false
		if st.ctx != nil {
			c.s.putCtx(st.ctx)
			st.ctx = nil
		}
	}
	c.queue = nil
	c.cond.Broadcast()
	// What is pending (a GOAWAY) gets at most a second.
	c.wt = min(c.wt, time.Second)
	c.mu.Unlock()
	c.flush()
	_ = c.nc.Close()
	c.handlers.Wait()
	close(c.done)
}

// headers takes a HEADERS block: a new stream, or trailers.
func (c *conn) headers(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	c.mu.Lock()
	if id%2 == 0 {
		c.mu.Unlock()
		return c.connError(http2.ErrCodeProtocol, "even_stream")
	}
	if st := c.streams[id]; st != nil {
		if st.state != stOpen {
			c.cfg.CountError("headers_half_closed")
			c.resetLocked(id, http2.ErrCodeStreamClosed)
			c.mu.Unlock()
			return nil
		}
		// Trailers: they end the stream and carry no pseudo-fields; their
		// fields are dropped, as the x/net bridge drops them.
		if !f.StreamEnded() || len(f.PseudoFields()) > 0 {
			c.cfg.CountError("bad_trailers")
			c.resetLocked(id, http2.ErrCodeProtocol)
			c.mu.Unlock()
			return nil
		}
		return c.endRequest(st)
	}
	if id <= c.lastID {
		c.mu.Unlock()
		return c.connError(http2.ErrCodeProtocol, "stream_went_down")
	}
	c.lastID = id
	if f.HasPriority() && f.Priority.StreamDep == id {
		c.cfg.CountError("priority_self")
		_ = c.wfr.WriteRSTStream(id, http2.ErrCodeProtocol)
		c.mu.Unlock()
		return nil
	}
	if c.goaway || c.closed {
		c.mu.Unlock()
		return nil // after GOAWAY new streams are ignored
	}
	if len(c.streams) >= int(c.cfg.MaxConcurrentStreams) {
		c.cfg.CountError("refused_stream")
		_ = c.wfr.WriteRSTStream(id, http2.ErrCodeRefusedStream)
		c.mu.Unlock()
		return nil
	}
	if f.Truncated {
		c.cfg.CountError("header_list_too_large")
		c.writeError(id, fasthttp.StatusRequestHeaderFieldsTooLarge, "request header fields too large")
		c.mu.Unlock()
		return nil
	}
	if c.cfg.Fields != (FieldLimits{}) {
		fc := c.cfg.Fields.Counter()
		for _, hf := range f.RegularFields() {
			if kind := fc.Add(hf.Name, hf.Value); kind != "" {
				c.cfg.CountError(kind)
				c.writeError(id, fasthttp.StatusRequestHeaderFieldsTooLarge, "request header fields too large")
				c.mu.Unlock()
				return nil
			}
		}
	}
	st := &stream{c: c, id: id, sendWin: c.peerInitWin, recvWin: int64(c.cfg.StreamWindow), declLen: -1}
	st.ctx = c.s.getCtx(c.standIn)
	if code, kind := c.request(st, f); code != http2.ErrCodeNo {
		c.cfg.CountError(kind)
		c.s.putCtx(st.ctx)
		st.ctx = nil
		_ = c.wfr.WriteRSTStream(id, code)
		c.mu.Unlock()
		return nil
	}
	st.inMap = true
	c.streams[id] = st
	if st.declLen > int64(c.cfg.MaxBodyBytes) {
		c.answerEarly(st, fasthttp.StatusRequestEntityTooLarge, "request body too large")
		c.mu.Unlock()
		return nil
	}
	if !f.StreamEnded() {
		c.setDeadline()
		c.mu.Unlock()
		return nil
	}
	return c.endRequest(st)
}

// request fills st's RequestCtx from a header block, checking it per RFC
// 9113 §8.2-8.3: the pseudo-fields a request needs and no others, no
// connection-specific fields, TE only "trailers". A failure is a stream
// error with the code returned.
func (c *conn) request(st *stream, f *http2.MetaHeadersFrame) (http2.ErrCode, string) {
	var method, scheme, path, authority string
	for _, hf := range f.PseudoFields() {
		switch hf.Name {
		case ":method":
			method = hf.Value
		case ":scheme":
			scheme = hf.Value
		case ":path":
			path = hf.Value
		case ":authority":
			authority = hf.Value
		default: // :status, :protocol (extended CONNECT is not offered)
			return http2.ErrCodeProtocol, "bad_pseudo"
		}
	}
	if method == "" {
		return http2.ErrCodeProtocol, "bad_pseudo"
	}
	if method == fasthttp.MethodConnect {
		if scheme != "" || path != "" || authority == "" {
			return http2.ErrCodeProtocol, "bad_pseudo"
		}
		path = authority
	} else if scheme == "" || path == "" || (path[0] != '/' && (path != "*" || method != fasthttp.MethodOptions)) {
		// RFC 9113 §8.3.1: origin form, or "*" for OPTIONS.
		return http2.ErrCodeProtocol, "bad_pseudo"
	}
	req := &st.ctx.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(path)
	st.head = method == fasthttp.MethodHead
	var cookies []byte
	sawCookie, sawHost := false, false
	for _, hf := range f.RegularFields() {
		switch hf.Name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			return http2.ErrCodeProtocol, "connection_header"
		case "te":
			if hf.Value != "trailers" {
				return http2.ErrCodeProtocol, "te_header"
			}
		case "content-length":
			n, err := strconv.ParseInt(hf.Value, 10, 64)
			if err != nil || n < 0 || (st.declLen >= 0 && st.declLen != n) {
				return http2.ErrCodeProtocol, "content_length"
			}
			st.declLen = n
			continue // set from the body received
		case "cookie":
			// RFC 9113 §8.2.3: split cookie fields are joined for HTTP/1.1.
			if sawCookie {
				cookies = append(cookies, "; "...)
			}
			cookies = append(cookies, hf.Value...)
			sawCookie = true
			continue
		case "host":
			sawHost = true
			if authority != "" {
				continue // :authority wins
			}
		}
		req.Header.Add(hf.Name, hf.Value)
	}
	if authority != "" {
		req.Header.SetHost(authority)
	} else if !sawHost && !strings.HasPrefix(path, "/") {
		req.Header.SetHost("")
	}
	if sawCookie {
		req.Header.SetBytesV("Cookie", cookies)
	}
	return http2.ErrCodeNo, ""
}

// appendFrameHeader appends a frame's 9-byte header.
func appendFrameHeader(b []byte, length int, t http2.FrameType, flags http2.Flags, id uint32) []byte {
	return append(b, byte(length>>16), byte(length>>8), byte(length), byte(t), byte(flags),
		byte(id>>24)&0x7f, byte(id>>16), byte(id>>8), byte(id))
}
