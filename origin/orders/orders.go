package orders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/novashop/edge/cachekeys"
	"github.com/novashop/edge/origin/api"
	"github.com/novashop/edge/origin/money"
)

// Order statuses.
const (
	StatusPending   = "pending"
	StatusConfirmed = "confirmed"
	StatusCancelled = "cancelled"
)

// TopicCreated is the outbox topic of a new order.
const TopicCreated = "order.created"

// MaxList bounds GET /api/orders/.
const MaxList = 100

// Sentinel errors of orders.
var (
	// ErrEmptyCart: checkout of an empty cart.
	ErrEmptyCart = api.Invalid("cart", "is empty; add products before checking out")
	// ErrOrderNotFound: no such order among the caller's.
	ErrOrderNotFound = api.NotFound("order")
	// ErrOutOfStock wraps the 409 of a short product.
	ErrOutOfStock = errors.New("orders: not enough stock")
)

// Item is one order line, with the name and price as sold.
type Item struct {
	ProductID *int64 `json:"product_id"`
	Name      string `json:"name"`
	Price     string `json:"price"`
	Quantity  int    `json:"quantity"`
}

// Order is an order's JSON.
type Order struct {
	ID        int64     `json:"id"`
	Status    string    `json:"status"`
	Total     string    `json:"total"`
	CreatedAt time.Time `json:"created_at"`
	Items     []Item    `json:"items"`
}

// List is the answer of GET /api/orders/.
type List struct {
	Results []Order `json:"results"`
}

type line struct {
	productID int64
	quantity  int
	name      string
	cents     int64
	stock     int
}

// Checkout turns the user's cart into an order inside tx and returns the
// order and the cache tags its stock changes invalidate.
func Checkout(ctx context.Context, tx pgx.Tx, userID int64) (Order, []string, error) {
	// Lock the cart first: a double-clicked checkout then waits for the
	// first one and finds the cart empty, instead of ordering twice from
	// rows it read before the first one cleared them. Cart edits take the
	// same lock (cart.Store upserts the cart row), so the cart cannot change
	// under a checkout either.
	var cartID int64
	err := tx.QueryRow(ctx, `SELECT id FROM carts WHERE user_id = $1 FOR UPDATE`, userID).Scan(&cartID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Order{}, nil, ErrEmptyCart
	}
	if err != nil {
		return Order{}, nil, api.MapPgError(fmt.Errorf("orders: checkout: %w", err))
	}
	// Lock the products in id order: every checkout takes its locks in the
	// same order, so two carts sharing products wait instead of deadlocking.
	// NO KEY UPDATE is what the stock UPDATE takes anyway; unlike FOR UPDATE
	// it does not block cart inserts, whose foreign-key check only needs
	// KEY SHARE on the product.
	rows, err := tx.Query(ctx, `SELECT p.id, ci.quantity, p.name, (p.price * 100)::bigint, p.stock
		FROM cart_items ci JOIN products p ON p.id = ci.product_id
		WHERE ci.cart_id = $1 ORDER BY p.id FOR NO KEY UPDATE OF p`, cartID)
	if err != nil {
		return Order{}, nil, fmt.Errorf("orders: checkout: %w", err)
	}
	var lines []line
	for rows.Next() {
		var l line
		if err := rows.Scan(&l.productID, &l.quantity, &l.name, &l.cents, &l.stock); err != nil {
			rows.Close()
			return Order{}, nil, fmt.Errorf("orders: checkout: %w", err)
		}
		lines = append(lines, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Order{}, nil, api.MapPgError(fmt.Errorf("orders: checkout: %w", err))
	}
	if len(lines) == 0 {
		return Order{}, nil, ErrEmptyCart
	}
	var total int64
	tags := []string{cachekeys.TagProducts, cachekeys.TagCatalog}
	for _, l := range lines {
		// The conditional decrement is the guarantee: even without the row
		// lock above, it never takes stock below zero.
		tag, err := tx.Exec(ctx, `UPDATE products SET stock = stock - $1, updated_at = now()
			WHERE id = $2 AND stock >= $1`, l.quantity, l.productID)
		if err != nil {
			return Order{}, nil, api.MapPgError(fmt.Errorf("orders: checkout: %w", err))
		}
		if tag.RowsAffected() == 0 {
			return Order{}, nil, fmt.Errorf("%w: %w", ErrOutOfStock,
				api.Errorf(api.ErrConflict, "not enough stock for %q: %d left, %d in your cart", l.name, l.stock, l.quantity))
		}
		total += l.cents * int64(l.quantity)
		tags = append(tags, cachekeys.TagProduct(l.productID))
	}
	o := Order{Status: StatusPending, Total: money.Format(total)}
	err = tx.QueryRow(ctx, `INSERT INTO orders (user_id, status, total) VALUES ($1, $2, $3::numeric / 100)
		RETURNING id, created_at`, userID, StatusPending, total).Scan(&o.ID, &o.CreatedAt)
	if err != nil {
		return Order{}, nil, api.MapPgError(fmt.Errorf("orders: checkout: %w", err))
	}
	pids := make([]int64, len(lines))
	qtys := make([]int32, len(lines))
	names := make([]string, len(lines))
	cents := make([]int64, len(lines))
	type evItem struct {
		ProductID int64  `json:"product_id"`
		Quantity  int    `json:"quantity"`
		Price     string `json:"price"`
	}
	ev := struct {
		OrderID   int64     `json:"order_id"`
		UserID    int64     `json:"user_id"`
		Total     string    `json:"total"`
		CreatedAt time.Time `json:"created_at"`
		Items     []evItem  `json:"items"`
	}{OrderID: o.ID, UserID: userID, Total: o.Total, CreatedAt: o.CreatedAt}
	for i, l := range lines {
		pid := l.productID
		pids[i], qtys[i], names[i], cents[i] = l.productID, int32(l.quantity), l.name, l.cents
		o.Items = append(o.Items, Item{ProductID: &pid, Name: l.name, Price: money.Format(l.cents), Quantity: l.quantity})
		ev.Items = append(ev.Items, evItem{ProductID: l.productID, Quantity: l.quantity, Price: money.Format(l.cents)})
	}
	if _, err := tx.Exec(ctx, `INSERT INTO order_items (order_id, product_id, name, price, quantity)
		SELECT $1, u.pid, u.name, u.cents::numeric / 100, u.qty
		FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::int[]) AS u(pid, name, cents, qty)`,
		o.ID, pids, names, cents, qtys); err != nil {
		return Order{}, nil, fmt.Errorf("orders: checkout: items: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM cart_items WHERE cart_id = $1`, cartID); err != nil {
		return Order{}, nil, fmt.Errorf("orders: checkout: clear cart: %w", err)
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return Order{}, nil, fmt.Errorf("orders: checkout: event: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO outbox (topic, payload) VALUES ($1, $2)`, TopicCreated, payload); err != nil {
		return Order{}, nil, fmt.Errorf("orders: checkout: outbox: %w", err)
	}
	return o, tags, nil
}

// Store reads orders; the storefront calls it too.
type Store struct {
	Pool *pgxpool.Pool
}

// List returns the user's newest MaxList orders with their items.
func (s *Store) List(ctx context.Context, userID int64) (List, error) {
	l := List{Results: []Order{}}
	rows, err := s.Pool.Query(ctx, `SELECT id, status, (total * 100)::bigint, created_at FROM orders
		WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`, userID, MaxList)
	if err != nil {
		return l, fmt.Errorf("orders: list: %w", err)
	}
	idx := map[int64]int{}
	var ids []int64
	for rows.Next() {
		var o Order
		var cents int64
		if err := rows.Scan(&o.ID, &o.Status, &cents, &o.CreatedAt); err != nil {
			rows.Close()
			return l, fmt.Errorf("orders: list: %w", err)
		}
		o.Total = money.Format(cents)
		o.Items = []Item{}
		idx[o.ID] = len(l.Results)
		ids = append(ids, o.ID)
		l.Results = append(l.Results, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return l, fmt.Errorf("orders: list: %w", err)
	}
	if len(ids) == 0 {
		return l, nil
	}
	err = s.items(ctx, ids, func(orderID int64, it Item) {
		o := &l.Results[idx[orderID]]
		o.Items = append(o.Items, it)
	})
	return l, err
}

func (s *Store) items(ctx context.Context, ids []int64, add func(int64, Item)) error {
	rows, err := s.Pool.Query(ctx, `SELECT order_id, product_id, name, (price * 100)::bigint, quantity
		FROM order_items WHERE order_id = ANY($1) ORDER BY order_id, product_id NULLS LAST, name`, ids)
	if err != nil {
		return fmt.Errorf("orders: items: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var oid, cents int64
		var it Item
		if err := rows.Scan(&oid, &it.ProductID, &it.Name, &cents, &it.Quantity); err != nil {
			return fmt.Errorf("orders: items: %w", err)
		}
		it.Price = money.Format(cents)
		add(oid, it)
	}
	return rows.Err()
}

// Get returns one of the user's orders; anyone else's is ErrOrderNotFound.
func (s *Store) Get(ctx context.Context, userID, orderID int64) (Order, error) {
	o := Order{Items: []Item{}}
	var cents int64
	err := s.Pool.QueryRow(ctx, `SELECT id, status, (total * 100)::bigint, created_at FROM orders
		WHERE id = $1 AND user_id = $2`, orderID, userID).Scan(&o.ID, &o.Status, &cents, &o.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return o, ErrOrderNotFound
	}
	if err != nil {
		return o, fmt.Errorf("orders: get: %w", err)
	}
	o.Total = money.Format(cents)
	err = s.items(ctx, []int64{o.ID}, func(_ int64, it Item) { o.Items = append(o.Items, it) })
	return o, err
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
