package web

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/novashop/edge/origin/api"
)

func TestSafeNext(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/cart/", "/cart/"},
		{"/products/?search=lamp&in_stock=1", "/products/?search=lamp&in_stock=1"},
		{"/orders/7/", "/orders/7/"},
		{"//evil.example/", "/"},
		{"///evil.example/", "/"},
		{"/\\evil.example/", "/"},
		{"\\\\evil.example", "/"},
		{"/cart\\..\\x", "/"},
		{"https://evil.example/", "/"},
		{"http:/evil.example", "/"},
		{"javascript:alert(1)", "/"},
		{"evil.example/cart/", "/"},
		{"/%2F%2Fevil.example", "/"},
		{"/%5Cevil.example", "/"},
		{"/cart/\r\nSet-Cookie: x=y", "/"},
		{"/cart/\t", "/"},
		{"/\x7f", "/"},
		{"/" + strings.Repeat("a", 3000), "/"},
		{"/caf\xe9/", "/"},
		{"/%zz", "/"},
	}
	for _, tt := range tests {
		if got := SafeNext(tt.in); got != tt.want {
			t.Errorf("SafeNext(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzSafeNext pins the property: whatever comes in, what comes out is a
// same-site path a browser resolves against this host.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/", "/cart/", "//evil", "/\\evil", "https://x", "/a?b=c#d", "/%2f%2fx", "\x00", "/\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := SafeNext(s)
		if got != "/" && got != s {
			t.Fatalf("SafeNext(%q) = %q: must be the input or /", s, got)
		}
		if !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.Contains(got, "\\") {
			t.Fatalf("SafeNext(%q) = %q is not a local path", s, got)
		}
		u, err := url.Parse(got)
		if err != nil || u.Host != "" || u.Scheme != "" {
			t.Fatalf("SafeNext(%q) = %q parses to host %q scheme %q (%v)", s, got, u.Host, u.Scheme, err)
		}
		if strings.HasPrefix(u.Path, "//") || !utf8.ValidString(got) {
			t.Fatalf("SafeNext(%q) = %q decodes to %q", s, got, u.Path)
		}
		for i := 0; i < len(got); i++ {
			if got[i] < 0x20 || got[i] == 0x7f {
				t.Fatalf("SafeNext(%q) keeps control byte %#x", s, got[i])
			}
		}
	})
}

func TestLoginURL(t *testing.T) {
	for in, want := range map[string]string{
		"/":                 "/login/",
		"//evil":            "/login/",
		"/cart/":            "/login/?next=%2Fcart%2F",
		"/products/?a=1&b=": "/login/?next=%2Fproducts%2F%3Fa%3D1%26b%3D",
	} {
		if got := loginURL(in); got != want {
			t.Errorf("loginURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseQuantity(t *testing.T) {
	tests := []struct {
		in   string
		def  int
		want int
		bad  bool
	}{
		{"", 1, 1, false},
		{"", 0, 0, true},
		{"3", 1, 3, false},
		{" 7 ", 1, 7, false},
		{"1000", 1, 1000, false},
		{"1001", 1, 0, true},
		{"0", 1, 0, true},
		{"-2", 1, 0, true},
		{"2.5", 1, 0, true},
		{"abc", 1, 0, true},
		{"99999999999999999999", 1, 0, true},
	}
	for _, tt := range tests {
		got, err := ParseQuantity(tt.in, tt.def)
		if tt.bad {
			if !errors.Is(err, api.ErrInvalid) || !strings.HasPrefix(api.Message(err), "quantity:") {
				t.Errorf("ParseQuantity(%q) err = %v, want a 422 naming quantity", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseQuantity(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseQuantity(f *testing.F) {
	for _, s := range []string{"", "1", "1000", "1001", "-1", "0x10", "1e3", " 5", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseQuantity(s, 1)
		if err != nil {
			if api.Status(err) != 422 {
				t.Fatalf("ParseQuantity(%q): status %d, want 422", s, api.Status(err))
			}
			return
		}
		if n < 1 || n > 1000 {
			t.Fatalf("ParseQuantity(%q) = %d out of range", s, n)
		}
	})
}

func form(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestParseReview(t *testing.T) {
	tests := []struct {
		name  string
		get   func(string) string
		field string
	}{
		{"ok", form("rating", "5", "text", "Great"), ""},
		{"ok no text", form("rating", "1"), ""},
		{"missing rating", form("text", "x"), "rating"},
		{"rating 0", form("rating", "0"), "rating"},
		{"rating 6", form("rating", "6"), "rating"},
		{"rating word", form("rating", "five"), "rating"},
		{"text too long", form("rating", "3", "text", strings.Repeat("é", 5001)), "text"},
		{"text bad utf8", form("rating", "3", "text", "\xff"), "text"},
		{"text NUL", form("rating", "3", "text", "a\x00b"), "text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := ParseReview(tt.get)
			if tt.field == "" {
				if err != nil || in.Rating == nil {
					t.Fatalf("ParseReview: %v", err)
				}
				return
			}
			if api.Status(err) != 422 || fieldOf(api.Message(err)) != tt.field {
				t.Fatalf("ParseReview err = %v (status %d), want 422 naming %s", err, api.Status(err), tt.field)
			}
		})
	}
}

func TestParseLoginAndRegister(t *testing.T) {
	if _, err := ParseLogin(form("password", "x")); fieldOf(api.Message(err)) != "username" {
		t.Fatalf("login without username: %v", err)
	}
	if _, err := ParseLogin(form("username", "bob")); fieldOf(api.Message(err)) != "password" {
		t.Fatalf("login without password: %v", err)
	}
	l, err := ParseLogin(form("username", " bob ", "password", "pw", "next", "//evil"))
	if err != nil || l.Username != "bob" || l.Next != "/" {
		t.Fatalf("login = %+v, %v", l, err)
	}
	reg := []string{"username", "carol", "email", "carol@example.com", "password", "longenough1", "password2", "longenough1"}
	if _, err := ParseRegister(form(reg...)); err != nil {
		t.Fatalf("register ok: %v", err)
	}
	for _, tt := range []struct {
		kv    []string
		field string
	}{
		{[]string{"username", "a b", "email", "c@e.com", "password", "longenough1"}, "username"},
		{[]string{"username", "carol", "email", "nope", "password", "longenough1"}, "email"},
		{[]string{"username", "carol", "email", "c@e.com", "password", "short"}, "password"},
		{[]string{"username", "carol", "email", "c@e.com", "password", "longenough1", "password2", "other12345"}, "password2"},
		{[]string{"username", "carol", "email", "c@e.com", "password", "longenough1", "city", strings.Repeat("x", 151)}, "city"},
	} {
		if _, err := ParseRegister(form(tt.kv...)); api.Status(err) != 422 || fieldOf(api.Message(err)) != tt.field {
			t.Errorf("register %v: err %v, want 422 naming %s", tt.kv, err, tt.field)
		}
	}
}

// FuzzForms drives every form parser with arbitrary urlencoded bodies: they
// may reject, but only with a 4xx naming a field, and never panic.
func FuzzForms(f *testing.F) {
	for _, s := range []string{"rating=5&text=hi", "username=a&password=b&next=%2F%2Fevil", "quantity=3",
		"username=carol&email=c%40e.com&password=12345678", "rating=%FF", "a=%zz", "text=" + strings.Repeat("x", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		q, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		get := func(k string) string { return q.Get(k) }
		check := func(what string, err error) {
			if err == nil {
				return
			}
			if st := api.Status(err); st < 400 || st > 499 || fieldOf(api.Message(err)) == "" {
				t.Fatalf("%s(%q): status %d message %q", what, body, st, api.Message(err))
			}
		}
		_, err = ParseReview(get)
		check("ParseReview", err)
		l, err := ParseLogin(get)
		check("ParseLogin", err)
		if SafeNext(l.Next) != l.Next {
			t.Fatalf("ParseLogin(%q) kept unsafe next %q", body, l.Next)
		}
		_, err = ParseRegister(get)
		check("ParseRegister", err)
		_, err = ParseQuantity(get("quantity"), 1)
		check("ParseQuantity", err)
	})
}
