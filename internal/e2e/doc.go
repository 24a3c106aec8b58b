// Package e2e proves the product's cross-process claims with real
// processes: it builds the origin and edge binaries once, runs them as
// children on 127.0.0.1 beside a real PostgreSQL and Redis (or a Redis
// Cluster), and checks what shoppers and operators would see: coherence
// across edges, private answers never shared, failover when an origin or
// Redis dies, tag bumps that survive an origin cut from Redis, and the order
// pipeline confirming orders.
//
// It holds tests only. It must never import the product's packages to call
// them in-process (a claim about processes is proved with processes), never
// send traffic anywhere but loopback, and never mock a server: a test that
// needs PostgreSQL or Redis starts one (installing it when absent) or fails.
package e2e
