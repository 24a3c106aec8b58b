//go:build linux

package evloop

import (
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// One origin's own pipeline depth (ForwardDepth): an origin given depth 0
// gets one request per write while another, at Config.PipelineDepth, gets
// the same round's requests pipelined; a new depth (a configuration reload)
// applies from the next round.
func TestPipelinePerOriginDepth(t *testing.T) {
	answer := func(path, method string, _, _ int) originAnswer { return originAnswer{raw: pipeAnswer(path, method)} }
	a, b := startBatchOrigin(t, answer), startBatchOrigin(t, answer)
	cfg := forwardAll(a.ln.Addr().String(), 5*time.Second, nil)
	cfg.PipelineDepth = 8
	var bDepth atomic.Int64 // B's depth: 0, off
	toA := cfg.Inline
	cfg.Inline = func(ctx *fasthttp.RequestCtx) (bool, fasthttp.RequestHandler) {
		if !strings.HasPrefix(string(ctx.Path()), "/x") {
			return toA(ctx)
		}
		if err := ForwardDepth(ctx, b.ln.Addr().String(), 5*time.Second, int(bDepth.Load())); err != nil {
			ctx.SetStatusCode(502)
			ctx.SetBodyString("forward: " + err.Error())
			return true, nil
		}
		return false, nil
	}
	s, edge, block := blockLoops(t, cfg)
	reqs := []string{get("/a1"), get("/x1"), get("/a2"), get("/x2"), get("/a3"), get("/x3")}
	check := func(got []string) {
		t.Helper()
		for i, ans := range got {
			if !strings.HasPrefix(ans, "HTTP/1.1 200 OK") || !strings.HasSuffix(ans, "hello") {
				t.Fatalf("request %d: %q", i, ans)
			}
		}
	}
	warmB := func() {
		t.Helper()
		if code, _, err := fasthttp.GetTimeout(nil, "http://"+edge+"/xwarm", 10*time.Second); err != nil || code != 200 {
			t.Fatalf("warm-up of B: %d %v", code, err)
		}
	}
	warm(t, edge)
	warmB()
	check(round(t, edge, block, reqs))
	mostA, batchesA := a.maxBatch()
	mostB, batchesB := b.maxBatch()
	if mostA != 3 {
		t.Errorf("A (depth 8) read at most %d requests at once, want 3: %q", mostA, batchesA)
	}
	if mostB != 1 || len(batchesB) != 4 {
		t.Errorf("B (depth 0) got batches %q, want 4 of one request each", batchesB)
	}
	if st := s.Stats(); st.Pipelined != 2 {
		t.Errorf("stats %+v: want 2 pipelined (behind A's first)", st)
	}

	// B's depth goes to 8: its next round is pipelined.
	bDepth.Store(8)
	warmB()
	check(round(t, edge, block, reqs))
	if mostB, batchesB = b.maxBatch(); mostB != 3 {
		t.Errorf("B at depth 8 read at most %d requests at once, want 3: %q", mostB, batchesB)
	}
	if st := s.Stats(); st.Pipelined != 6 {
		t.Errorf("stats %+v: want 6 pipelined", st)
	}
}

// Requests sent again after an origin closed a pipelined connection take
// no more connections than Config.MaxUpstreamConns: those that find the cap
// reached wait for a connection to close, then every one is answered; or,
// if their try's time runs out first, they end with a timeout, and the loop
// goes on serving.
func TestPipelineResendWithinCap(t *testing.T) {
	tests := []struct {
		name    string
		wait    time.Duration // before each answer sent again
		timeout time.Duration
	}{
		{"all answered", 50 * time.Millisecond, 5 * time.Second},
		{"waiting past the deadline", time.Second, 400 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := startBatchOrigin(t, func(path, _ string, pos, size int) originAnswer {
				n := strings.TrimPrefix(path, "/n")
				body := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(n)) + "\r\n"
				switch {
				case !strings.HasPrefix(path, "/n"):
					// The warm-up: its connection stays for the pipeline.
					return originAnswer{raw: pipeAnswer(path, "GET")}
				case size > 1:
					// The first of a pipeline is answered, then the
					// connection closes: the rest go again.
					if pos > 0 {
						t.Errorf("the origin read past the first of a pipeline")
					}
					return originAnswer{raw: body + "\r\n" + n, close: true}
				default:
					// A request sent again: answered after wait, one per
					// connection.
					return originAnswer{raw: body + "Connection: close\r\n\r\n" + n, close: true, wait: tt.wait}
				}
			})
			cfg := forwardAll(o.ln.Addr().String(), tt.timeout, nil)
			cfg.PipelineDepth = 8
			cfg.MaxUpstreamConns = 2
			s, edge, block := blockLoops(t, cfg)
			warm(t, edge)
			reqs := []string{get("/n1"), get("/n2"), get("/n3"), get("/n4"), get("/n5"), get("/n6")}
			got := round(t, edge, block, reqs)
			_, batches := o.maxBatch()
			if len(batches) < 2 || len(batches[1]) != len(reqs) {
				t.Fatalf("not pipelined: batches %q", batches)
			}
			for i, a := range got {
				n := strconv.Itoa(i + 1)
				switch {
				case i == 0 || tt.wait < tt.timeout:
					if !strings.HasPrefix(a, "HTTP/1.1 200 OK") || !strings.HasSuffix(a, "\r\n\r\n"+n) {
						t.Errorf("request %d: %q", i+1, a)
					}
				case !strings.HasPrefix(a, "HTTP/1.1 504"):
					t.Errorf("request %d: %q, want a timeout", i+1, a)
				}
			}
			st := s.Stats()
			if tt.wait < tt.timeout {
				if peak := o.peak.Load(); peak > 2 {
					t.Errorf("the origin had %d connections at once, the cap is 2", peak)
				}
				if st.ForwardRetries != 5 {
					t.Errorf("stats %+v: want 5 sent again", st)
				}
			} else if n := o.conns.Load(); n > 3 {
				// The warm-up's, then two for the requests sent again.
				t.Errorf("the origin saw %d connections, want at most 3 with a cap of 2", n)
			}
			// The loop serves on.
			if code, _, err := fasthttp.GetTimeout(nil, "http://"+edge+"/a", 10*time.Second); err != nil || code != 200 {
				t.Errorf("after: %d %v", code, err)
			}
		})
	}
}
