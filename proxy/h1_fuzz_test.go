package proxy

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// pipeline is a generated sequence of raw requests and what the edge must do
// with it: forward the valid ones before the first invalid one, in order, and
// answer that one with its status.
type pipeline struct {
	raw   string
	seen  []string // what the origin must receive
	codes []int    // the statuses the client must get
}

// badRequests are invalid requests (RFC 9112) with the status the edge answers.
var badRequests = []struct {
	raw    string
	status int
}{
	{"POST /bad HTTP/1.1\r\nHost: shop\r\nFoo: bar\r\n Content-Length: 3\r\n\r\nabc", 400},
	{"POST /bad HTTP/1.1\r\nHost: shop\r\nDummy: x\nContent-Length: 3\r\n\r\nabc", 400},
	{"POST /bad HTTP/1.1\r\nHost: shop\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400},
	{"POST /bad HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n", 400},
	{"POST /bad HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n3;\r\nabc\r\n0\r\n\r\n", 400},
	{"GET /bad HTTP/1.1\r\nX: y\r\n\r\n", 400},
	{"POST /bad HTTP/1.1\r\nHost: shop\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400},
	{"POST /bad HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: gzip;q=1, chunked\r\n\r\n0\r\n\r\n", 501},
	{"POST /bad HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: gzip, chunked, gzip\r\n\r\n0\r\n\r\n", 400},
	{"GET /bad HTTP/2.0\r\nHost: shop\r\n\r\n", 505},
	{"GET /b\xc3\xa4d HTTP/1.1\r\nHost: shop\r\n\r\n", 400},
	{"G<T /bad HTTP/1.1\r\nHost: shop\r\n\r\n", 400},
	{"GET /bad HTTP/1.1\nHost: shop\r\n\r\n", 400},
	{" GET /bad HTTP/1.1\r\nHost: shop\r\n\r\n", 400},
	{"POST /bad HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nCookie: a\r\nHost: evil\r\n\r\n", 400},
	{"POST /bad HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked, identity\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400},
	{"POST /bad HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400},
	{"POST /bad HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc", 400},
	{"POST /bad HTTP/1.1\r\nHost: shop\r\nContent-Length: 3\r\nTransfer-Encoding: identity, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400},
	{"POST /bad HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: identity;q=1, gzip, chunked\r\n\r\n0\r\n\r\n", 501},
}

// chunkedFields are Transfer-Encoding field lines the edge takes as chunked:
// identity is a no-op coding, left out before the request reaches fasthttp
// and the origin.
var chunkedFields = []string{
	"Transfer-Encoding: chunked\r\n",
	"Transfer-Encoding: identity, chunked\r\n",
	"Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n",
	"transfer-encoding: IDENTITY , identity\r\nX-Between: 1\r\nTransfer-Encoding: identity,Chunked \r\n",
}

// discardedTrailerNames are trailer fields the edge discards (fasthttp
// refuses them in a trailer); genPipeline gives them droppedMarker values,
// which must never reach the origin.
var discardedTrailerNames = []string{"Content-Type", "cookie", "Authorization", "X-Forwarded-For", "X-REAL-IP", "Set-Cookie", "TE", "Trailer", "Proxy-Authorization", "Expect"}

// genPipeline builds up to n requests from r: valid GETs, unknown-method
// requests, Content-Length and chunked POSTs (with extensions and trailers),
// some after empty lines, and with probability pBad an invalid one.
func genPipeline(r *rand.Rand, n int, pBad float64) pipeline {
	var p pipeline
	var b strings.Builder
	for i := range n {
		for range r.IntN(3) / 2 {
			b.WriteString("\r\n")
		}
		if r.Float64() < pBad {
			bad := badRequests[r.IntN(len(badRequests))]
			b.WriteString(bad.raw)
			p.codes = append(p.codes, bad.status)
			// What follows the invalid request is never read; it may even
			// look like valid requests.
			b.WriteString("GET /after HTTP/1.1\r\nHost: shop\r\n\r\n")
			break
		}
		target := fmt.Sprintf("/v%d?q=%d", i, r.IntN(1000))
		body := strings.Repeat(string(rune('a'+r.IntN(26))), r.IntN(40))
		extra := ""
		if r.IntN(2) == 0 {
			extra = "X-Extra: \t" + strings.Repeat("v", r.IntN(20)) + " \r\n"
		}
		switch r.IntN(4) {
		case 0:
			fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: shop\r\n%s\r\n", target, extra)
			p.seen = append(p.seen, seenRequest("GET", target, ""))
		case 1:
			fmt.Fprintf(&b, "BREW %s HTTP/1.1\r\n%sHost: shop\r\n\r\n", target, extra)
			p.seen = append(p.seen, seenRequest("BREW", target, ""))
		case 2:
			fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: shop\r\n%sContent-Length: %d\r\n\r\n%s", target, extra, len(body), body)
			p.seen = append(p.seen, seenRequest("POST", target, body))
		default:
			te := chunkedFields[0]
			if r.IntN(3) == 0 {
				te = chunkedFields[r.IntN(len(chunkedFields))]
			}
			fmt.Fprintf(&b, "PUT %s HTTP/1.1\r\n%sHost: shop\r\n%s\r\n", target, te, extra)
			for rest := body; rest != ""; {
				k := min(len(rest), 1+r.IntN(16))
				ext := ""
				if r.IntN(3) == 0 {
					ext = `;n=v;q="x y"`
				}
				fmt.Fprintf(&b, "%x%s\r\n%s\r\n", k, ext, rest[:k])
				rest = rest[k:]
			}
			b.WriteString("0\r\n")
			if r.IntN(2) == 0 {
				b.WriteString("X-Trailer: 1\r\n")
			}
			for range r.IntN(3) {
				fmt.Fprintf(&b, "%s: %s\r\n", discardedTrailerNames[r.IntN(len(discardedTrailerNames))], droppedMarker)
				if r.IntN(2) == 0 {
					b.WriteString("X-Trailer: 2\r\n")
				}
			}
			b.WriteString("\r\n")
			p.seen = append(p.seen, seenRequest("PUT", target, body))
		}
		p.codes = append(p.codes, 200)
	}
	// The 200s come first, then the invalid request's status.
	p.raw = b.String()
	return p
}

// runPipeline sends p to the edge and checks what the client and the origin saw.
func runPipeline(t *testing.T, e *edge, o *recorder, p pipeline) {
	t.Helper()
	codes, last := rawExchange(t, e.addr, p.raw)
	seen := o.take()
	if leaks := o.takeLeaks(); len(leaks) > 0 {
		t.Fatalf("pipeline %q: a discarded trailer field reached the origin: %q", p.raw, leaks)
	}
	if fmt.Sprint(codes) != fmt.Sprint(p.codes) || fmt.Sprintf("%q", seen) != fmt.Sprintf("%q", p.seen) {
		t.Fatalf("pipeline %q:\nstatuses %v, want %v\norigin saw %q\nwant       %q", p.raw, codes, p.codes, seen, p.seen)
	}
	if n := len(codes); n > 0 && codes[n-1] != 200 {
		wantJSONError(t, last, codes[n-1])
	}
}

// TestEdgePipelineProperty sends generated pipelines, some with an invalid
// request, through the edge in front of a recording origin: the origin gets
// exactly the valid requests before the first invalid one, in order, with
// their method, target and body, never a trailer field the edge discards,
// and the client gets their answers followed by the invalid one's status.
func TestEdgePipelineProperty(t *testing.T) {
	o := newRecorder(t)
	e := startEdge(t, testConfig(o.origin), Options{})
	r := rand.New(rand.NewPCG(14, 9112))
	for range 150 {
		runPipeline(t, e, o, genPipeline(r, 1+r.IntN(6), 0.2))
	}
}

// FuzzEdgePipeline is TestEdgePipelineProperty with fuzzed generator seeds.
func FuzzEdgePipeline(f *testing.F) {
	f.Add(uint64(1), uint8(3), uint8(50))
	f.Add(uint64(2), uint8(6), uint8(0))
	f.Add(uint64(3), uint8(1), uint8(255))
	f.Add(uint64(14), uint8(7), uint8(20)) // chunked PUTs with identity
	o := newRecorder(f)
	e := startEdge(f, testConfig(o.origin), Options{})
	f.Fuzz(func(t *testing.T, seed uint64, n, bad uint8) {
		r := rand.New(rand.NewPCG(seed, uint64(n)<<8|uint64(bad)))
		runPipeline(t, e, o, genPipeline(r, 1+int(n%8), float64(bad)/255))
	})
}
