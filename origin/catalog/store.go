package catalog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/novashop/edge/origin/api"
)

// Sentinel errors of the catalog; each wraps an api class.
var (
	// ErrProductNotFound: no product with that id.
	ErrProductNotFound = api.NotFound("product")
	// ErrCategoryNotFound: no category with that id.
	ErrCategoryNotFound = api.NotFound("category")
	// ErrCategoryInUse: a category with products cannot be deleted.
	ErrCategoryInUse = api.Errorf(api.ErrConflict, "category still has products")
)

// Store runs the catalog's SQL. It is safe for concurrent use; the
// storefront calls it too.
type Store struct {
	Pool *pgxpool.Pool
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const productCols = `p.id, p.name, p.description, (p.price * 100)::bigint, p.stock,
	p.category_id, c.name, p.image, p.created_at`

func scanProduct(row pgx.Row, p *Product) error {
	if err := row.Scan(&p.ID, &p.Name, &p.Description, &p.PriceCents, &p.Stock,
		&p.Category.ID, &p.Category.Name, &p.Image, &p.CreatedAt); err != nil {
		return err
	}
	p.fill()
	return nil
}

// Categories lists every category by name.
func (s *Store) Categories(ctx context.Context) ([]Category, error) {
	rows, err := s.Pool.Query(ctx, `SELECT id, name, description, image FROM categories ORDER BY name, id`)
	if err != nil {
		return nil, fmt.Errorf("catalog: categories: %w", err)
	}
	defer rows.Close()
	out := []Category{}
	for rows.Next() {
		var c Category
		if err := rows.Scan(&c.ID, &c.Name, &c.Description, &c.Image); err != nil {
			return nil, fmt.Errorf("catalog: categories: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Category reads one category.
func (s *Store) Category(ctx context.Context, id int64) (Category, error) {
	return getCategory(ctx, s.Pool, id)
}

func getCategory(ctx context.Context, q querier, id int64) (Category, error) {
	var c Category
	err := q.QueryRow(ctx, `SELECT id, name, description, image FROM categories WHERE id = $1`, id).
		Scan(&c.ID, &c.Name, &c.Description, &c.Image)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, ErrCategoryNotFound
	}
	if err != nil {
		return c, fmt.Errorf("catalog: category: %w", err)
	}
	return c, nil
}

// Product reads one product.
func (s *Store) Product(ctx context.Context, id int64) (Product, error) {
	return getProduct(ctx, s.Pool, id)
}

// productSQL reads one product (productCols, in that order).
const productSQL = `SELECT ` + productCols + ` FROM products p JOIN categories c ON c.id = p.category_id WHERE p.id = $1`

func getProduct(ctx context.Context, q querier, id int64) (Product, error) {
	var p Product
	err := scanProduct(q.QueryRow(ctx, productSQL, id), &p)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, ErrProductNotFound
	}
	if err != nil {
		return p, fmt.Errorf("catalog: product: %w", err)
	}
	return p, nil
}

// ListSQL builds the list query and its arguments. It is exported for the
// EXPLAIN tests, which must check the very SQL the handler runs.
func ListSQL(q ListQuery) (string, []any) {
	var b strings.Builder
	args := make([]any, 0, 8)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	b.WriteString(`SELECT ` + productCols + ` FROM products p JOIN categories c ON c.id = p.category_id WHERE true`)
	if q.Category > 0 {
		b.WriteString(` AND p.category_id = ` + arg(q.Category))
	}
	// Prices travel as int8 cents, cast to numeric in SQL: pgx encodes an
	// int8 without allocating, a numeric parameter through math/big.
	if q.MinCents >= 0 {
		b.WriteString(` AND p.price >= ` + arg(q.MinCents) + `::int8::numeric / 100`)
	}
	if q.MaxCents >= 0 {
		b.WriteString(` AND p.price <= ` + arg(q.MaxCents) + `::int8::numeric / 100`)
	}
	if q.InStock {
		b.WriteString(` AND p.stock > 0`)
	}
	if q.TSQuery != "" {
		b.WriteString(` AND p.search @@ to_tsquery('simple', ` + arg(q.TSQuery) + `)`)
	}
	if c := q.After; c != nil {
		switch q.Ordering {
		case OrderPrice:
			b.WriteString(` AND (p.price, p.id) > (` + arg(c.Price) + `::int8::numeric / 100, ` + arg(c.ID) + `)`)
		case OrderPriceDsc:
			b.WriteString(` AND (p.price, p.id) < (` + arg(c.Price) + `::int8::numeric / 100, ` + arg(c.ID) + `)`)
		case OrderName:
			b.WriteString(` AND (p.name, p.id) > (` + arg(c.Name) + `, ` + arg(c.ID) + `)`)
		case OrderNewest:
			b.WriteString(` AND (p.created_at, p.id) < (` + arg(time.UnixMicro(c.Created).UTC()) + `, ` + arg(c.ID) + `)`)
		default:
			b.WriteString(` AND p.id > ` + arg(c.ID))
		}
	}
	switch q.Ordering {
	case OrderPrice:
		b.WriteString(` ORDER BY p.price, p.id`)
	case OrderPriceDsc:
		b.WriteString(` ORDER BY p.price DESC, p.id DESC`)
	case OrderName:
		b.WriteString(` ORDER BY p.name, p.id`)
	case OrderNewest:
		b.WriteString(` ORDER BY p.created_at DESC, p.id DESC`)
	default:
		b.WriteString(` ORDER BY p.id`)
	}
	b.WriteString(` LIMIT ` + strconv.Itoa(q.Limit+1))
	return b.String(), args
}

// List returns one page of products.
func (s *Store) List(ctx context.Context, q ListQuery) (Page, error) {
	if q.Limit <= 0 || q.Limit > MaxLimit {
		q.Limit = DefaultLimit
	}
	sql, args := ListSQL(q)
	rows, err := s.Pool.Query(ctx, sql, args...)
	if err != nil {
		return Page{}, fmt.Errorf("catalog: list: %w", err)
	}
	defer rows.Close()
	page := Page{Results: make([]Product, 0, q.Limit+1)}
	for rows.Next() {
		var p Product
		if err := scanProduct(rows, &p); err != nil {
			return Page{}, fmt.Errorf("catalog: list: %w", err)
		}
		page.Results = append(page.Results, p)
	}
	if err := rows.Err(); err != nil {
		return Page{}, fmt.Errorf("catalog: list: %w", err)
	}
	if len(page.Results) > q.Limit {
		page.Results = page.Results[:q.Limit]
		next := EncodeCursor(cursorAfter(&page.Results[q.Limit-1], q.Ordering))
		page.Next = &next
	}
	return page, nil
}
