package h2srv

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// BenchmarkInlineAnswer: one GET answered inline (a 2 KB body, a few
// fields), over net.Pipe with a raw client: the server's per-request cost
// (frame reading, HPACK both ways, the RequestCtx, the answer's frames)
// plus the client's frame reading. Reports allocations per request.
func BenchmarkInlineAnswer(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 2048)
	h := func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Cache-Control", "public, max-age=60")
		ctx.Response.Header.Set("X-Cache", "hit")
		ctx.SetContentType("application/json")
		ctx.SetBody(body)
	}
	s := New(Config{Handler: h, Inline: func(ctx *fasthttp.RequestCtx) (bool, fasthttp.RequestHandler) {
		h(ctx)
		return true, nil
	}})
	a, c := net.Pipe()
	go s.ServeConn(a, nil)
	defer c.Close()
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	setup := make(chan struct{})
	go func() {
		defer close(setup)
		_, _ = io.WriteString(c, http2.ClientPreface)
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
		_ = fr.WriteWindowUpdate(0, 1<<30)
	}()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":path", "/api/products/1/"}, {":authority", "shop.test"}, {"user-agent", "bench"}} {
		// Never indexed, so the same block can be sent again.
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1], Sensitive: true})
	}
	blk := hb.Bytes()
	// Until the server's SETTINGS ACK: the windows are open.
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			b.Fatal(err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && sf.IsAck() {
			break
		}
	}
	<-setup
	id := uint32(1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// net.Pipe: the write returns once the server has read the frame.
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: blk, EndStream: true, EndHeaders: true}); err != nil {
			b.Fatal(err)
		}
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				b.Fatal(err)
			}
			if ga, ok := f.(*http2.GoAwayFrame); ok {
				b.Fatalf("GOAWAY %v %q", ga.ErrCode, ga.DebugData())
			}
			if f.Header().Flags.Has(http2.FlagDataEndStream) && f.Header().Type == http2.FrameData {
				break
			}
		}
		id += 2
	}
}
