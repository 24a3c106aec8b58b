package e2e

import (
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/novashop/edge/internal/testenv"
)

// TestReadYourWritesTokenAcrossEdges (issue #4, "read-your-writes through
// any edge"): a staff price change through edge A answers with the
// read-your-writes token (Novashop-RV header and novashop_rv cookie); a GET
// through edge B made right after the acknowledgement and carrying the
// token always gets the new price, even though B learns of the bump only
// from Redis' asynchronous push. Half the pairs copy the header by hand
// (an API client), half let a cookie jar carry the cookie (a browser: both
// edges are on 127.0.0.1, and cookies ignore the port). The same pairs
// without the token are counted and logged as the control.
func TestReadYourWritesTokenAcrossEdges(t *testing.T) {
	redis := testenv.FreshRedis(t)
	st := startTwoEdges(t, redis.URL, redis.URL)
	c := newClient(t)
	admin := c.login(st.a.url, "admin", "admin123")
	const id = 9
	pathA := fmt.Sprintf("%s/api/products/%d/", st.a.url, id)
	pathB := fmt.Sprintf("%s/api/products/%d/", st.b.url, id)

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &client{t: t, hc: &http.Client{Transport: c.hc.Transport, Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}

	// The product list is tagged "products", which a price change bumps,
	// but it is not the written URI: B keeps its local entry after the
	// write, so every token read of it must be checked against Redis.
	listB := st.b.url + "/api/products/?limit=100"
	priceInList := func(r response) string {
		for _, p := range decode[struct {
			Results []product `json:"results"`
		}](t, r).Results {
			if p.ID == id {
				return p.Price
			}
		}
		t.Fatalf("product %d not in %s: %s", id, listB, r)
		return ""
	}
	changedBefore := rvChecks(t, c, st.b, "changed")

	pairs := 100
	if testing.Short() {
		pairs = 20
	}
	for i := range pairs {
		warm(t, c, listB)
		old := decode[product](t, warm(t, c, pathB)).Price
		price := fmt.Sprintf("%d.%02d", 500+i, i%100)
		if price == old {
			t.Fatalf("pair %d: price %s already set", i, price)
		}
		viaJar := i%2 == 1
		w := c
		if viaJar {
			w = browser
		}
		ack := w.must(200, "PATCH", pathA, admin, map[string]string{"price": price})
		tok := ack.header.Get("Novashop-RV")
		if tok == "" {
			t.Fatalf("pair %d: the write's answer has no Novashop-RV header: %v", i, ack.header)
		}
		if i == 0 {
			checkTokenCookie(t, ack, tok)
		}
		for _, url := range []string{pathB, listB} {
			var r response
			if viaJar {
				r, err = browser.do("GET", url, "", nil)
			} else {
				r, err = c.doHeader("GET", url, "", map[string]string{"Novashop-RV": tok}, nil)
			}
			if err != nil || r.status != 200 {
				t.Fatalf("pair %d: GET %s: %v %v", i, url, r, err)
			}
			var got string
			if url == pathB {
				got = decode[product](t, r).Price
			} else {
				got = priceInList(r)
			}
			if got != price {
				t.Fatalf("pair %d (cookie jar: %v): edge B answered price %s on %s right after edge A acknowledged %s (Cache-Status %q)",
					i, viaJar, got, url, price, r.header.Get("Cache-Status"))
			}
			if cs := r.header.Get("Cache-Status"); cs == "novashop-edge; hit" {
				t.Fatalf("pair %d: edge B answered a token holder from its local copies without checking Redis (Cache-Status %q)", i, cs)
			}
			if r.header.Get("Set-Cookie") != "" || r.header.Get("Novashop-RV") != "" {
				t.Fatalf("pair %d: a read through B carries a token back: %v", i, r.header)
			}
		}
	}
	// Every token read of the list found B's local entry and checked it
	// against Redis, which had the bump even when B's push had not come.
	if n := rvChecks(t, c, st.b, "changed") - changedBefore; n < pairs {
		t.Fatalf("edge B counted %d read-your-writes checks that found a change, want at least %d (one per list read)", n, pairs)
	}

	// Control: the same pairs without the token.
	stale := 0
	for i := range pairs {
		warm(t, c, pathB)
		price := fmt.Sprintf("%d.%02d", 700+i, i%100)
		c.must(200, "PATCH", pathA, admin, map[string]string{"price": price})
		if decode[product](t, c.must(200, "GET", pathB, "", nil)).Price != price {
			stale++
		}
	}
	t.Logf("read-your-writes: %d write-then-read pairs across two edges, every read with the token got the new price; without the token %d of %d reads got the old one",
		pairs, stale, pairs)

	// Catalog pages stay shared: a reader without the token hits the entry
	// a token holder's read refilled.
	r := warm(t, c, pathB)
	if r.header.Get("Set-Cookie") != "" {
		t.Fatalf("a cached answer carries Set-Cookie: %v", r.header)
	}
}

// checkTokenCookie checks the write's Set-Cookie for the token: the same
// value as the header, and the attributes docs/cache.md promises.
func checkTokenCookie(t *testing.T, r response, tok string) {
	t.Helper()
	for _, sc := range r.header.Values("Set-Cookie") {
		if !strings.HasPrefix(sc, "novashop_rv=") {
			continue
		}
		low := strings.ToLower(sc)
		if !strings.HasPrefix(sc, "novashop_rv="+tok+";") {
			t.Fatalf("cookie %q does not hold the header's token %q", sc, tok)
		}
		for _, attr := range []string{"path=/", "max-age=5", "httponly", "samesite=lax"} {
			if !strings.Contains(low, attr) {
				t.Fatalf("cookie %q lacks %s", sc, attr)
			}
		}
		return
	}
	t.Fatalf("the write's answer sets no novashop_rv cookie: %v", r.header.Values("Set-Cookie"))
}

// rvChecks reads edge_cache_rv_checks_total{result=...} from an edge's
// admin /metrics.
func rvChecks(t *testing.T, c *client, e *edge, result string) int {
	t.Helper()
	r := c.must(200, "GET", e.admin+"/metrics", "", nil)
	prefix := `edge_cache_rv_checks_total{result="` + result + `"} `
	for _, line := range strings.Split(string(r.body), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("metrics line %q: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("%s/metrics has no %s line", e.admin, strings.TrimSpace(prefix))
	return 0
}
