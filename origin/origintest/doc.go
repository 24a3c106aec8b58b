// Package origintest starts real origins for tests: a freshly migrated
// database on the real PostgreSQL from internal/testenv, an origin server
// on a 127.0.0.1 listener, and a small JSON client. It must never be
// imported by production code, and never fakes a server: a test that asks
// for one gets one or fails.
package origintest
