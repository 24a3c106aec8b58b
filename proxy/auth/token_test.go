package auth

import (
	"testing"

	"github.com/valyala/fasthttp"
)

func TestTokenFromRequest(t *testing.T) {
	tests := []struct {
		name   string
		auth   string // Authorization header; empty means absent
		cookie string // Cookie header; empty means absent
		want   string // empty means nil
	}{
		{name: "nothing"},
		{name: "bearer", auth: "Bearer abc.def.ghi", want: "abc.def.ghi"},
		{name: "scheme is case-insensitive", auth: "bEaReR abc", want: "abc"},
		{name: "extra spaces and tabs", auth: "Bearer \t abc \t", want: "abc"},
		{name: "tab separator", auth: "Bearer\tabc", want: "abc"},
		{name: "no separator", auth: "Bearerabc"},
		{name: "scheme only", auth: "Bearer"},
		{name: "scheme and spaces", auth: "Bearer   "},
		{name: "basic auth", auth: "Basic dXNlcjpwYXNz"},
		{name: "prefix of bearer", auth: "Bear abc"},
		{name: "cookie", cookie: "session=tok123", want: "tok123"},
		{name: "cookie among others", cookie: "theme=dark; session=tok123; lang=fr", want: "tok123"},
		{name: "header wins over cookie", auth: "Bearer fromheader", cookie: "session=fromcookie", want: "fromheader"},
		{name: "basic auth falls back to cookie", auth: "Basic xyz", cookie: "session=fromcookie", want: "fromcookie"},
		{name: "empty bearer falls back to cookie", auth: "Bearer ", cookie: "session=fromcookie", want: "fromcookie"},
		{name: "empty cookie", cookie: "session=", want: ""},
		{name: "other cookie only", cookie: "sessionx=tok"},
		{name: "cookie name is case-sensitive", cookie: "Session=tok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req fasthttp.Request
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			if tt.cookie != "" {
				req.Header.Set("Cookie", tt.cookie)
			}
			got := TokenFromRequest(&req, "session")
			if tt.want == "" {
				if got != nil {
					t.Fatalf("got %q, want nil", got)
				}
				return
			}
			if string(got) != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTokenFromRequestNoCookieName(t *testing.T) {
	var req fasthttp.Request
	req.Header.Set("Cookie", "session=tok")
	if got := TokenFromRequest(&req, ""); got != nil {
		t.Fatalf("got %q with no cookie name, want nil", got)
	}
}

func TestTokenFromRequestDoesNotAllocate(t *testing.T) {
	for _, tc := range []struct{ name, header, value string }{
		{"header", "Authorization", "Bearer abc.def.ghi"},
		{"cookie", "Cookie", "a=b; session=abc.def.ghi"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var req fasthttp.Request
			req.Header.Set(tc.header, tc.value)
			TokenFromRequest(&req, "session") // fasthttp parses cookies once
			allocs := testing.AllocsPerRun(1000, func() {
				if string(TokenFromRequest(&req, "session")) != "abc.def.ghi" {
					t.Fatal("wrong token")
				}
			})
			if allocs != 0 {
				t.Fatalf("TokenFromRequest allocates %v times, want 0", allocs)
			}
		})
	}
}

func BenchmarkTokenFromRequest(b *testing.B) {
	for _, tc := range []struct{ name, header, value string }{
		{"header", "Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl"},
		{"cookie", "Cookie", "theme=dark; session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var req fasthttp.Request
			req.Header.Set(tc.header, tc.value)
			b.ReportAllocs()
			for b.Loop() {
				if TokenFromRequest(&req, "session") == nil {
					b.Fatal("no token")
				}
			}
		})
	}
}
