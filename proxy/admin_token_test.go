package proxy

import (
	"strings"
	"testing"

	"github.com/novashop/edge/proxy/config"
)

// With a token configured, every mutating admin call without the right
// bearer token gets a JSON 401 and changes nothing; reads for probes and
// scrapers stay open.
func TestAdminTokenGuardsLevers(t *testing.T) {
	const token = "s3cret-admin-token"
	o1, o2 := newOrigin(t, "o1", nil), newOrigin(t, "o2", nil)
	c := &fakeCache{}
	e := startEdge(t, testConfig(o1, o2), Options{Cache: c, AdminToken: token})
	calls := []struct{ method, path, body string }{
		{"PUT", "/admin/balancer", `{"policy": "random"}`},
		{"POST", "/admin/upstreams/o1/drain", ""},
		{"POST", "/admin/purge", `{"prefix": "/"}`},
		{"GET", "/debug/pprof/", ""},
		{"POST", "/admin/drain", ""},
	}
	denials := []struct {
		name, query string
		headers     []string
		want        string
	}{
		{"no token", "", nil, "needs Authorization: Bearer"},
		{"wrong token", "", []string{"Authorization: Bearer wrong"}, "wrong admin token"},
		{"token prefix", "", []string{"Authorization: Bearer " + token[:5]}, "wrong admin token"},
		{"token plus junk", "", []string{"Authorization: Bearer " + token + "x"}, "wrong admin token"},
		{"basic scheme", "", []string{"Authorization: Basic " + token}, "wrong admin token"},
		{"empty bearer", "", []string{"Authorization: Bearer "}, "wrong admin token"},
		{"token in query", "?token=" + token, nil, "only in the Authorization header"},
		{"access_token in query", "?access_token=" + token, nil, "only in the Authorization header"},
		// Even with the right header, a token in the URL is refused: the
		// caller is leaking it into logs.
		{"query and header", "?token=" + token, []string{"Authorization: Bearer " + token}, "only in the Authorization header"},
	}
	for _, d := range denials {
		for _, call := range calls {
			r := doOn(t, e.adminC, call.method, call.path+d.query, call.body, d.headers...)
			wantJSONError(t, r, 401)
			if !strings.Contains(string(r.Body()), d.want) || !strings.HasPrefix(header(r, "WWW-Authenticate"), "Bearer") {
				t.Errorf("%s: %s %s = %s (WWW-Authenticate %q), want %q", d.name, call.method, call.path, r.Body(), header(r, "WWW-Authenticate"), d.want)
			}
		}
	}
	// Nothing changed.
	if _, draining := e.s.Draining(); draining {
		t.Fatal("after refused calls: the edge drains")
	}
	if e.s.Policy() != "round-robin" || len(c.purges) != 0 {
		t.Fatalf("after refused calls: policy %s, purges %v", e.s.Policy(), c.purges)
	}
	for _, u := range e.s.Status().Upstreams {
		if u.State != "up" {
			t.Fatalf("after refused calls: %s is %s", u.Name, u.State)
		}
	}
	// Open: health, metrics, the upstreams' state.
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/admin/upstreams"} {
		if r := e.adminDo(t, "GET", p, ""); r.StatusCode() != 200 {
			t.Errorf("GET %s without a token = %d", p, r.StatusCode())
		}
	}
	// The right token, in either case of the scheme, pulls the levers.
	auth := "Authorization: Bearer " + token
	for _, call := range calls {
		if r := doOn(t, e.adminC, call.method, call.path, call.body, auth); r.StatusCode() != 200 {
			t.Errorf("%s %s with the token = %d %s", call.method, call.path, r.StatusCode(), r.Body())
		}
	}
	if r := doOn(t, e.adminC, "POST", "/admin/upstreams/o1/undrain", "", "Authorization: bearer "+token); r.StatusCode() != 200 {
		t.Errorf("lower-case scheme: %d", r.StatusCode())
	}
	if e.s.Policy() != "random" || len(c.purges) != 1 {
		t.Fatalf("with the token: policy %s, purges %v", e.s.Policy(), c.purges)
	}
}

// Without a token the admin API behaves as before (loopback set-ups, tests).
func TestAdminWithoutTokenIsOpen(t *testing.T) {
	o := newOrigin(t, "o1", nil)
	e := startEdge(t, testConfig(o), Options{})
	if r := e.adminDo(t, "PUT", "/admin/balancer", `{"policy": "random"}`); r.StatusCode() != 200 {
		t.Fatalf("no token configured: %d %s", r.StatusCode(), r.Body())
	}
}

func TestAdminTokenEnvValidated(t *testing.T) {
	for _, v := range []string{"", "1ABC", "MY-TOKEN", "A B"} {
		c := config.Default()
		c.Upstreams = []config.Upstream{{URL: "http://127.0.0.1:1", Weight: 1}}
		c.Admin.TokenEnv = v
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "admin.token_env") {
			t.Errorf("token_env %q: err = %v", v, err)
		}
	}
}
