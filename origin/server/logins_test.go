package server_test

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/router"

	"github.com/novashop/edge/origin/api"
	"github.com/novashop/edge/origin/loginguard"
	"github.com/novashop/edge/origin/origintest"
	"github.com/novashop/edge/origin/server"
	"github.com/novashop/edge/origin/web"
)

// TestLoginThrottle: the 4th wrong password for one username within the
// window (Max 3 here) is refused 429 with Retry-After, even with the right
// password, on the API and on the storefront's login form alike; other
// usernames are unaffected, and the window's end lets the owner back in.
func TestLoginThrottle(t *testing.T) {
	_, pool := origintest.DB(t)
	origintest.Seed(t, pool, 1, 3, 3)
	var now atomic.Int64 // unix seconds; the server's goroutines read it
	now.Store(1_800_000_000)
	clock := func() time.Time { return time.Unix(now.Load(), 0) }
	if _, err := server.New(server.Deps{Name: "x", Pool: pool, Keys: origintest.Keys(t),
		LoginThrottle: loginguard.Config{Max: -1}}); !errors.Is(err, loginguard.ErrConfig) {
		t.Fatalf("a negative Max: %v", err)
	}
	base, _ := origintest.Start(t, server.Deps{Name: "origin-throttle", Pool: pool,
		LoginThrottle: loginguard.Config{Max: 3, Window: time.Minute, Now: clock},
		Mount:         []func(*router.Router, *api.Env){web.Mount}})
	c := origintest.NewClient(base)
	login := func(user, pass string) origintest.Response {
		return c.Do(t, "POST", "/api/login/", map[string]string{"username": user, "password": pass})
	}

	steps := []struct {
		user, pass string
		status     int
	}{
		{"user1", "wrong-1", 401},
		{"user1", "wrong-2", 401},
		{"user1", "wrong-3", 401},
		{"user1", "wrong-4", 429},
		{"user1", "shopper123", 429}, // the right password waits too
		{"user2", "shopper123", 200}, // per username
		{"user3", "wrong-1", 401},
		{"user3", "shopper123", 200}, // success resets user3
	}
	for i, s := range steps {
		r := login(s.user, s.pass)
		if r.Status != s.status {
			t.Fatalf("step %d (%s/%s): %d %s, want %d", i, s.user, s.pass, r.Status, r.Body, s.status)
		}
		if s.status == 429 {
			ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
			if err != nil || ra < 1 || ra > 60 {
				t.Fatalf("step %d: Retry-After %q", i, r.Header.Get("Retry-After"))
			}
			if !strings.Contains(r.Error(), "too many failed logins") {
				t.Fatalf("step %d: error %q", i, r.Error())
			}
		}
	}

	// The storefront's form shares the throttle (a 429 page, Retry-After).
	b := http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := b.Get(base + "/csrf/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var csrf string
	for _, ck := range resp.Cookies() {
		if ck.Name == web.CookieCSRF {
			csrf = ck.Value
		}
	}
	form := url.Values{"username": {"user1"}, "password": {"shopper123"}, "csrf": {csrf}}
	req, _ := http.NewRequest("POST", base+"/login/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: web.CookieCSRF, Value: csrf})
	r := c.Send(t, req)
	if r.Status != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("storefront login while throttled: %d, Retry-After %q", r.Status, r.Header.Get("Retry-After"))
	}

	now.Add(60)
	if r := login("user1", "shopper123"); r.Status != 200 {
		t.Fatalf("after the window: %d %s", r.Status, r.Body)
	}
}
