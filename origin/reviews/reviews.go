package reviews

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fasthttp/router"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/cachekeys"
	"github.com/novashop/edge/origin/api"
)

// Sentinel errors of reviews.
var (
	// ErrProductNotFound: reviews of a product that does not exist.
	ErrProductNotFound = api.NotFound("product")
	// ErrAlreadyReviewed: the shopper reviewed this product before.
	ErrAlreadyReviewed = api.Errorf(api.ErrConflict, "you have already reviewed this product")
)

// MaxText bounds a review's text; MaxList the reviews one answer lists.
const (
	MaxText = 5000
	MaxList = 100
)

// Author is the public part of a review's author.
type Author struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
}

// Review is a review's JSON.
type Review struct {
	ID        int64     `json:"id"`
	ProductID int64     `json:"product_id"`
	User      Author    `json:"user"`
	Rating    int       `json:"rating"`
	Text      string    `json:"text"`
	CreatedAt time.Time `json:"created_at"`
}

// List is the answer of GET /api/products/{id}/reviews/.
type List struct {
	Results []Review `json:"results"`
	Count   int      `json:"count"`
	// Average is the mean rating rounded to one decimal, 0 with no reviews.
	Average float64 `json:"average"`
}

// Input is the body of POST /api/products/{id}/reviews/.
type Input struct {
	Rating *int   `json:"rating"`
	Text   string `json:"text"`
}

// Validate checks rating 1-5 and the text's length.
func (in *Input) Validate() error {
	if in.Rating == nil {
		return api.Invalid("rating", "is required")
	}
	if *in.Rating < 1 || *in.Rating > 5 {
		return api.Invalid("rating", "must be an integer from 1 to 5")
	}
	if !utf8.ValidString(in.Text) || strings.ContainsRune(in.Text, 0) {
		return api.Invalid("text", "must be valid UTF-8 text")
	}
	if utf8.RuneCountInString(in.Text) > MaxText {
		return api.Invalid("text", "must be at most 5000 characters")
	}
	return nil
}

// Store runs the reviews' SQL; the storefront calls it too.
type Store struct {
	Pool *pgxpool.Pool
}

// List returns the newest MaxList reviews of a product with count and mean.
func (s *Store) List(ctx context.Context, productID int64) (List, error) {
	l := List{Results: []Review{}}
	var avg float64
	err := s.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM reviews WHERE product_id = p.id)::int,
		coalesce((SELECT round(avg(rating), 1) FROM reviews WHERE product_id = p.id), 0)::float8
		FROM products p WHERE p.id = $1`, productID).Scan(&l.Count, &avg)
	if errors.Is(err, pgx.ErrNoRows) {
		return l, ErrProductNotFound
	}
	if err != nil {
		return l, fmt.Errorf("reviews: list: %w", err)
	}
	l.Average = avg
	rows, err := s.Pool.Query(ctx, `SELECT r.id, r.product_id, u.id, u.username, r.rating, r.text, r.created_at
		FROM reviews r JOIN users u ON u.id = r.user_id WHERE r.product_id = $1
		ORDER BY r.created_at DESC, r.id DESC LIMIT $2`, productID, MaxList)
	if err != nil {
		return l, fmt.Errorf("reviews: list: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r Review
		if err := rows.Scan(&r.ID, &r.ProductID, &r.User.ID, &r.User.Username, &r.Rating, &r.Text, &r.CreatedAt); err != nil {
			return l, fmt.Errorf("reviews: list: %w", err)
		}
		l.Results = append(l.Results, r)
	}
	return l, rows.Err()
}

// Add inserts the caller's review inside tx and returns the tags to bump.
func Add(ctx context.Context, tx pgx.Tx, userID, productID int64, in Input) (Review, []string, error) {
	if err := in.Validate(); err != nil {
		return Review{}, nil, err
	}
	r := Review{ProductID: productID, Rating: *in.Rating, Text: in.Text}
	err := tx.QueryRow(ctx, `WITH ins AS (
			INSERT INTO reviews (product_id, user_id, rating, text) VALUES ($1, $2, $3, $4)
			RETURNING id, user_id, created_at)
		SELECT ins.id, u.id, u.username, ins.created_at FROM ins JOIN users u ON u.id = ins.user_id`,
		productID, userID, r.Rating, r.Text).Scan(&r.ID, &r.User.ID, &r.User.Username, &r.CreatedAt)
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505":
			return r, nil, ErrAlreadyReviewed
		case "23503":
			if strings.Contains(pe.ConstraintName, "product") {
				return r, nil, ErrProductNotFound
			}
			return r, nil, api.Errorf(api.ErrUnauthenticated, "your account no longer exists")
		}
	}
	if err != nil {
		return r, nil, fmt.Errorf("reviews: add: %w", err)
	}
	return r, []string{cachekeys.TagReviews(productID), cachekeys.TagProduct(productID)}, nil
}

// Handlers serves the review routes.
type Handlers struct {
	env   *api.Env
	Store *Store
}

// NewHandlers makes the review handlers.
func NewHandlers(env *api.Env) *Handlers {
	// Review lists are shared catalog reads (env.CatalogPool, the replica
	// when there is one); adding a review is a write on the primary.
	return &Handlers{env: env, Store: &Store{Pool: env.CatalogPool()}}
}

// Register adds the review routes.
func (h *Handlers) Register(r *router.Router) {
	r.GET("/api/products/{id}/reviews/", h.env.Handle(h.list))
	r.POST("/api/products/{id}/reviews/", h.env.Handle(h.add))
}

func (h *Handlers) list(ctx *fasthttp.RequestCtx) error {
	id, err := api.PathID(ctx, "id", "product")
	if err != nil {
		return err
	}
	c, cancel := api.Context()
	defer cancel()
	l, err := h.Store.List(c, id)
	if err != nil {
		return err
	}
	h.env.Public(ctx, cachekeys.TagReviews(id), cachekeys.TagProduct(id))
	api.WriteJSON(ctx, fasthttp.StatusOK, l)
	return nil
}

func (h *Handlers) add(ctx *fasthttp.RequestCtx) error {
	p, err := h.env.User(ctx)
	if err != nil {
		return err
	}
	id, err := api.PathID(ctx, "id", "product")
	if err != nil {
		return err
	}
	var in Input
	if err := api.Decode(ctx, &in); err != nil {
		return err
	}
	r, err := api.WriteTx(h.env, ctx, func(c context.Context, tx pgx.Tx) (Review, []string, error) {
		return Add(c, tx, p.UserID, id, in)
	})
	if err != nil {
		return err
	}
	api.WriteJSON(ctx, fasthttp.StatusCreated, r)
	return nil
}
