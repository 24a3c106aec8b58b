package cart

import (
	"context"
	"errors"
	"fmt"

	"github.com/fasthttp/router"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/origin/api"
	"github.com/novashop/edge/origin/money"
)

// MaxQuantity bounds one cart line.
const MaxQuantity = 1000

// Sentinel errors of the cart.
var (
	// ErrProductNotFound: the product does not exist.
	ErrProductNotFound = api.NotFound("product")
	// ErrNotInCart: the product is not in the caller's cart.
	ErrNotInCart = api.NotFound("cart item")
)

// ItemProduct is the product as shown in a cart line.
type ItemProduct struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Price string `json:"price"`
	Stock int    `json:"stock"`
	Image string `json:"image"`
}

// Item is one cart line.
type Item struct {
	Product  ItemProduct `json:"product"`
	Quantity int         `json:"quantity"`
	Subtotal string      `json:"subtotal"`
}

// Cart is the answer of every cart route.
type Cart struct {
	Items []Item `json:"items"`
	// Count is the number of units (the header badge's number).
	Count int    `json:"count"`
	Total string `json:"total"`
}

// AddInput is the body of POST /api/cart/items/.
type AddInput struct {
	ProductID *int64 `json:"product_id"`
	Quantity  *int   `json:"quantity"`
}

// SetInput is the body of PATCH /api/cart/items/{product_id}/.
type SetInput struct {
	Quantity *int `json:"quantity"`
}

func checkQuantity(q *int, dflt int) (int, error) {
	if q == nil {
		if dflt > 0 {
			return dflt, nil
		}
		return 0, api.Invalid("quantity", "is required")
	}
	if *q < 1 || *q > MaxQuantity {
		return 0, api.Invalid("quantity", "must be an integer from 1 to 1000")
	}
	return *q, nil
}

// Store runs the cart's SQL; the storefront calls it too.
type Store struct {
	Pool *pgxpool.Pool
}

// Get reads the user's cart (empty when they have none).
func (s *Store) Get(ctx context.Context, userID int64) (Cart, error) {
	return get(ctx, s.Pool, userID)
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func get(ctx context.Context, q querier, userID int64) (Cart, error) {
	c := Cart{Items: []Item{}}
	rows, err := q.Query(ctx, `SELECT p.id, p.name, (p.price * 100)::bigint, p.stock, p.image, ci.quantity
		FROM carts c JOIN cart_items ci ON ci.cart_id = c.id JOIN products p ON p.id = ci.product_id
		WHERE c.user_id = $1 ORDER BY ci.added_at, p.id`, userID)
	if err != nil {
		return c, fmt.Errorf("cart: get: %w", err)
	}
	defer rows.Close()
	var total int64
	for rows.Next() {
		var it Item
		var cents int64
		if err := rows.Scan(&it.Product.ID, &it.Product.Name, &cents, &it.Product.Stock, &it.Product.Image, &it.Quantity); err != nil {
			return c, fmt.Errorf("cart: get: %w", err)
		}
		it.Product.Price = money.Format(cents)
		it.Subtotal = money.Format(cents * int64(it.Quantity))
		total += cents * int64(it.Quantity)
		c.Count += it.Quantity
		c.Items = append(c.Items, it)
	}
	c.Total = money.Format(total)
	return c, rows.Err()
}

func cartID(ctx context.Context, tx pgx.Tx, userID int64) (int64, error) {
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO carts (user_id) VALUES ($1)
		ON CONFLICT (user_id) DO UPDATE SET user_id = excluded.user_id RETURNING id`, userID).Scan(&id)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23503" {
		return 0, api.Errorf(api.ErrUnauthenticated, "your account no longer exists")
	}
	if err != nil {
		return 0, fmt.Errorf("cart: %w", err)
	}
	return id, nil
}

// change runs fn on the user's cart in a transaction and returns the cart.
func (s *Store) change(ctx context.Context, userID int64, fn func(tx pgx.Tx, cart int64) error) (Cart, error) {
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return Cart{}, fmt.Errorf("cart: %w", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	id, err := cartID(ctx, tx, userID)
	if err != nil {
		return Cart{}, err
	}
	if err := fn(tx, id); err != nil {
		return Cart{}, err
	}
	c, err := get(ctx, tx, userID)
	if err != nil {
		return Cart{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return Cart{}, fmt.Errorf("cart: commit: %w", err)
	}
	return c, nil
}

func checkStock(ctx context.Context, tx pgx.Tx, productID int64, want int) error {
	var stock int
	var name string
	err := tx.QueryRow(ctx, `SELECT stock, name FROM products WHERE id = $1`, productID).Scan(&stock, &name)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrProductNotFound
	}
	if err != nil {
		return fmt.Errorf("cart: %w", err)
	}
	if want > stock {
		return api.Errorf(api.ErrConflict, "not enough stock for %q: %d left", name, stock)
	}
	return nil
}

// Add puts quantity units of a product in the cart (added to any already there).
func (s *Store) Add(ctx context.Context, userID, productID int64, quantity int) (Cart, error) {
	return s.change(ctx, userID, func(tx pgx.Tx, cart int64) error {
		var have int
		err := tx.QueryRow(ctx, `SELECT quantity FROM cart_items WHERE cart_id = $1 AND product_id = $2 FOR UPDATE`,
			cart, productID).Scan(&have)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("cart: add: %w", err)
		}
		if have+quantity > MaxQuantity {
			return api.Invalid("quantity", "a cart line holds at most 1000 units")
		}
		if err := checkStock(ctx, tx, productID, have+quantity); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO cart_items (cart_id, product_id, quantity) VALUES ($1, $2, $3)
			ON CONFLICT (cart_id, product_id) DO UPDATE SET quantity = cart_items.quantity + excluded.quantity`,
			cart, productID, quantity)
		if err != nil {
			return api.MapPgError(fmt.Errorf("cart: add: %w", err))
		}
		return nil
	})
}

// Set changes the quantity of a line already in the cart.
func (s *Store) Set(ctx context.Context, userID, productID int64, quantity int) (Cart, error) {
	return s.change(ctx, userID, func(tx pgx.Tx, cart int64) error {
		if err := checkStock(ctx, tx, productID, quantity); err != nil {
			if errors.Is(err, api.ErrNotFound) {
				return ErrNotInCart
			}
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE cart_items SET quantity = $3 WHERE cart_id = $1 AND product_id = $2`,
			cart, productID, quantity)
		if err != nil {
			return api.MapPgError(fmt.Errorf("cart: set: %w", err))
		}
		if tag.RowsAffected() == 0 {
			return ErrNotInCart
		}
		return nil
	})
}

// Remove deletes a line from the cart.
func (s *Store) Remove(ctx context.Context, userID, productID int64) (Cart, error) {
	return s.change(ctx, userID, func(tx pgx.Tx, cart int64) error {
		tag, err := tx.Exec(ctx, `DELETE FROM cart_items WHERE cart_id = $1 AND product_id = $2`, cart, productID)
		if err != nil {
			return fmt.Errorf("cart: remove: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotInCart
		}
		return nil
	})
}

// Handlers serves the cart routes.
type Handlers struct {
	env   *api.Env
	Store *Store
}

// NewHandlers makes the cart handlers.
func NewHandlers(env *api.Env) *Handlers {
	return &Handlers{env: env, Store: &Store{Pool: env.Pool}}
}

// Register adds the cart routes.
func (h *Handlers) Register(r *router.Router) {
	r.GET("/api/cart/", h.env.Handle(h.get))
	r.POST("/api/cart/items/", h.env.Handle(h.add))
	r.PATCH("/api/cart/items/{product_id}/", h.env.Handle(h.set))
	r.DELETE("/api/cart/items/{product_id}/", h.env.Handle(h.remove))
}

func (h *Handlers) get(ctx *fasthttp.RequestCtx) error {
	p, err := h.env.User(ctx)
	if err != nil {
		return err
	}
	return api.Respond(ctx, fasthttp.StatusOK, func(c context.Context) (Cart, error) {
		return h.Store.Get(c, p.UserID)
	})
}

func (h *Handlers) add(ctx *fasthttp.RequestCtx) error {
	p, err := h.env.User(ctx)
	if err != nil {
		return err
	}
	var in AddInput
	if err := api.Decode(ctx, &in); err != nil {
		return err
	}
	if in.ProductID == nil {
		return api.Invalid("product_id", "is required")
	}
	if *in.ProductID <= 0 {
		return api.Invalid("product_id", "must be a positive integer")
	}
	q, err := checkQuantity(in.Quantity, 1)
	if err != nil {
		return err
	}
	return api.Respond(ctx, fasthttp.StatusCreated, func(c context.Context) (Cart, error) {
		return h.Store.Add(c, p.UserID, *in.ProductID, q)
	})
}

func (h *Handlers) set(ctx *fasthttp.RequestCtx) error {
	p, err := h.env.User(ctx)
	if err != nil {
		return err
	}
	id, err := api.PathID(ctx, "product_id", "cart item")
	if err != nil {
		return err
	}
	var in SetInput
	if err := api.Decode(ctx, &in); err != nil {
		return err
	}
	q, err := checkQuantity(in.Quantity, 0)
	if err != nil {
		return err
	}
	return api.Respond(ctx, fasthttp.StatusOK, func(c context.Context) (Cart, error) {
		return h.Store.Set(c, p.UserID, id, q)
	})
}

func (h *Handlers) remove(ctx *fasthttp.RequestCtx) error {
	p, err := h.env.User(ctx)
	if err != nil {
		return err
	}
	id, err := api.PathID(ctx, "product_id", "cart item")
	if err != nil {
		return err
	}
	return api.Respond(ctx, fasthttp.StatusOK, func(c context.Context) (Cart, error) {
		return h.Store.Remove(c, p.UserID, id)
	})
}
