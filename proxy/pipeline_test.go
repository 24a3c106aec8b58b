package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/novashop/edge/proxy/config"
	"github.com/valyala/fasthttp"
)

// pipelineOrigin answers by path: the ordinary 2 KB JSON the benchmark's
// origins send (the light path), a 404, a chunked body, 304 and 204.
func pipelineOrigin(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/api/products/1/":
		ctx.Response.Header.Set("Cache-Control", "no-store")
		ctx.Response.Header.Set("Cache-Tag", "product:1")
		ctx.SetContentType("application/json")
		ctx.SetBody(bytes.Repeat([]byte("j"), 2048))
	case "/api/products/2/":
		ctx.SetStatusCode(404)
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"error":"no such product"}`)
	case "/api/products/3/":
		ctx.SetContentType("text/plain")
		ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
			_, _ = w.WriteString("chunk one,")
			_ = w.Flush()
			_, _ = w.WriteString("chunk two")
		})
	case "/api/products/4/":
		ctx.Response.Header.Set("ETag", `"v1"`)
		ctx.SetStatusCode(304)
	default:
		ctx.SetStatusCode(204)
	}
}

var servedBy = regexp.MustCompile(`\r\nX-Served-By: o[12]\r\n`)

// pipelineRequests are what the clients send, round robin.
var pipelineRequests = []string{
	"GET /api/products/1/ HTTP/1.1\r\nHost: shop\r\nX-Request-Id: rid-1\r\n\r\n",
	"GET /api/products/2/ HTTP/1.1\r\nHost: shop\r\nX-Request-Id: rid-2\r\n\r\n",
	"HEAD /api/products/1/ HTTP/1.1\r\nHost: shop\r\nX-Request-Id: rid-3\r\n\r\n",
	"GET /api/products/3/ HTTP/1.1\r\nHost: shop\r\nX-Request-Id: rid-4\r\n\r\n",
	"GET /api/products/1/ HTTP/1.1\r\nHost: shop\r\nX-Request-Id: rid-5\r\n\r\n",
	"GET /api/products/4/ HTTP/1.1\r\nHost: shop\r\nX-Request-Id: rid-6\r\n\r\n",
	"GET /api/products/5/ HTTP/1.1\r\nHost: shop\r\nX-Request-Id: rid-7\r\n\r\n",
}

// pipeExchange sends req on c and returns the answer's bytes as received, Date
// and the serving origin's name blanked.
func pipeExchange(c net.Conn, req string) (string, error) {
	if _, err := io.WriteString(c, req); err != nil {
		return "", err
	}
	var raw bytes.Buffer
	var resp fasthttp.Response
	resp.SkipBody = strings.HasPrefix(req, "HEAD ")
	if err := resp.Read(bufio.NewReader(io.TeeReader(c, &raw))); err != nil {
		return "", err
	}
	b := answerDate.ReplaceAll(raw.Bytes(), []byte("\r\nDate: D\r\n"))
	return string(servedBy.ReplaceAll(b, []byte("\r\nX-Served-By: o\r\n"))), nil
}

// TestLoopPipelineMatchesUnpipelined: through the whole handler pipeline on
// the event loop, clients get byte-identical answers whether the loops
// pipeline requests to the origins (limits.upstream_pipeline_depth) or not,
// under concurrent keep-alive clients that make the loops pipeline.
func TestLoopPipelineMatchesUnpipelined(t *testing.T) {
	o1 := newOrigin(t, "o1", pipelineOrigin)
	o2 := newOrigin(t, "o2", pipelineOrigin)
	start := func(depth int) *edge {
		cfg := testConfig(o1, o2)
		cfg.IO = config.IOEventLoop
		cfg.Health.Active = false
		cfg.Limits.UpstreamPipelineDepth = depth
		return startEdge(t, cfg, Options{})
	}
	// The answers without pipelining, one client.
	off := start(0)
	c, err := net.Dial("tcp", off.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	want := make([]string, len(pipelineRequests))
	for i, r := range pipelineRequests {
		if want[i], err = pipeExchange(c, r); err != nil {
			t.Fatal(err)
		}
	}
	if st := off.s.loops.Stats(); st.Pipelined != 0 || st.Forwards != uint64(len(pipelineRequests)) {
		t.Fatalf("without pipelining: %+v", st)
	}
	on := start(8)
	// Concurrent clients until the loops have pipelined (a round of ready
	// events with several requests to one origin), at most a few bursts.
	const clients, each = 24, 28
	for burst := 0; burst < 8 && !t.Failed(); burst++ {
		var wg sync.WaitGroup
		for g := 0; g < clients; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				c, err := net.Dial("tcp", on.addr)
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				for i := 0; i < each; i++ {
					k := (g + i) % len(pipelineRequests)
					got, err := pipeExchange(c, pipelineRequests[k])
					if err != nil {
						t.Errorf("client %d, request %d: %v", g, i, err)
						return
					}
					if got != want[k] {
						t.Errorf("client %d, request %q: pipelined answer differs\n got: %.300q\nwant: %.300q", g, pipelineRequests[k], got, want[k])
						return
					}
				}
			}(g)
		}
		wg.Wait()
		if on.s.loops.Stats().Pipelined > 0 {
			break
		}
	}
	st := on.s.loops.Stats()
	if st.Pipelined == 0 {
		t.Fatalf("the loops never pipelined: %+v", st)
	}
	if st.Handoffs != 0 {
		t.Fatalf("hand-offs: %+v", st)
	}
	t.Logf("stats with pipelining: %+v", st)
}
