// Package seed fills an empty shop with deterministic demo data: categories,
// products (names, prices, stock and creation times from a fixed-seed
// generator), users user1..userN and one staff user "admin".
//
// Rows go in with COPY, and the N shopper passwords share one bcrypt hash
// (computed once, with a fresh salt), so 100,000 products seed in seconds.
// It must never touch a database that already has products: reseeding
// would duplicate users and break ids that tests and load campaigns rely on.
package seed
