// Package catalog is the shop's categories and products: their SQL, their
// JSON, the product list's filters, orderings and keyset cursors, and the
// HTTP handlers (public reads, staff-only writes).
//
// Reads are the same bytes for every visitor and are stamped cacheable with
// their cache tags; writes bump those tags after they commit. The list never
// uses OFFSET: every ordering pages by (sort value, id) over an index, so
// page 1,000 costs what page 1 costs. This package must never read the
// caller's identity for a read (that would make shared pages personal).
package catalog
