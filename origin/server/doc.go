// Package server wires the origin's HTTP server: the routes of every domain
// package, panic recovery, the X-Served-By stamp, access logs, Prometheus
// metrics, health and readiness, the lab knobs that make one instance slow
// or flaky, and graceful shutdown. HEAD is routed as GET on every route
// (RFC 9110 §9.3.2). Catalog reads may go to a read replica
// (Deps.Replica); the background loops retry tag bumps and sweep expired
// refresh tokens.
//
// Other packages add routes through Deps.Mount or Server.Router before
// Serve (the storefront does). This package must never hold domain logic:
// it only routes, observes and protects.
package server
