package proxy

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// inlineCache answers every GET from the local tier, on the event loop
// when io: eventloop (alloc_test.go's localCache is not built with -race).
type inlineCache struct{ memCache }

func (c *inlineCache) TryServeLocal(ctx *fasthttp.RequestCtx) bool {
	c.Serve(ctx, nil)
	return true
}

// rawGet sends one keep-alive GET on conn and reads the answer.
func rawGet(t *testing.T, conn net.Conn, br *bufio.Reader, path string) *fasthttp.Response {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: shop.example\r\n\r\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	var r fasthttp.Response
	if err := r.Read(br); err != nil {
		t.Fatalf("read answer: %v", err)
	}
	return &r
}

// The edge's own drain: /readyz flips to 503 at once (liveness, /healthz,
// does not), answers keep coming in full but close their keep-alive
// connection, only the token may drain or undrain, and undrain restores
// keep-alive. Both I/O cores (EDGE_TEST_IO) and both answer paths: a
// forwarded miss, and a hit from the local tier (on the event loop, answered
// inline).
func TestEdgeDrainReadinessAndKeepAlive(t *testing.T) {
	const token = "drain-test-token"
	auth := "Authorization: Bearer " + token
	for _, tc := range []struct {
		name  string
		cache Cache
	}{{"forwarded", nil}, {"local hit", &inlineCache{memCache{body: []byte(`{"id":1}`)}}}} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOrigin(t, "o1", nil)
			e := startEdge(t, testConfig(o), Options{Cache: tc.cache, AdminToken: token})
			ready := func(want int, status string) {
				t.Helper()
				r := e.adminDo(t, "GET", "/readyz", "")
				var st drainState
				if err := json.Unmarshal(r.Body(), &st); err != nil || r.StatusCode() != want || st.Status != status || st.Draining != (status == "draining") {
					t.Fatalf("GET /readyz = %d %s (%v), want %d %s", r.StatusCode(), r.Body(), err, want, status)
				}
				if r := e.adminDo(t, "GET", "/healthz", ""); r.StatusCode() != 200 {
					t.Fatalf("GET /healthz = %d while %s: liveness must not follow the drain", r.StatusCode(), status)
				}
			}
			ready(200, "ready")

			conn, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			br := bufio.NewReader(conn)
			if r := rawGet(t, conn, br, "/api/products/1/"); r.StatusCode() != 200 || r.ConnectionClose() {
				t.Fatalf("before the drain: %d, Connection: close %v", r.StatusCode(), r.ConnectionClose())
			}

			// Without the token nothing changes.
			for _, p := range []string{"/admin/drain", "/admin/undrain"} {
				wantJSONError(t, doOn(t, e.adminC, "POST", p, ""), 401)
				wantJSONError(t, doOn(t, e.adminC, "POST", p, "", "Authorization: Bearer wrong"), 401)
				wantJSONError(t, doOn(t, e.adminC, "POST", p+"?token="+token, "", auth), 401)
			}
			ready(200, "ready")
			wantJSONError(t, doOn(t, e.adminC, "POST", "/admin/drain", `{"now": true}`, auth), 400)
			ready(200, "ready")

			r := doOn(t, e.adminC, "POST", "/admin/drain", "", auth)
			if r.StatusCode() != 200 || !strings.Contains(string(r.Body()), `"draining":true`) {
				t.Fatalf("POST /admin/drain = %d %s", r.StatusCode(), r.Body())
			}
			since, ok := e.s.Draining()
			if !ok {
				t.Fatal("not draining after POST /admin/drain")
			}
			ready(503, "draining")
			if m := e.adminDo(t, "GET", "/metrics", ""); !strings.Contains(string(m.Body()), "\nedge_draining 1\n") {
				t.Fatal("/metrics does not say edge_draining 1 while draining")
			}
			// A second drain keeps the first instant (SIGTERM after a preStop
			// drain waits only for what is left).
			if again := e.s.Drain(); !again.Equal(since) {
				t.Fatalf("second drain moved the instant from %v to %v", since, again)
			}

			// The open keep-alive connection: its next answer is whole, says
			// Connection: close, and the edge closes the connection.
			r = rawGet(t, conn, br, "/api/products/1/")
			if r.StatusCode() != 200 || !r.ConnectionClose() || len(r.Body()) == 0 {
				t.Fatalf("while draining: %d, Connection: close %v, body %q", r.StatusCode(), r.ConnectionClose(), r.Body())
			}
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			if n, err := br.ReadByte(); err != io.EOF {
				t.Fatalf("connection still open after Connection: close (read %v, %v)", n, err)
			}
			// A new connection is still served (the balancer may not have
			// caught up yet), and told to go.
			if r := e.do(t, "GET", "/api/products/2/", ""); r.StatusCode() != 200 || !r.ConnectionClose() {
				t.Fatalf("new request while draining: %d, Connection: close %v", r.StatusCode(), r.ConnectionClose())
			}

			if r := doOn(t, e.adminC, "POST", "/admin/undrain", "", auth); r.StatusCode() != 200 || !strings.Contains(string(r.Body()), `"status":"ready"`) {
				t.Fatalf("POST /admin/undrain = %d %s", r.StatusCode(), r.Body())
			}
			ready(200, "ready")
			if m := e.adminDo(t, "GET", "/metrics", ""); !strings.Contains(string(m.Body()), "\nedge_draining 0\n") {
				t.Fatal("/metrics does not say edge_draining 0 after undrain")
			}
			conn2, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn2.Close()
			br2 := bufio.NewReader(conn2)
			for range 2 {
				if r := rawGet(t, conn2, br2, "/api/products/1/"); r.StatusCode() != 200 || r.ConnectionClose() {
					t.Fatalf("after undrain: %d, Connection: close %v", r.StatusCode(), r.ConnectionClose())
				}
			}
		})
	}
}
