// Package orders checks a cart out and lists a shopper's orders.
//
// Checkout is one transaction: it locks the cart's products in id order (so
// two checkouts never deadlock), decrements stock only where enough is left
// (`stock >= quantity`, so concurrent origins can never oversell), writes the
// order and its items, empties the cart and appends an "order.created" row
// to the outbox for the asynchronous pipeline. If any product is short,
// nothing is applied and the answer is 409. This package must never show one
// shopper another's order: those are 404, exactly like ids that do not exist.
package orders
