// Package web is the shop's server-rendered storefront: the HTML pages at
// the seed's paths (home, category, product list, product page, cart,
// orders, login, register, logout), their html/template templates and the
// embedded CSS and JavaScript they load. The product grid, the bulk of
// every catalog page, is rendered in Go (cards.go) with the same escaping,
// since html/template's reflective escapers cost ~85 allocations per card.
//
// Catalog pages (home, category, product list, product page) render the
// same bytes for every visitor so the edge can share them; the personal
// bits (who is logged in, the cart badge) are filled in by the page's
// script from GET /api/me/. Personal pages are private, no-store. Every
// form is protected by a signed double-submit CSRF cookie.
//
// The handlers call the domain stores in-process (catalog, cart, orders,
// reviews, users); this package must never run its own SQL, call the JSON
// API over HTTP, put anything personal (a user name, a CSRF token, a
// Set-Cookie) into a catalog page, or load an external asset.
package web
