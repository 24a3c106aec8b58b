package cachekeys

import (
	"bufio"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/keys.golden from the current AppendKey")

func TestAppendKey(t *testing.T) {
	cases := []struct {
		name, method, host, uri, want string
		err                           error
	}{
		{"plain", "GET", "shop.example", "/api/products/", "GET shop.example/api/products/", nil},
		{"HEAD shares GET", "HEAD", "shop.example", "/", "GET shop.example/", nil},
		{"host lower-cased, trailing dot", "GET", "Shop.Example.", "/", "GET shop.example/", nil},
		{"sorted query", "GET", "h", "/p?b=2&a=1", "GET h/p?a=1&b=2", nil},
		{"repeated names keep order", "GET", "h", "/p?b=2&a=9&b=1", "GET h/p?a=9&b=2&b=1", nil},
		{"tracking dropped", "GET", "h", "/p?utm_source=x&id=3&gclid=y&fbclid=z&UTM_medium=q", "GET h/p?id=3", nil},
		{"only tracking", "GET", "h", "/p?utm_source=x", "GET h/p", nil},
		{"empty params", "GET", "h", "/p?&&a=1&", "GET h/p?a=1", nil},
		{"unreserved escapes decoded", "GET", "h", "/%7Euser/%41b?q=%61", "GET h/~user/Ab?q=a", nil},
		{"hex upper-cased", "GET", "h", "/a%2fb?q=%c3%a9", "GET h/a%2Fb?q=%C3%A9", nil},
		{"raw unsafe bytes escaped", "GET", "h", "/a b?q=\"x\"", "GET h/a%20b?q=%22x%22", nil},
		{"escaped ampersand stays", "GET", "h", "/p?q=a%26b", "GET h/p?q=a%26b", nil},
		{"dot segments", "GET", "h", "/a/./b/../c", "GET h/a/c", nil},
		{"escaped dot segments", "GET", "h", "/a/%2E%2E/c", "GET h/c", nil},
		{"dot dot above root", "GET", "h", "/../../x", "GET h/x", nil},
		{"fragment dropped", "GET", "h", "/p?a=1#frag", "GET h/p?a=1", nil},
		{"absolute form", "GET", "h", "http://other.example/p?a=1", "GET h/p?a=1", nil},
		{"absolute form without path", "GET", "h", "https://other.example?a=1", "GET h/?a=1", nil},
		{"other method kept", "POST", "h", "/p", "POST h/p", nil},
		{"bad escape", "GET", "h", "/p%zz", "", ErrBadEscape},
		{"truncated escape", "GET", "h", "/p?a=%4", "", ErrBadEscape},
		{"bad target", "GET", "h", "p", "", ErrBadURI},
		{"bad host", "GET", "h/x", "/", "", ErrBadHost},
		{"bad method", "G T", "h", "/", "", ErrBadMethod},
		{"empty method", "", "h", "/", "", ErrBadMethod},
		{"too long", "GET", "h", "/" + strings.Repeat("a", MaxKeyLen), "", ErrKeyTooLong},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Key(c.method, c.host, c.uri)
			if !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if c.err == nil && got != c.want {
				t.Fatalf("key = %q, want %q", got, c.want)
			}
		})
	}
}

func TestAppendKeyKeepsPrefixOnError(t *testing.T) {
	dst := []byte("prefix:")
	out, err := AppendKey(dst, []byte("GET"), []byte("h"), []byte("/%g"))
	if err == nil || string(out) != "prefix:" {
		t.Fatalf("AppendKey = %q, %v; want prefix unchanged and an error", out, err)
	}
}

func TestAppendKeyAllocs(t *testing.T) {
	dst := make([]byte, 0, 512)
	m, h, u := []byte("GET"), []byte("shop.example"), []byte("/api/products/?ordering=price&category=3&utm_source=mail&limit=20")
	allocs := testing.AllocsPerRun(200, func() {
		_, _ = AppendKey(dst[:0], m, h, u)
	})
	if allocs != 0 {
		t.Fatalf("AppendKey allocates %v times per call, want 0", allocs)
	}
}

func TestSplitKey(t *testing.T) {
	cases := []struct {
		key, method, host, pq string
		ok                    bool
	}{
		{"GET shop/api/products/?a=1", "GET", "shop", "/api/products/?a=1", true},
		{"GET shop/p\naccept-encoding=gzip", "GET", "shop", "/p", true},
		{"GET /p", "GET", "", "/p", true},
		{"nonsense", "", "", "", false},
		{"GET host-without-path", "", "", "", false},
	}
	for _, c := range cases {
		m, h, pq, ok := SplitKey(c.key)
		if m != c.method || h != c.host || pq != c.pq || ok != c.ok {
			t.Errorf("SplitKey(%q) = %q %q %q %v", c.key, m, h, pq, ok)
		}
	}
}

func TestParseVary(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		ok   bool
	}{
		{"", nil, true},
		{"Accept-Encoding", []string{"accept-encoding"}, true},
		{"accept-language, Accept-Encoding ,accept-encoding", []string{"accept-encoding", "accept-language"}, true},
		{"*", nil, false}, // RFC 9111 section 4.1: "*" always fails to match.
		{"Accept, *", []string{"accept"}, false},
		{"bad name", nil, false},
	}
	for _, c := range cases {
		got, ok := ParseVary(c.in, nil)
		if ok != c.ok || (ok && !reflect.DeepEqual(got, c.want)) {
			t.Errorf("ParseVary(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestAppendVary(t *testing.T) {
	got := string(AppendVary([]byte("GET h/"), "accept-encoding", []byte("  gzip, br\r\n ")))
	if want := "GET h/\naccept-encoding=gzip, br%0D%0A"; got != want {
		t.Fatalf("AppendVary = %q, want %q", got, want)
	}
	if a, b := AppendVary(nil, "x", nil), AppendVary(nil, "x", []byte(" ")); string(a) != string(b) {
		t.Fatalf("missing and empty header differ: %q vs %q", a, b)
	}
}

// TestGoldenKeys pins key spellings: edges of different builds share one
// Redis during a rolling deploy, so a changed key is a cold cache.
func TestGoldenKeys(t *testing.T) {
	path := filepath.Join("testdata", "keys.golden")
	inputs := []string{
		"GET shop.example /",
		"HEAD shop.example /products/",
		"GET shop.example /api/products/?category=3&ordering=-price&limit=20",
		"GET shop.example /api/products/?limit=20&ordering=-price&category=3&utm_campaign=spring",
		"GET SHOP.example /api/products/42/",
		"GET shop.example /api/products/?search=caf%c3%a9&in_stock=1",
		"GET shop.example /a/./b/../c/%7e?x=%2f",
		"GET shop.example:8080 /p?gclid=1&fbclid=2",
	}
	var b strings.Builder
	for _, in := range inputs {
		f := strings.SplitN(in, " ", 3)
		k, err := Key(f[0], f[1], f[2])
		if err != nil {
			t.Fatalf("Key(%q): %v", in, err)
		}
		b.WriteString(in + "\t" + k + "\n")
	}
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGoldenKeys -update once)", err)
	}
	if string(want) != b.String() {
		sc := bufio.NewScanner(strings.NewReader(b.String()))
		for sc.Scan() {
			if !strings.Contains(string(want), sc.Text()) {
				t.Errorf("golden mismatch: %q", sc.Text())
			}
		}
		t.Fatalf("keys differ from %s; if the change is intended, rerun with -update", path)
	}
}

func FuzzKey(f *testing.F) {
	f.Add("GET", "shop.example", "/api/products/?b=2&a=1&utm_x=3")
	f.Add("HEAD", "Shop.", "/a/../b/%7e?q=%2F#x")
	f.Add("GET", "h", "http://x/?&&=&a")
	f.Add("GET", "h", "/%")
	f.Add("POST", "", "/./../")
	f.Fuzz(func(t *testing.T, method, host, uri string) {
		k, err := Key(method, host, uri)
		if err != nil {
			if k != "" {
				t.Fatalf("error %v with key %q", err, k)
			}
			return
		}
		if len(k) > MaxKeyLen {
			t.Fatalf("key of %d bytes", len(k))
		}
		m, h, pq, ok := SplitKey(k)
		if !ok {
			t.Fatalf("SplitKey(%q) failed", k)
		}
		if strings.IndexByte(k, VarySep) >= 0 || strings.Contains(pq, "#") || strings.Contains(pq, " ") {
			t.Fatalf("key %q holds a separator, space or fragment", k)
		}
		// Normalising a normalised key changes nothing.
		k2, err := Key(m, h, pq)
		if err != nil || k2 != k {
			t.Fatalf("not idempotent: %q -> %q (%v)", k, k2, err)
		}
	})
}

func FuzzParseVary(f *testing.F) {
	f.Add("Accept-Encoding, accept-language")
	f.Add("*")
	f.Add(",,a b,")
	f.Fuzz(func(t *testing.T, v string) {
		names, ok := ParseVary(v, nil)
		if !ok {
			return
		}
		for i, n := range names {
			if n == "" || n != strings.ToLower(n) || (i > 0 && names[i-1] >= n) {
				t.Fatalf("ParseVary(%q) = %q: names must be lower-case, sorted, unique", v, names)
			}
		}
	})
}

func BenchmarkAppendKey(b *testing.B) {
	dst := make([]byte, 0, 512)
	m, h, u := []byte("GET"), []byte("shop.example"), []byte("/api/products/?ordering=price&category=3&utm_source=mail&limit=20")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		dst, _ = AppendKey(dst[:0], m, h, u)
	}
}
