package proxy

import (
	"bufio"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/novashop/edge/proxy/config"
	"github.com/valyala/fasthttp"
)

// batchCounter is a raw origin that records the most requests it found
// buffered together on one connection (more than one: the edge pipelined).
type batchCounter struct {
	ln   net.Listener
	url  string
	most atomic.Int64
	reqs atomic.Int64
}

func startBatchCounter(t *testing.T) *batchCounter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &batchCounter{ln: ln, url: "http://" + ln.Addr().String()}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go o.serve(c)
		}
	}()
	return o
}

func (o *batchCounter) serve(c net.Conn) {
	defer c.Close()
	br, bw := bufio.NewReader(c), bufio.NewWriter(c)
	n := 0 // requests in the batch read so far
	var req fasthttp.Request
	for {
		if err := req.Read(br); err != nil {
			return
		}
		o.reqs.Add(1)
		n++
		for m := o.most.Load(); int64(n) > m && !o.most.CompareAndSwap(m, int64(n)); m = o.most.Load() {
		}
		_, _ = bw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
		if br.Buffered() == 0 {
			n = 0
			if bw.Flush() != nil {
				return
			}
		}
	}
}

// reset forgets what the origin saw.
func (o *batchCounter) reset() { o.most.Store(0); o.reqs.Store(0) }

// TestLoopPipelineDepthPerUpstream: upstreams[].pipeline_depth reaches the
// event loops through the configuration, and a reload changes it: the host
// with pipeline_depth 0 always reads one request at a time while the other,
// at limits.upstream_pipeline_depth, gets pipelined requests; a reload swaps
// them.
func TestLoopPipelineDepthPerUpstream(t *testing.T) {
	o1, o2 := startBatchCounter(t), startBatchCounter(t)
	zero := 0
	cfg := config.Default()
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:1"
	cfg.Upstreams = []config.Upstream{
		{Name: "o1", URL: o1.url, Weight: 1, PipelineDepth: &zero},
		{Name: "o2", URL: o2.url, Weight: 1},
	}
	cfg.IO = config.IOEventLoop
	cfg.IOLoops = 1
	cfg.Health.Active = false
	cfg.AccessLog.Enabled = false
	cfg.Limits.UpstreamPipelineDepth = 8
	e := startEdge(t, cfg, Options{})

	// burst sends concurrent keep-alive requests until the pipelined host
	// read several requests at once (at most a few bursts).
	burst := func(piped *batchCounter) {
		t.Helper()
		for try := 0; try < 8 && piped.most.Load() < 2 && !t.Failed(); try++ {
			var wg sync.WaitGroup
			for g := 0; g < 24; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := &fasthttp.HostClient{Addr: e.addr, MaxConns: 1, ReadTimeout: 10 * time.Second}
					for i := 0; i < 20; i++ {
						code, _, err := c.Get(nil, "http://shop/api/products/1/")
						if err != nil || code != 200 {
							t.Errorf("request: %d %v", code, err)
							return
						}
					}
				}()
			}
			wg.Wait()
		}
	}
	burst(o2)
	if o1.reqs.Load() == 0 || o2.most.Load() < 2 {
		t.Fatalf("o1 served %d, o2 read at most %d at once: the loops never pipelined to o2", o1.reqs.Load(), o2.most.Load())
	}
	if m := o1.most.Load(); m != 1 {
		t.Fatalf("o1 (pipeline_depth 0) read %d requests at once", m)
	}

	// A reload turns pipelining on for o1 and off for o2.
	eight := 8
	next := cfg
	next.Upstreams = []config.Upstream{
		{Name: "o1", URL: o1.url, Weight: 1},
		{Name: "o2", URL: o2.url, Weight: 1, PipelineDepth: &zero},
	}
	next.Limits.UpstreamPipelineDepth = eight
	if err := e.s.Reload(next); err != nil {
		t.Fatal(err)
	}
	o1.reset()
	o2.reset()
	burst(o1)
	if o2.reqs.Load() == 0 || o1.most.Load() < 2 {
		t.Fatalf("after the reload o2 served %d, o1 read at most %d at once: the loops never pipelined to o1", o2.reqs.Load(), o1.most.Load())
	}
	if m := o2.most.Load(); m != 1 {
		t.Fatalf("after the reload o2 (pipeline_depth 0) read %d requests at once", m)
	}
}
