package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/novashop/edge/cachekeys"
	"github.com/novashop/edge/origin/api"
	"github.com/novashop/edge/origin/money"
)

// Field bounds shared by create and update.
const (
	maxName  = 255
	maxDesc  = 10000
	maxImage = 500
	MaxStock = 1_000_000
)

// ProductInput is the body of POST /api/products/ and, with every field
// optional, PATCH /api/products/{id}/. Price is a decimal string or number.
type ProductInput struct {
	Name        *string      `json:"name"`
	Description *string      `json:"description"`
	Price       *json.Number `json:"price"`
	Stock       *int64       `json:"stock"`
	CategoryID  *int64       `json:"category_id"`
	Image       *string      `json:"image"`
}

// CategoryInput is the body of POST /api/categories/ and PATCH.
type CategoryInput struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
	Image       *string `json:"image"`
}

func checkText(field string, v *string, max int, required bool) error {
	if v == nil {
		if required {
			return api.Invalid(field, "is required")
		}
		return nil
	}
	if !utf8.ValidString(*v) || strings.ContainsRune(*v, 0) {
		return api.Invalid(field, "must be valid UTF-8 text")
	}
	if required && strings.TrimSpace(*v) == "" {
		return api.Invalid(field, "must not be blank")
	}
	if utf8.RuneCountInString(*v) > max {
		return api.Invalid(field, "must be at most "+strconv.Itoa(max)+" characters")
	}
	return nil
}

// validate checks the input; create requires name, price, category_id.
func (in *ProductInput) validate(create bool) (priceCents int64, err error) {
	if err := checkText("name", in.Name, maxName, create || in.Name != nil); err != nil {
		return 0, err
	}
	if err := checkText("description", in.Description, maxDesc, false); err != nil {
		return 0, err
	}
	if err := checkText("image", in.Image, maxImage, false); err != nil {
		return 0, err
	}
	if in.Price == nil && create {
		return 0, api.Invalid("price", "is required")
	}
	if in.Price != nil {
		c, err := money.Parse(in.Price.String())
		if err != nil {
			return 0, api.Invalid("price", "must be a decimal like \"129.99\" from 0 to 99999999.99")
		}
		priceCents = c
	}
	if in.Stock != nil && (*in.Stock < 0 || *in.Stock > MaxStock) {
		return 0, api.Invalid("stock", "must be an integer from 0 to 1000000")
	}
	if in.CategoryID == nil && create {
		return 0, api.Invalid("category_id", "is required")
	}
	if in.CategoryID != nil && *in.CategoryID <= 0 {
		return 0, api.Invalid("category_id", "must be a positive integer")
	}
	return priceCents, nil
}

func categoryMissing(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

// CreateProduct inserts a product and returns it with the tags to bump.
func CreateProduct(ctx context.Context, tx pgx.Tx, in ProductInput) (Product, []string, error) {
	cents, err := in.validate(true)
	if err != nil {
		return Product{}, nil, err
	}
	var stock int64
	if in.Stock != nil {
		stock = *in.Stock
	}
	var id int64
	err = tx.QueryRow(ctx, `INSERT INTO products (name, description, price, stock, category_id, image)
		VALUES ($1, $2, $3::numeric / 100, $4, $5, $6) RETURNING id`,
		strings.TrimSpace(*in.Name), deref(in.Description), cents, stock, *in.CategoryID, deref(in.Image)).Scan(&id)
	if categoryMissing(err) {
		return Product{}, nil, api.Invalid("category_id", "no such category")
	}
	if err != nil {
		return Product{}, nil, api.MapPgError(fmt.Errorf("catalog: create product: %w", err))
	}
	p, err := getProduct(ctx, tx, id)
	if err != nil {
		return p, nil, err
	}
	return p, productTags(p.ID, p.Category.ID), nil
}

// UpdateProduct applies the set fields of in to product id.
func UpdateProduct(ctx context.Context, tx pgx.Tx, id int64, in ProductInput) (Product, []string, error) {
	cents, err := in.validate(false)
	if err != nil {
		return Product{}, nil, err
	}
	var oldCat int64
	err = tx.QueryRow(ctx, `SELECT category_id FROM products WHERE id = $1 FOR UPDATE`, id).Scan(&oldCat)
	if errors.Is(err, pgx.ErrNoRows) {
		return Product{}, nil, ErrProductNotFound
	}
	if err != nil {
		return Product{}, nil, fmt.Errorf("catalog: update product: %w", err)
	}
	sets := []string{"updated_at = now()"}
	args := []any{id}
	add := func(col string, v any, cast string) {
		args = append(args, v)
		sets = append(sets, col+" = $"+strconv.Itoa(len(args))+cast)
	}
	if in.Name != nil {
		add("name", strings.TrimSpace(*in.Name), "")
	}
	if in.Description != nil {
		add("description", *in.Description, "")
	}
	if in.Price != nil {
		add("price", cents, "::numeric / 100")
	}
	if in.Stock != nil {
		add("stock", *in.Stock, "")
	}
	if in.CategoryID != nil {
		add("category_id", *in.CategoryID, "")
	}
	if in.Image != nil {
		add("image", *in.Image, "")
	}
	_, err = tx.Exec(ctx, `UPDATE products SET `+strings.Join(sets, ", ")+` WHERE id = $1`, args...)
	if categoryMissing(err) {
		return Product{}, nil, api.Invalid("category_id", "no such category")
	}
	if err != nil {
		return Product{}, nil, api.MapPgError(fmt.Errorf("catalog: update product: %w", err))
	}
	p, err := getProduct(ctx, tx, id)
	if err != nil {
		return p, nil, err
	}
	tags := productTags(p.ID, p.Category.ID)
	if oldCat != p.Category.ID {
		tags = append(tags, cachekeys.TagCategory(oldCat))
	}
	return p, tags, nil
}

// DeleteProduct removes a product (its reviews and cart lines go with it;
// past orders keep their copy of name and price).
func DeleteProduct(ctx context.Context, tx pgx.Tx, id int64) ([]string, error) {
	var cat int64
	err := tx.QueryRow(ctx, `DELETE FROM products WHERE id = $1 RETURNING category_id`, id).Scan(&cat)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrProductNotFound
	}
	if err != nil {
		return nil, api.MapPgError(fmt.Errorf("catalog: delete product: %w", err))
	}
	return append(productTags(id, cat), cachekeys.TagReviews(id)), nil
}

// productTags are the tags a change to one product invalidates: its page,
// its category's pages, and every list.
func productTags(id, cat int64) []string {
	return []string{cachekeys.TagProduct(id), cachekeys.TagCategory(cat), cachekeys.TagProducts, cachekeys.TagCatalog}
}

// CreateCategory inserts a category.
func CreateCategory(ctx context.Context, tx pgx.Tx, in CategoryInput) (Category, []string, error) {
	if err := in.validate(true); err != nil {
		return Category{}, nil, err
	}
	c := Category{Name: strings.TrimSpace(*in.Name), Description: deref(in.Description), Image: deref(in.Image)}
	err := tx.QueryRow(ctx, `INSERT INTO categories (name, description, image) VALUES ($1, $2, $3) RETURNING id`,
		c.Name, c.Description, c.Image).Scan(&c.ID)
	if err != nil {
		return c, nil, api.MapPgError(fmt.Errorf("catalog: create category: %w", err))
	}
	return c, []string{cachekeys.TagCategories, cachekeys.TagCatalog, cachekeys.TagCategory(c.ID)}, nil
}

// UpdateCategory applies the set fields of in. A rename changes every
// product JSON of the category (it embeds the name), so lists are bumped too.
func UpdateCategory(ctx context.Context, tx pgx.Tx, id int64, in CategoryInput) (Category, []string, error) {
	if err := in.validate(false); err != nil {
		return Category{}, nil, err
	}
	var name, desc, img *string
	if in.Name != nil {
		n := strings.TrimSpace(*in.Name)
		name = &n
	}
	desc, img = in.Description, in.Image
	var c Category
	err := tx.QueryRow(ctx, `UPDATE categories SET name = coalesce($2, name),
		description = coalesce($3, description), image = coalesce($4, image)
		WHERE id = $1 RETURNING id, name, description, image`, id, name, desc, img).
		Scan(&c.ID, &c.Name, &c.Description, &c.Image)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, nil, ErrCategoryNotFound
	}
	if err != nil {
		return c, nil, api.MapPgError(fmt.Errorf("catalog: update category: %w", err))
	}
	return c, []string{cachekeys.TagCategory(id), cachekeys.TagCategories, cachekeys.TagProducts, cachekeys.TagCatalog}, nil
}

func (in *CategoryInput) validate(create bool) error {
	if err := checkText("name", in.Name, maxName, create || in.Name != nil); err != nil {
		return err
	}
	if err := checkText("description", in.Description, maxDesc, false); err != nil {
		return err
	}
	return checkText("image", in.Image, maxImage, false)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
