package api

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestTooManyAnswer(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		status     int
		retryAfter string
		message    string
	}{
		{"whole seconds", TooMany(40*time.Second, "slow down"), 429, "40", "slow down"},
		{"rounded up", TooMany(1500*time.Millisecond, "slow down"), 429, "2", "slow down"},
		{"never zero", TooMany(0, "slow down"), 429, "1", "slow down"},
		{"wrapped", fmt.Errorf("login: %w", TooMany(3*time.Second, "later")), 429, "3", "later"},
		{"other errors carry none", Errorf(ErrConflict, "taken"), 409, "", "taken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			WriteError(&ctx, nil, tt.err)
			if got := ctx.Response.StatusCode(); got != tt.status {
				t.Fatalf("status %d, want %d", got, tt.status)
			}
			if got := string(ctx.Response.Header.Peek(fasthttp.HeaderRetryAfter)); got != tt.retryAfter {
				t.Fatalf("Retry-After %q, want %q", got, tt.retryAfter)
			}
			if want := `{"error":"` + tt.message + `"}`; string(ctx.Response.Body()) != want {
				t.Fatalf("body %s, want %s", ctx.Response.Body(), want)
			}
		})
	}
	if !errors.Is(TooMany(time.Second, "x"), ErrTooManyRequests) {
		t.Fatal("TooMany is not ErrTooManyRequests")
	}
}

func TestWriteJSONAppend(t *testing.T) {
	var ctx fasthttp.RequestCtx
	err := WriteJSONAppend(&ctx, 200, func(b []byte) ([]byte, error) { return append(b, `{"a":1}`...), nil })
	if err != nil || string(ctx.Response.Body()) != "{\"a\":1}\n" || string(ctx.Response.Header.ContentType()) != ContentTypeJSON {
		t.Fatalf("%v %q %q", err, ctx.Response.Body(), ctx.Response.Header.ContentType())
	}
	var ctx2 fasthttp.RequestCtx
	boom := errors.New("boom")
	if err := WriteJSONAppend(&ctx2, 200, func(b []byte) ([]byte, error) { return append(b, "half"...), boom }); err != boom {
		t.Fatalf("error %v", err)
	}
	if len(ctx2.Response.Body()) != 0 {
		t.Fatalf("a failed fill wrote %q", ctx2.Response.Body())
	}
	if raceEnabled {
		return // the output was checked above; pools are random under -race
	}
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() {
		ctx.Response.Reset()
		_ = WriteJSONAppend(&ctx, 200, func(b []byte) ([]byte, error) { return append(b, buf...), nil })
	}); n != 0 {
		t.Fatalf("WriteJSONAppend allocates %v times per answer", n)
	}
}
