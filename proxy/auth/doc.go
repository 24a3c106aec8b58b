// Package auth verifies the shop's access tokens (JWTs) at the edge, so that a
// request without a valid token is refused before any origin sees it, and the
// origin can trust the X-User-ID / X-User-Role headers the edge sets.
//
// A Verifier pins the algorithm to the kind of key it was given (HS256 for a
// shared secret, EdDSA for an Ed25519 public key, RS256 for an RSA public key,
// EdDSA or RS256 by key type for a JWKS endpoint), requires iss, aud, sub,
// role and exp, honours nbf and iat with a small leeway, and remembers tokens
// it has verified in a small bounded cache so a repeated check costs well
// under a microsecond and allocates nothing.
//
// This package must never accept a token whose algorithm does not match its
// key, never return a cached identity for a token past its exp or for bytes
// that differ from the token that was verified, never panic on client input,
// and never log token contents. It does not write HTTP answers: mapping its
// errors to 401, 403 or a redirect is the server's job.
package auth
