// Package api holds what every origin JSON handler shares: the error classes
// and their one mapping to HTTP statuses, strict JSON request decoding (media
// type, size, unknown fields), JSON responses, the Cache-Control and
// Cache-Tag stamps, and the caller's identity from a verified access token.
//
// Domain packages wrap the classes here (fmt.Errorf("...: %w", ErrNotFound))
// and return them; WriteError turns them into {"error": "..."} answers. This
// package must never import a domain package nor run SQL.
package api
