// Package coherence measures how fast a write made through one edge becomes
// visible through every other edge: it logs in as staff, PATCHes a
// product's price via the writer edge, then polls GET /api/products/{id}/
// on each reader edge until it shows the new price, and reports per write
// the delay until all readers agree (p50, p99, max), the figure
// purge-based CDNs publish.
//
// It must never leave the product changed: the original price is written
// back at the end, even after Ctrl-C.
package coherence
