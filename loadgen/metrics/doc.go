// Package metrics aggregates attack results per target: HDR latency
// histograms (exact merges across rounds and across result files), status
// codes, errors, the edge's Cache-Status counts, per-request counts and a
// per-second series for plots, and summarises them in the JSON shape of
// DESIGN.md.
//
// Latencies are whatever the results carry; the attack stores them counted
// from each request's intended send time. This package must never send
// traffic or print: reporters do that.
package metrics
