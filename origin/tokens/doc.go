// Package tokens issues and verifies the shop's JSON Web Tokens.
//
// Access tokens (audience "novashop-api", 15 minutes) carry sub (the user id
// as a string), role ("shopper" or "staff"), iat, exp and iss "novashop".
// Refresh tokens (audience "novashop-refresh", 7 days) carry a jti so the
// origin can rotate and revoke them; their audience differs so that neither
// the origin nor the edge ever accepts one as an access token.
//
// Keys are HS256 (a shared secret of at least 32 bytes) or EdDSA (Ed25519).
// Verification pins the one algorithm the key was built for, so a token can
// never choose its own (RFC 8725 §3.1). This package must never touch the
// database or log a token or a key.
package tokens
