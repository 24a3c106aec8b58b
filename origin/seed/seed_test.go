package seed_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/origin/origintest"
	"github.com/novashop/edge/origin/seed"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestSeedDeterministic(t *testing.T) {
	ctx := context.Background()
	var prints []string
	for i := 0; i < 2; i++ {
		_, pool := origintest.DB(t)
		origintest.Seed(t, pool, 5, 500, 20)
		var fp string
		if err := pool.QueryRow(ctx, `SELECT md5(string_agg(id || name || price || stock || category_id || created_at::text, ',' ORDER BY id)) FROM products`).Scan(&fp); err != nil {
			t.Fatal(err)
		}
		prints = append(prints, fp)
		var users, staff int
		var hash string
		if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE is_staff),
			(SELECT password_hash FROM users WHERE username = 'user7') FROM users`).Scan(&users, &staff, &hash); err != nil {
			t.Fatal(err)
		}
		if users != 21 || staff != 1 || bcrypt.CompareHashAndPassword([]byte(hash), []byte(seed.DefaultUserPassword)) != nil {
			t.Fatalf("users %d staff %d", users, staff)
		}
		_, err := seed.Run(ctx, pool, seed.Options{Categories: 1, Products: 1, UserPassword: "12345678", AdminPassword: "12345678"})
		if !errors.Is(err, seed.ErrAlreadySeeded) {
			t.Fatalf("second seed: %v", err)
		}
	}
	if prints[0] != prints[1] {
		t.Fatalf("seed not deterministic: %s vs %s", prints[0], prints[1])
	}
}

func TestOptionsValidate(t *testing.T) {
	good := seed.Options{Categories: 1, Products: 1, Users: 1, UserPassword: "12345678", AdminPassword: "12345678"}
	bad := []func(*seed.Options){
		func(o *seed.Options) { o.Categories = 0 },
		func(o *seed.Options) { o.Products = -1 },
		func(o *seed.Options) { o.Users = -1 },
		func(o *seed.Options) { o.UserPassword = "short" },
		func(o *seed.Options) { o.AdminPassword = "" },
	}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for i, mut := range bad {
		o := good
		mut(&o)
		if err := o.Validate(); !errors.Is(err, seed.ErrBadOptions) {
			t.Errorf("%d: %v", i, err)
		}
	}
}
