// Package upstream holds the edge's origin hosts and the pool that groups them.
//
// An Upstream owns its fasthttp.HostClient (one keep-alive connection pool per origin)
// and the typed atomics that balancing policies read on every request: requests in
// flight, consecutive failures, peak-EWMA latency and health state. A Pool publishes the
// set of hosts that may take traffic behind an atomic.Pointer, rebuilt only when health,
// drain or slow-start weight changes, so picking a host allocates nothing.
//
// It lives apart from package proxy so that package balancer (which reads state) and
// package health (which writes it) can both import it without an import cycle.
//
// This package must never decide health on its own nor choose a host: health writes
// state through the Pool, policies only read it.
package upstream
