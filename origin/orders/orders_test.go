package orders_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/origin/api"
	"github.com/novashop/edge/origin/cart"
	"github.com/novashop/edge/origin/orders"
	"github.com/novashop/edge/origin/origintest"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func checkout(ctx context.Context, t *testing.T, pool *pgxpool.Pool, user int64) (orders.Order, []string, error) {
	t.Helper()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	o, tags, err := orders.Checkout(ctx, tx, user)
	if err != nil {
		return o, tags, err
	}
	return o, tags, tx.Commit(ctx)
}

// TestCheckoutAllOrNothing: when one line is short, no stock moves, the
// cart stays, and no order or outbox row appears.
func TestCheckoutAllOrNothing(t *testing.T) {
	_, pool := origintest.DB(t)
	origintest.Seed(t, pool, 1, 3, 1)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `UPDATE products SET stock = CASE id WHEN 1 THEN 5 WHEN 2 THEN 1 ELSE 0 END`); err != nil {
		t.Fatal(err)
	}
	var user int64
	if err := pool.QueryRow(ctx, `SELECT id FROM users WHERE username = 'user1'`).Scan(&user); err != nil {
		t.Fatal(err)
	}
	cs := &cart.Store{Pool: pool}
	if _, err := cs.Add(ctx, user, 1, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Add(ctx, user, 2, 1); err != nil {
		t.Fatal(err)
	}
	// Someone else buys product 2's last unit after it went into the cart.
	if _, err := pool.Exec(ctx, `UPDATE products SET stock = 0 WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	_, _, err := checkout(ctx, t, pool, user)
	if !errors.Is(err, orders.ErrOutOfStock) || api.Status(err) != 409 {
		t.Fatalf("checkout: %v (status %d), want 409 out of stock", err, api.Status(err))
	}
	var s1, nOrders, nOutbox int
	if err := pool.QueryRow(ctx, `SELECT (SELECT stock FROM products WHERE id = 1), (SELECT count(*) FROM orders), (SELECT count(*) FROM outbox)`).
		Scan(&s1, &nOrders, &nOutbox); err != nil {
		t.Fatal(err)
	}
	c, _ := cs.Get(ctx, user)
	if s1 != 5 || nOrders != 0 || nOutbox != 0 || c.Count != 3 {
		t.Fatalf("partial apply: stock1 %d orders %d outbox %d cart %d", s1, nOrders, nOutbox, c.Count)
	}

	// Restock: the same cart now checks out, atomically.
	if _, err := pool.Exec(ctx, `UPDATE products SET stock = 1 WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	o, tags, err := checkout(ctx, t, pool, user)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Items) != 2 || o.Status != orders.StatusPending || len(tags) != 4 {
		t.Fatalf("order %+v tags %v", o, tags)
	}
	st := &orders.Store{Pool: pool}
	got, err := st.Get(ctx, user, o.ID)
	if err != nil || got.Total != o.Total || len(got.Items) != 2 {
		t.Fatalf("get %+v %v", got, err)
	}
	if _, err := st.Get(ctx, user+1000, o.ID); !errors.Is(err, orders.ErrOrderNotFound) {
		t.Fatalf("foreign get: %v", err)
	}
	var payload map[string]any
	if err := pool.QueryRow(ctx, `SELECT payload FROM outbox WHERE topic = $1`, orders.TopicCreated).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	if payload["total"] != o.Total {
		t.Fatalf("outbox payload %v", payload)
	}
	if _, _, err := checkout(ctx, t, pool, user); !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("empty cart checkout: %v", err)
	}
}

// TestDoubleCheckout: the same cart checked out twice at once orders once.
func TestDoubleCheckout(t *testing.T) {
	_, pool := origintest.DB(t)
	origintest.Seed(t, pool, 1, 2, 1)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `UPDATE products SET stock = 50`); err != nil {
		t.Fatal(err)
	}
	var user int64
	if err := pool.QueryRow(ctx, `SELECT id FROM users WHERE username = 'user1'`).Scan(&user); err != nil {
		t.Fatal(err)
	}
	cs := &cart.Store{Pool: pool}
	for _, id := range []int64{1, 2} {
		if _, err := cs.Add(ctx, user, id, 1); err != nil {
			t.Fatal(err)
		}
	}
	const tries = 4
	errs := make(chan error, tries)
	for range tries {
		go func() {
			tx, err := pool.Begin(ctx)
			if err != nil {
				errs <- err
				return
			}
			defer func() { _ = tx.Rollback(ctx) }()
			if _, _, err := orders.Checkout(ctx, tx, user); err != nil {
				errs <- err
				return
			}
			errs <- tx.Commit(ctx)
		}()
	}
	ok, empty := 0, 0
	for range tries {
		err := <-errs
		switch {
		case err == nil:
			ok++
		case errors.Is(err, orders.ErrEmptyCart):
			empty++
		default:
			t.Fatalf("checkout: %v", err)
		}
	}
	var n, stock int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM orders), (SELECT sum(stock) FROM products)`).Scan(&n, &stock); err != nil {
		t.Fatal(err)
	}
	if ok != 1 || empty != tries-1 || n != 1 || stock != 98 {
		t.Fatalf("ok %d empty %d orders %d stock %d", ok, empty, n, stock)
	}
}
