// Package shoptest runs the edge in front of the real shop: two origins from
// origin/origintest on a real PostgreSQL (internal/testenv), the edge from package
// proxy before them. It holds only tests (this file exists so the package has a
// documented home).
//
// It must never fake an origin or a database, and never be imported: a test that
// needs the shop gets the shop or fails.
package shoptest
