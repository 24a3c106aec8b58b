// Package tagbump makes cache-tag invalidation survive a Redis outage.
//
// A write stages its tags as a tag_bumps row inside its own transaction
// (Stage); after the commit it INCRs each tag's version in Redis and deletes
// the row once Redis acknowledged (Apply). A row left behind — Redis was
// down, the process died — is retried by Run until Redis takes it, so a bump
// is never lost, only late. Bumps are idempotent in effect (versions only
// grow), so retrying one twice is harmless. This package must never decide
// which tags a write affects; the domain packages do.
package tagbump
