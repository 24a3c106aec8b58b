// Package cart is each shopper's cart: one cart per user, one line per
// product, quantities 1..MaxQuantity, checked against stock when added.
// Every answer is personal (private, no-store). This package must never
// change stock: only checkout (package orders) does.
package cart
