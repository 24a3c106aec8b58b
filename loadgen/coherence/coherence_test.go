package coherence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// shop is one product's price as the origins see it, served by fake edges
// that may lag behind a write by a fixed delay (a cache waiting for its
// invalidation).
type shop struct {
	mu       sync.Mutex
	cents    int64
	previous int64
	changed  time.Time
	patches  int
}

func (s *shop) edge(t *testing.T, lag time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		s.mu.Lock()
		defer s.mu.Unlock()
		ctx.SetContentType("application/json")
		path := string(ctx.Path())
		switch {
		case path == "/api/login/":
			var b struct{ Username, Password string }
			_ = json.Unmarshal(ctx.PostBody(), &b)
			if b.Username != "admin" || b.Password != "admin123" {
				ctx.SetStatusCode(401)
				ctx.SetBodyString(`{"error": "bad credentials"}`)
				return
			}
			ctx.SetBodyString(`{"access": "staff-token", "refresh": "r"}`)
		case path == "/api/products/7/" && ctx.IsPatch():
			if string(ctx.Request.Header.Peek("Authorization")) != "Bearer staff-token" {
				ctx.SetStatusCode(403)
				ctx.SetBodyString(`{"error": "staff only"}`)
				return
			}
			var b struct{ Price string }
			if err := json.Unmarshal(ctx.PostBody(), &b); err != nil {
				ctx.SetStatusCode(400)
				return
			}
			c, err := Cents(json.RawMessage(`"` + b.Price + `"`))
			if err != nil {
				ctx.SetStatusCode(422)
				return
			}
			s.previous, s.cents, s.changed = s.cents, c, time.Now()
			s.patches++
			ctx.SetBodyString(`{}`)
		case path == "/api/products/7/":
			c := s.cents
			if time.Since(s.changed) < lag {
				c = s.previous
			}
			fmt.Fprintf(ctx, `{"id": 7, "price": "%s"}`, FormatCents(c))
		default:
			ctx.SetStatusCode(404)
			ctx.SetBodyString(`{"error": "not found"}`)
		}
	}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

func TestRun(t *testing.T) {
	s := &shop{cents: 12999, previous: 12999}
	a := s.edge(t, 0)
	b := s.edge(t, 0)
	c := s.edge(t, 150*time.Millisecond)
	res, err := Run(context.Background(), Config{
		Writer:   Edge{"a", a},
		Readers:  []Edge{{"b", b}, {"c", c}},
		Username: "admin", Password: "admin123",
		Product: 7, Writes: 5, Interval: 2 * time.Millisecond, Timeout: 2 * time.Second, Pause: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Writes != 5 || res.All.Converged != 5 || res.All.TimedOut != 0 {
		t.Fatalf("result = %+v", res)
	}
	if pb, pc := res.PerEdge["b"], res.PerEdge["c"]; pb.P50 >= 140 || pc.P50 < 145 || res.All.P50 < 145 {
		t.Errorf("edge b %+v, edge c %+v, all %+v: c lags 150 ms, b does not", pb, pc, res.All)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cents != 12999 || s.patches != 6 {
		t.Errorf("price left at %d after %d patches; want 12999 restored by a sixth patch", s.cents, s.patches)
	}
}

func TestRunTimesOut(t *testing.T) {
	s := &shop{cents: 500, previous: 500}
	a := s.edge(t, 0)
	stuck := s.edge(t, time.Hour)
	res, err := Run(context.Background(), Config{
		Writer: Edge{"a", a}, Readers: []Edge{{"stuck", stuck}}, Token: "staff-token",
		Product: 7, Writes: 2, Interval: 5 * time.Millisecond, Timeout: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.All.TimedOut != 2 || res.PerEdge["stuck"].TimedOut != 2 || res.All.Converged != 0 {
		t.Errorf("result = %+v", res)
	}
}

func TestRunErrors(t *testing.T) {
	s := &shop{cents: 500, previous: 500}
	a := s.edge(t, 0)
	base := Config{Writer: Edge{"a", a}, Readers: []Edge{{"a", a}}, Product: 7, Writes: 1, Interval: time.Millisecond, Timeout: time.Second}
	tests := []struct {
		name string
		mod  func(*Config)
		want error
		text string
	}{
		{"no credentials", func(c *Config) {}, ErrConfig, "--token"},
		{"bad password", func(c *Config) { c.Username, c.Password = "admin", "x" }, ErrLogin, "bad credentials"},
		{"not staff", func(c *Config) { c.Token = "shopper" }, ErrShop, "staff only"},
		{"unknown product", func(c *Config) { c.Token = "staff-token"; c.Product = 8 }, ErrShop, "not found"},
		{"no readers", func(c *Config) { c.Token = "t"; c.Readers = nil }, ErrConfig, "reader"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.mod(&c)
			_, err := Run(context.Background(), c)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("err = %v, want %v mentioning %q", err, tt.want, tt.text)
			}
		})
	}
}

func TestCents(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{`"129.99"`, 12999, true},
		{`"0.1"`, 10, true},
		{`129.5`, 12950, true},
		{`"1e2"`, 10000, true},
		{`"abc"`, 0, false},
		{`null`, 0, false},
		{`{}`, 0, false},
		{`"NaN"`, 0, false},
	}
	for _, tt := range tests {
		got, err := Cents(json.RawMessage(tt.in))
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("Cents(%s) = %d, %v", tt.in, got, err)
		}
	}
	for _, c := range []int64{0, 5, 12999, -150} {
		back, err := Cents(json.RawMessage(`"` + FormatCents(c) + `"`))
		if err != nil || back != c {
			t.Errorf("round trip %d -> %s -> %d", c, FormatCents(c), back)
		}
	}
}

func FuzzCents(f *testing.F) {
	for _, s := range []string{`"129.99"`, `1`, `"-0.005"`, `"1e400"`, `""`, `[`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Cents(json.RawMessage(s))
		if err != nil {
			return
		}
		back, err := Cents(json.RawMessage(`"` + FormatCents(c) + `"`))
		if err != nil || back != c {
			t.Fatalf("Cents(%s) = %d does not round-trip (%d, %v)", s, c, back, err)
		}
	})
}

func TestSummarise(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := Summarise(ds, 3)
	want := Stats{Converged: 100, TimedOut: 3, P50: 50, P99: 99, Max: 100}
	if got != want {
		t.Errorf("Summarise = %+v, want %+v", got, want)
	}
	if got := Summarise(nil, 1); got != (Stats{TimedOut: 1}) {
		t.Errorf("Summarise(nil) = %+v", got)
	}
}
