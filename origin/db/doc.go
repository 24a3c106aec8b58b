// Package db opens the origin's PostgreSQL pool and applies its schema.
//
// The schema lives in embedded goose migrations (migrations/*.sql), so the
// binary carries it and `origin migrate` is safe to run any number of times.
// This package must never hold domain logic or issue queries for a request:
// it only connects and migrates.
package db
