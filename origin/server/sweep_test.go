package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/novashop/edge/origin/origintest"
	"github.com/novashop/edge/origin/server"
)

func countTokens(t *testing.T, pool *pgxpool.Pool, where string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM refresh_tokens WHERE `+where).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRefreshTokenSweep: expired refresh tokens (revoked or not, more than
// one batch of them) are deleted by the server's background sweep, live
// ones stay and still refresh.
func TestRefreshTokenSweep(t *testing.T) {
	_, pool := origintest.DB(t)
	origintest.Seed(t, pool, 1, 1, 2)
	ctx := context.Background()
	// 2,500 expired rows (2.5 batches), half of them revoked.
	if _, err := pool.Exec(ctx, `INSERT INTO refresh_tokens (jti, family, user_id, issued_at, expires_at, revoked_at)
		SELECT 'old-' || g, 'fam-' || (g % 7), u.id, now() - interval '8 days', now() - interval '1 day' + g * interval '1 second',
		       CASE WHEN g % 2 = 0 THEN now() - interval '2 days' END
		FROM generate_series(1, 2500) g, (SELECT id FROM users WHERE username = 'user1') u`); err != nil {
		t.Fatal(err)
	}
	base, srv := origintest.Start(t, server.Deps{Name: "origin-sweep", Pool: pool, RefreshSweepEvery: 50 * time.Millisecond})
	c := origintest.NewClient(base)
	_, refresh := c.Login(t, "user2", "shopper123")

	deadline := time.Now().Add(10 * time.Second)
	for countTokens(t, pool, "expires_at <= now()") > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d expired tokens left after 10 s", countTokens(t, pool, "expires_at <= now()"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := countTokens(t, pool, "expires_at > now()"); n != 1 {
		t.Fatalf("%d live tokens, want the one login's", n)
	}
	r := c.Do(t, "POST", "/api/token/refresh/", map[string]string{"refresh": refresh})
	want(t, r, 200, "refresh after the sweep")

	// A direct call with nothing expired deletes nothing.
	n, err := srv.Domains.Users.SweepExpired(ctx)
	if err != nil || n != 0 {
		t.Fatalf("second sweep: %d, %v", n, err)
	}
}
