package catalog

import (
	"strconv"
	"time"

	"github.com/novashop/edge/origin/money"
)

// CategoryRef is the category as embedded in a product.
type CategoryRef struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// Category is a category's JSON.
type Category struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Image       string `json:"image"`
}

// Product is a product's JSON. Price is a decimal string ("129.99") so no
// client ever sees a float.
type Product struct {
	ID          int64       `json:"id"`
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Price       string      `json:"price"`
	Stock       int         `json:"stock"`
	Category    CategoryRef `json:"category"`
	Image       string      `json:"image"`

	// PriceCents and CreatedAt feed cursors and templates; not in the JSON.
	PriceCents int64     `json:"-"`
	CreatedAt  time.Time `json:"-"`
}

// Page is one page of a product list.
type Page struct {
	Results []Product `json:"results"`
	// Next is the cursor of the following page, null on the last one.
	Next *string `json:"next"`
}

func (p *Product) fill() { p.Price = money.Format(p.PriceCents) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
