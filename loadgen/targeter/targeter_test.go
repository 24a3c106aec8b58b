package targeter

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/novashop/edge/loadgen/campaign"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func parse(t *testing.T, y string) *campaign.Campaign {
	t.Helper()
	c, err := campaign.Parse([]byte(y), "t")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMixWeights(t *testing.T) {
	c := parse(t, `
rate: [{profile: constant, rps: 1}]
requests:
  - {name: a, path: /a, weight: 3}
  - {name: b, path: /b, weight: 1}
`)
	tr, err := New(c, "http://127.0.0.1:1/")
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for range 4000 {
		var tgt vegeta.Target
		if err := tr.Next(&tgt); err != nil {
			t.Fatal(err)
		}
		counts[RequestName(tgt.URL)]++
	}
	if a := counts["a"]; a < 2800 || a > 3200 {
		t.Errorf("weight 3 of 4 drawn %d of 4000 times", a)
	}
}

func TestFill(t *testing.T) {
	c := parse(t, `
rate: [{profile: constant, rps: 1}]
headers: {X-Campaign: "c-${id}"}
feeders:
  id: {range: [7, 7]}
  word: {list: ["a b/c&d"]}
requests:
  - name: r
    method: post
    path: "/p/${word}/?q=${word}&id=${id}"
    body: '{"id": ${id}}'
`)
	tr, err := New(c, "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	var tgt vegeta.Target
	if err := tr.Next(&tgt); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, got, want string }{
		{"method", tgt.Method, http.MethodPost},
		{"url escapes path and query apart", tgt.URL, "http://127.0.0.1:1/p/a%20b%2Fc&d/?q=a+b%2Fc%26d&id=7#r"},
		{"body", string(tgt.Body), `{"id": 7}`},
		{"json content type", tgt.Header.Get("Content-Type"), "application/json"},
		{"campaign header", tgt.Header.Get("X-Campaign"), "c-7"},
		{"name", RequestName(tgt.URL), "r"},
		{"strip", StripFragment(tgt.URL), "http://127.0.0.1:1/p/a%20b%2Fc&d/?q=a+b%2Fc%26d&id=7"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	req, err := tgt.Request()
	if err != nil {
		t.Fatal(err)
	}
	if req.URL.Fragment != "r" || strings.Contains(req.URL.RequestURI(), "#") {
		t.Errorf("the label must stay out of the request line, got %q", req.URL.RequestURI())
	}
}

func TestPoolExtractionAndFallback(t *testing.T) {
	c := parse(t, `
rate: [{profile: constant, rps: 1}]
feeders: {cursor: {pool: 10}}
requests:
  - {name: first, path: /list, extract: {cursor: next}}
  - {name: next, path: "/list?cursor=${cursor}", weight: 1000}
`)
	tr, err := New(c, "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	var tgt vegeta.Target
	if err := tr.Next(&tgt); err != nil {
		t.Fatal(err)
	}
	if RequestName(tgt.URL) != "first" {
		t.Fatalf("with an empty pool the targeter must fall back to the list, got %s", tgt.URL)
	}
	tr.Observe(&vegeta.Result{URL: tgt.URL, Code: 200, Body: []byte(`{"results": [], "next": "abc="}`)})
	for range 20 {
		if err := tr.Next(&tgt); err != nil {
			t.Fatal(err)
		}
		if RequestName(tgt.URL) == "next" {
			if !strings.Contains(tgt.URL, "cursor=abc%3D#") {
				t.Fatalf("cursor not taken from the answer: %s", tgt.URL)
			}
			return
		}
	}
	t.Fatal("the cursor request was never drawn once the pool had a value")
}

func TestExtractIgnoresNullAndErrors(t *testing.T) {
	c := parse(t, `
rate: [{profile: constant, rps: 1}]
feeders: {cursor: {pool: 10}}
requests:
  - {name: first, path: /list, extract: {cursor: next}}
`)
	tr, _ := New(c, "http://127.0.0.1:1")
	for _, r := range []vegeta.Result{
		{URL: "http://x/list#first", Code: 200, Body: []byte(`{"next": null}`)},
		{URL: "http://x/list#first", Code: 200, Body: []byte(`not json`)},
		{URL: "http://x/list#first", Code: 500, Body: []byte(`{"next": "x"}`)},
		{URL: "http://x/list#first", Code: 200, Body: []byte(`{"next": ""}`)},
	} {
		tr.Observe(&r)
	}
	if n := tr.pools["cursor"].Len(); n != 0 {
		t.Errorf("pool holds %d values, want 0", n)
	}
}

const journeyYAML = `
rate: [{profile: constant, rps: 1}]
feeders:
  user: {users: {count: 5}}
  product: {range: [3, 3]}
journeys:
  - name: buy
    bind: [user]
    steps:
      - {name: login, method: POST, path: /api/login/, body: '{"username": "${user}"}', extract: {token: access}}
      - {name: add, method: POST, path: /api/cart/items/, headers: {Authorization: "Bearer ${token}"}, body: '{"product_id": ${product}}'}
      - {name: order, method: POST, path: /api/orders/, headers: {Authorization: "Bearer ${token}"}}
`

func TestJourneyRunsStepsInOrder(t *testing.T) {
	tr, err := New(parse(t, journeyYAML), "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	var login vegeta.Target
	if err := tr.Next(&login); err != nil {
		t.Fatal(err)
	}
	if RequestName(login.URL) != "buy/login" {
		t.Fatalf("first step = %s", login.URL)
	}
	user := strings.TrimSuffix(strings.TrimPrefix(string(login.Body), `{"username": "`), `"}`)
	// Before the login is answered, another Next starts a new journey.
	var other vegeta.Target
	_ = tr.Next(&other)
	if RequestName(other.URL) != "buy/login" {
		t.Fatalf("a step was released before its predecessor was answered: %s", other.URL)
	}
	tr.Observe(&vegeta.Result{URL: login.URL, Code: 200, Body: []byte(`{"access": "tok", "refresh": "r"}`)})
	var add vegeta.Target
	if err := tr.Next(&add); err != nil {
		t.Fatal(err)
	}
	if RequestName(add.URL) != "buy/add" || add.Header.Get("Authorization") != "Bearer tok" || string(add.Body) != `{"product_id": 3}` {
		t.Fatalf("second step = %s %v %s", add.URL, add.Header, add.Body)
	}
	tr.Observe(&vegeta.Result{URL: add.URL, Code: 201})
	var order vegeta.Target
	_ = tr.Next(&order)
	if RequestName(order.URL) != "buy/order" {
		t.Fatalf("third step = %s", order.URL)
	}
	tr.Observe(&vegeta.Result{URL: order.URL, Code: 201})
	// The other journey's login fails: it is aborted.
	tr.Observe(&vegeta.Result{URL: other.URL, Code: 401})
	if st := tr.Stats(); st != (Stats{Started: 2, Completed: 1, Aborted: 1}) {
		t.Errorf("stats = %+v", st)
	}
	if !strings.HasPrefix(user, "user") {
		t.Errorf("bound user = %q", user)
	}
}

func TestNewRejectsBadBase(t *testing.T) {
	c := parse(t, journeyYAML)
	for _, base := range []string{"", "127.0.0.1:80", "ftp://x", "http://"} {
		if _, err := New(c, base); !errors.Is(err, ErrBadBase) {
			t.Errorf("New(%q) err = %v", base, err)
		}
	}
}

func TestExpand(t *testing.T) {
	look := func(n string) (string, error) {
		if n == "missing" {
			return "", errors.New("missing")
		}
		return "<" + n + ">", nil
	}
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"${a}", "<a>"},
		{"x${a}y${b}z", "x<a>y<b>z"},
		{"${unclosed", "${unclosed"},
		{"$a {b}", "$a {b}"},
	}
	for _, tt := range tests {
		got, err := Expand(tt.in, look, nil)
		if err != nil || got != tt.want {
			t.Errorf("Expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := Expand("a${missing}", look, nil); err == nil {
		t.Error("a failing lookup must fail the expansion")
	}
}

func FuzzExpand(f *testing.F) {
	for _, s := range []string{"", "${a}", "x${a}y${b}", "${", "${}", "}${a", "$${a}}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Expand(s, func(string) (string, error) { return "", nil }, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Replacing every placeholder by "" never makes the text longer,
		// and what remains holds no complete placeholder.
		if len(got) > len(s) {
			t.Fatalf("Expand(%q) = %q grew", s, got)
		}
		if len(campaign.Placeholders(s)) == 0 && got != s {
			t.Fatalf("Expand(%q) = %q changed a text without placeholders", s, got)
		}
	})
}

func BenchmarkNext(b *testing.B) {
	c, err := campaign.Load("../../configs/campaigns/browse.yaml")
	if err != nil {
		b.Fatal(err)
	}
	tr, _ := New(c, "http://127.0.0.1:8080")
	b.ReportAllocs()
	var tgt vegeta.Target
	for b.Loop() {
		_ = tr.Next(&tgt)
	}
}

func TestNeedsBody(t *testing.T) {
	c := parse(t, `
rate: [{profile: constant, rps: 1}]
feeders: {cursor: {pool: 10}, user: {users: {count: 1}}}
requests:
  - {name: list, path: /l, extract: {cursor: next}}
  - {name: page, path: /p}
journeys:
  - name: j
    bind: [user]
    steps:
      - {name: login, path: /login, extract: {token: access}}
      - {name: me, path: "/me/${token}"}
`)
	tr, err := New(c, "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	for frag, want := range map[string]bool{"list": true, "page": false, "j/login~3": true, "j/me~3": false, "": false, "nope": false} {
		if got := tr.NeedsBody(frag); got != want {
			t.Errorf("NeedsBody(%q) = %v, want %v", frag, got, want)
		}
	}
}

func TestFollowKeepsTheQuery(t *testing.T) {
	c := parse(t, `
rate: [{profile: constant, rps: 1}]
feeders: {pages: {pool: 10}, cat: {range: [3, 3]}}
requests:
  - {name: list, path: "/api/products/?category=${cat}&ordering=-price", follow: {field: next, param: cursor, into: pages}}
  - {name: next, from: pages, weight: 1000, follow: {field: next, param: cursor, into: pages}}
`)
	tr, err := New(c, "http://127.0.0.1:1/shop")
	if err != nil {
		t.Fatal(err)
	}
	var tgt vegeta.Target
	if err := tr.Next(&tgt); err != nil || RequestName(tgt.URL) != "list" {
		t.Fatalf("first = %s, %v; want the list while the pool is empty", tgt.URL, err)
	}
	tr.Observe(&vegeta.Result{URL: tgt.URL, Code: 200, Body: []byte(`{"results": [], "next": "a+b/="}`)})
	tr.Observe(&vegeta.Result{URL: tgt.URL, Code: 200, Body: []byte(`{"results": [], "next": null}`)})
	for range 20 {
		if err := tr.Next(&tgt); err != nil {
			t.Fatal(err)
		}
		if RequestName(tgt.URL) == "next" {
			want := "http://127.0.0.1:1/shop/api/products/?category=3&cursor=a%2Bb%2F%3D&ordering=-price#next"
			if tgt.URL != want {
				t.Fatalf("next page = %s\nwant       %s", tgt.URL, want)
			}
			if n := tr.pools["pages"].Len(); n != 1 {
				t.Errorf("a null cursor was kept: pool holds %d pages", n)
			}
			return
		}
	}
	t.Fatal("the next page was never requested")
}
