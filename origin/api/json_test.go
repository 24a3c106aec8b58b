package api

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

type sample struct {
	Name  *string      `json:"name"`
	Price *json.Number `json:"price"`
	Qty   *int         `json:"qty"`
	Tags  []string     `json:"tags"`
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name, ctype, body string
		class             error
	}{
		{"ok", "application/json", `{"name":"x","qty":2}`, nil},
		{"ok charset", "application/json; charset=utf-8", `{"name":"x"}`, nil},
		{"ok +json", "application/merge-patch+json", `{"name":"x"}`, nil},
		{"no type", "", `{}`, ErrMediaType},
		{"form", "application/x-www-form-urlencoded", `a=b`, ErrMediaType},
		{"bad type syntax", "application/json; ===", `{}`, ErrMediaType},
		{"empty", "application/json", ``, ErrMalformed},
		{"syntax", "application/json", `{"name":}`, ErrMalformed},
		{"unknown field", "application/json", `{"nope":1}`, ErrMalformed},
		{"two values", "application/json", `{} {}`, ErrMalformed},
		{"wrong type", "application/json", `{"qty":"two"}`, ErrInvalid},
		{"too large", "application/json", `{"name":"` + strings.Repeat("a", MaxBody) + `"}`, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			ctx.Request.Header.SetMethod("POST")
			if tt.ctype != "" {
				ctx.Request.Header.SetContentType(tt.ctype)
			}
			ctx.Request.SetBodyString(tt.body)
			var v sample
			err := Decode(&ctx, &v)
			if tt.class == nil {
				if err != nil {
					t.Fatalf("unexpected %v", err)
				}
				return
			}
			if !errors.Is(err, tt.class) {
				t.Fatalf("err %v, want class %v", err, tt.class)
			}
		})
	}
}

func TestStatusAndWriteError(t *testing.T) {
	tests := []struct {
		err    error
		status int
		msg    string
	}{
		{Invalid("price", "bad"), 422, "price: bad"},
		{NotFound("product"), 404, "product not found"},
		{Errorf(ErrUnauthenticated, "login"), 401, "login"},
		{errors.New("boom: secret detail"), 500, "internal error"},
	}
	for _, tt := range tests {
		var ctx fasthttp.RequestCtx
		WriteError(&ctx, nil, tt.err)
		if ctx.Response.StatusCode() != tt.status {
			t.Errorf("%v: status %d want %d", tt.err, ctx.Response.StatusCode(), tt.status)
		}
		var body struct{ Error string }
		if err := json.Unmarshal(ctx.Response.Body(), &body); err != nil || body.Error != tt.msg {
			t.Errorf("%v: body %s", tt.err, ctx.Response.Body())
		}
		if tt.status == 401 && len(ctx.Response.Header.Peek("WWW-Authenticate")) == 0 {
			t.Errorf("401 without WWW-Authenticate")
		}
	}
}

func FuzzDecodeBytes(f *testing.F) {
	for _, s := range []string{`{"name":"x","price":"1.50","qty":3,"tags":["a"]}`, `{"price":12}`, `[]`, `{`, `{"qty":1e400}`, `null`, `{"name":"\u0000"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v sample
		err := DecodeBytes(b, &v)
		if err == nil {
			return
		}
		if st := Status(err); st != 400 && st != 422 {
			t.Fatalf("status %d for %v", st, err)
		}
		if Message(err) == "" {
			t.Fatal("empty message")
		}
	})
}
