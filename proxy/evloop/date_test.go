package evloop

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/novashop/edge/proxy/cache"
	"github.com/valyala/fasthttp"
)

// With NoDefaultDate the answer carries the handler's own Date, as
// fasthttp.Server does with its option of that name.
func TestNoDefaultDate(t *testing.T) {
	const stored = "Sun, 06 Dec 2026 06:14:58 GMT"
	for _, noDefault := range []bool{false, true} {
		var resp fasthttp.Response
		if noDefault {
			setNoDefaultDate(&resp.Header)
		}
		// How the edge's cache puts a stored Date back (Set ignores Date).
		cache.SetDate(&resp.Header, []byte(stored))
		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		if err := resp.Write(w); err != nil {
			t.Fatal(err)
		}
		_ = w.Flush()
		got := bytes.Contains(b.Bytes(), []byte("Date: "+stored+"\r\n"))
		if got != noDefault {
			t.Errorf("NoDefaultDate=%v: stored Date sent = %v\n%s", noDefault, got, b.Bytes())
		}
	}
}
