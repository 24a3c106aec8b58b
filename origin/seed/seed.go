package seed

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"
)

// Default passwords of the demo accounts (DESIGN.md).
const (
	DefaultUserPassword  = "shopper123"
	DefaultAdminPassword = "admin123"
	AdminUsername        = "admin"
)

// ErrAlreadySeeded means the database already has products; seed a fresh one.
var ErrAlreadySeeded = errors.New("seed: database already has products; seed an empty database")

// ErrBadOptions means a count is out of range.
var ErrBadOptions = errors.New("seed: bad options")

// Options says how much to seed.
type Options struct {
	Categories    int
	Products      int
	Users         int
	UserPassword  string
	AdminPassword string
	// BcryptCost of the two hashes; 0 means bcrypt.DefaultCost.
	BcryptCost int
}

// Validate checks the counts.
func (o *Options) Validate() error {
	switch {
	case o.Categories < 1 || o.Categories > 10000:
		return fmt.Errorf("%w: --categories must be 1..10000", ErrBadOptions)
	case o.Products < 0 || o.Products > 10_000_000:
		return fmt.Errorf("%w: --products must be 0..10000000", ErrBadOptions)
	case o.Users < 0 || o.Users > 10_000_000:
		return fmt.Errorf("%w: --users must be 0..10000000", ErrBadOptions)
	case len(o.UserPassword) < 8 || len(o.UserPassword) > 72:
		return fmt.Errorf("%w: --user-password must be 8..72 bytes", ErrBadOptions)
	case len(o.AdminPassword) < 8 || len(o.AdminPassword) > 72:
		return fmt.Errorf("%w: --admin-password must be 8..72 bytes", ErrBadOptions)
	}
	return nil
}

// Result says what was seeded.
type Result struct {
	Categories, Products, Users int
	Took                        time.Duration
}

var categoryNames = []string{
	"Electronics", "Books", "Home & Kitchen", "Garden", "Toys", "Sports", "Clothing", "Shoes",
	"Beauty", "Health", "Automotive", "Music", "Office", "Pets", "Baby", "Tools",
	"Grocery", "Jewelry", "Outdoors", "Games",
}

var adjectives = []string{
	"Classic", "Modern", "Compact", "Deluxe", "Eco", "Ultra", "Smart", "Rustic", "Premium", "Handmade",
	"Portable", "Vintage", "Solid", "Silent", "Bright", "Rugged", "Light", "Pro", "Mini", "Grand",
}

var nouns = []string{
	"Laptop", "Lamp", "Kettle", "Backpack", "Chair", "Headphones", "Notebook", "Blender", "Jacket", "Sneakers",
	"Watch", "Camera", "Speaker", "Mug", "Desk", "Tent", "Bottle", "Keyboard", "Guitar", "Puzzle",
	"Scarf", "Pan", "Drill", "Novel", "Ball", "Bicycle", "Pillow", "Mirror", "Charger", "Plant",
}

var colors = []string{"red", "blue", "green", "black", "white", "grey", "orange", "purple", "yellow", "teal"}

// base is the creation time of product 1; product i is i minutes later, so
// "-created" has a stable, deterministic order.
var base = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Run seeds the database.
func Run(ctx context.Context, pool *pgxpool.Pool, o Options) (Result, error) {
	start := time.Now()
	if err := o.Validate(); err != nil {
		return Result{}, err
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM products LIMIT 1) s`).Scan(&n); err != nil {
		return Result{}, fmt.Errorf("seed: %w", err)
	}
	if n > 0 {
		return Result{}, ErrAlreadySeeded
	}
	cost := o.BcryptCost
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	userHash, err := bcrypt.GenerateFromPassword([]byte(o.UserPassword), cost)
	if err != nil {
		return Result{}, fmt.Errorf("seed: hash: %w", err)
	}
	adminHash, err := bcrypt.GenerateFromPassword([]byte(o.AdminPassword), cost)
	if err != nil {
		return Result{}, fmt.Errorf("seed: hash: %w", err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("seed: %w", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()

	catIDs, err := seedCategories(ctx, tx, o.Categories)
	if err != nil {
		return Result{}, err
	}
	if err := seedProducts(ctx, tx, catIDs, o.Products); err != nil {
		return Result{}, err
	}
	if err := seedUsers(ctx, tx, o.Users, string(userHash), string(adminHash)); err != nil {
		return Result{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return Result{}, fmt.Errorf("seed: commit: %w", err)
	}
	// Fresh statistics, so the planner picks the indexes at once.
	if _, err := pool.Exec(ctx, `ANALYZE users, categories, products`); err != nil {
		return Result{}, fmt.Errorf("seed: analyze: %w", err)
	}
	return Result{Categories: o.Categories, Products: o.Products, Users: o.Users, Took: time.Since(start)}, nil
}

func seedCategories(ctx context.Context, tx pgx.Tx, n int) ([]int64, error) {
	rows := make([][]any, n)
	for i := range n {
		name := categoryNames[i%len(categoryNames)]
		if i >= len(categoryNames) {
			name += " " + strconv.Itoa(i/len(categoryNames)+1)
		}
		rows[i] = []any{name, "Everything for " + name + ".", "categories/category-" + strconv.Itoa(i+1) + ".svg"}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"categories"}, []string{"name", "description", "image"}, pgx.CopyFromRows(rows)); err != nil {
		return nil, fmt.Errorf("seed: categories: %w", err)
	}
	r, err := tx.Query(ctx, `SELECT id FROM categories ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("seed: categories: %w", err)
	}
	ids, err := pgx.CollectRows(r, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("seed: categories: %w", err)
	}
	return ids, nil
}

// Product returns the deterministic fields of product i (0-based): name,
// description, price in cents, stock.
func Product(rng *rand.Rand, i int) (name, desc string, cents int64, stock int32) {
	adj := adjectives[rng.IntN(len(adjectives))]
	noun := nouns[rng.IntN(len(nouns))]
	color := colors[rng.IntN(len(colors))]
	name = adj + " " + noun + " " + strconv.Itoa(i+1)
	desc = "A " + color + " " + lower(adj) + " " + lower(noun) + " built to last. Model " + strconv.Itoa(1000+i) + "."
	cents = int64(199 + rng.IntN(199_800))
	stock = int32(rng.IntN(100) + 1)
	if rng.IntN(10) == 0 {
		stock = 0 // about a tenth sold out, so in_stock filters something
	}
	return name, desc, cents, stock
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

func seedProducts(ctx context.Context, tx pgx.Tx, cats []int64, n int) error {
	rng := rand.New(rand.NewPCG(42, 2024))
	i := 0
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i >= n {
			return nil, nil
		}
		name, desc, cents, stock := Product(rng, i)
		created := base.Add(time.Duration(i) * time.Minute)
		row := []any{
			name, desc,
			pgtype.Numeric{Int: big.NewInt(cents), Exp: -2, Valid: true},
			stock, cats[i%len(cats)],
			"products_images/product-" + strconv.Itoa(i%50+1) + ".svg",
			created, created,
		}
		i++
		return row, nil
	})
	cols := []string{"name", "description", "price", "stock", "category_id", "image", "created_at", "updated_at"}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"products"}, cols, src); err != nil {
		return fmt.Errorf("seed: products: %w", err)
	}
	return nil
}

func seedUsers(ctx context.Context, tx pgx.Tx, n int, userHash, adminHash string) error {
	cities := []string{"Almaty", "Astana", "Berlin", "Lisbon", "Osaka", "Toronto", "Nairobi", "Lima"}
	i := 0
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i > n {
			return nil, nil
		}
		var row []any
		if i == 0 {
			row = []any{AdminUsername, "admin@novashop.example", adminHash, "Shop", "Admin", "Almaty", "1 Main Street", true}
		} else {
			u := "user" + strconv.Itoa(i)
			row = []any{u, u + "@novashop.example", userHash, "User", strconv.Itoa(i),
				cities[i%len(cities)], strconv.Itoa(i) + " Market Street", false}
		}
		i++
		return row, nil
	})
	cols := []string{"username", "email", "password_hash", "first_name", "last_name", "city", "address", "is_staff"}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"users"}, cols, src); err != nil {
		return fmt.Errorf("seed: users: %w", err)
	}
	return nil
}
