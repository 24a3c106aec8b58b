package h2srv

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// FuzzServeConn feeds arbitrary frames after the client preface: the
// connection must end (or idle out) without a panic or a stuck handler.
func FuzzServeConn(f *testing.F) {
	var seed bytes.Buffer
	fr := http2.NewFramer(&seed, nil)
	_ = fr.WriteSettings()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, kv := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", "/"}, {":authority", "a"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
	_ = fr.WriteData(1, true, []byte("body"))
	_ = fr.WritePing(false, [8]byte{})
	_ = fr.WriteWindowUpdate(0, 100)
	_ = fr.WriteRSTStream(1, http2.ErrCodeCancel)
	f.Add(seed.Bytes())
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 5, 1, 5, 0, 0, 0, 1, 0})
	s := New(Config{
		Handler:     func(ctx *fasthttp.RequestCtx) { ctx.SetBody(ctx.Request.Body()) },
		ReadTimeout: 100 * time.Millisecond, IdleTimeout: 100 * time.Millisecond, WriteTimeout: 100 * time.Millisecond,
	})
	f.Fuzz(func(t *testing.T, in []byte) {
		a, b := net.Pipe()
		done := make(chan struct{})
		go func() {
			s.ServeConn(a, nil)
			close(done)
		}()
		go func() { _, _ = io.Copy(io.Discard, b) }()
		_ = b.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = b.Write(append([]byte(http2.ClientPreface), in...))
		time.Sleep(time.Millisecond) // let handlers start and answer
		_ = b.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("connection did not end")
		}
	})
}
