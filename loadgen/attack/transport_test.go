package attack

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestTransport pins what vegeta sees through the fasthttp transport: the
// request as built (method, path, query, headers, body, no fragment on the
// wire), the answer's status in net/http's spelling, every header, bodies
// only for kept labels (with the size still known), and redirects returned
// rather than followed.
func TestTransport(t *testing.T) {
	base := serve(t, func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/redirect":
			ctx.Redirect("/elsewhere", fasthttp.StatusSeeOther)
		case "/fail":
			ctx.Error("down", fasthttp.StatusBadGateway)
		default:
			// One spelled in lower case on the wire: the transport must
			// still file it under the canonical name, as net/http does.
			ctx.Response.Header.DisableNormalizing()
			ctx.Response.Header.Add("Cache-Status", "a; hit")
			ctx.Response.Header.Add("cache-status", "b; fwd=miss")
			ctx.Response.Header.Set("X-Echo", string(ctx.Method())+" "+string(ctx.RequestURI())+" "+
				string(ctx.Request.Header.Peek("X-Seq"))+" "+string(ctx.PostBody()))
			ctx.SetBodyString("0123456789")
		}
	})
	c := newClient(2*time.Second, func(label string) bool { return label == "keep" })
	tests := []struct {
		name, method, url, body string
		status                  int
		statusText, echo        string
		wantBody                string
		length                  int64
	}{
		{"kept body", "GET", "/p?q=1#keep", "", 200, "200 OK", "GET /p?q=1 7", "0123456789", 10},
		{"dropped body keeps its size", "GET", "/p#other", "", 200, "200 OK", "GET /p 7", "", 10},
		{"request body", "POST", "/p#keep", `{"a":1}`, 200, "200 OK", `POST /p 7 {"a":1}`, "0123456789", 10},
		{"redirect not followed", "GET", "/redirect#keep", "", 303, "303 See Other", "", "", 0},
		{"error status", "GET", "/fail#keep", "", 502, "502 Bad Gateway", "", "down", 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, err := http.NewRequest(tc.method, base+tc.url, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Seq", "7")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || resp.Status != tc.statusText {
				t.Fatalf("status %d %q, want %d %q", resp.StatusCode, resp.Status, tc.status, tc.statusText)
			}
			if tc.echo != "" && resp.Header.Get("X-Echo") != tc.echo {
				t.Fatalf("origin saw %q, want %q", resp.Header.Get("X-Echo"), tc.echo)
			}
			if string(got) != tc.wantBody || resp.ContentLength != tc.length {
				t.Fatalf("body %q (length %d), want %q (%d)", got, resp.ContentLength, tc.wantBody, tc.length)
			}
			if tc.status == 200 && strings.Join(resp.Header.Values("Cache-Status"), ", ") != "a; hit, b; fwd=miss" {
				t.Fatalf("Cache-Status values %q", resp.Header.Values("Cache-Status"))
			}
		})
	}
}
