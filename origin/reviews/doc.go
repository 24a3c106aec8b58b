// Package reviews is product reviews: a public, cacheable list per product
// and one review per shopper per product (a second is 409). Posting bumps
// the product's review and product tags after the commit. This package must
// never let a review change a product's price or stock.
package reviews
