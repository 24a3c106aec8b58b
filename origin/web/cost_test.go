package web_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/fasthttp/router"
	"golang.org/x/crypto/bcrypt"

	"github.com/novashop/edge/origin/api"
	"github.com/novashop/edge/origin/origintest"
	"github.com/novashop/edge/origin/server"
	"github.com/novashop/edge/origin/web"
)

// TestRegisterUsesServerBcryptCost: with web.Mount's default Options, an
// account made on the register page is hashed with server.Deps.BcryptCost,
// exactly like one made through POST /api/register/.
func TestRegisterUsesServerBcryptCost(t *testing.T) {
	const cost = bcrypt.MinCost + 1 // neither the default nor the seed's
	_, pool := origintest.DB(t)
	base, _ := origintest.Start(t, server.Deps{Name: "web-cost", Pool: pool, BcryptCost: cost,
		Mount: []func(*router.Router, *api.Env){web.Mount}})

	b := newBrowser(t, base)
	b.get(t, "/register/")
	r := b.post(t, "/register/", url.Values{"username": {"pageuser"}, "email": {"p@example.com"},
		"password": {"correct horse"}}, true)
	wantStatus(t, r, 303, "register page")
	ar := origintest.NewClient(base).Do(t, "POST", "/api/register/",
		map[string]string{"username": "apiuser", "email": "a@example.com", "password": "correct horse"})
	if ar.Status != 201 {
		t.Fatalf("API register: %d %s", ar.Status, ar.Body)
	}
	for _, user := range []string{"pageuser", "apiuser"} {
		var hash string
		if err := pool.QueryRow(context.Background(), `SELECT password_hash FROM users WHERE username = $1`, user).Scan(&hash); err != nil {
			t.Fatal(err)
		}
		got, err := bcrypt.Cost([]byte(hash))
		if err != nil || got != cost {
			t.Errorf("%s: bcrypt cost %d (%v), want %d", user, got, err, cost)
		}
	}
}
