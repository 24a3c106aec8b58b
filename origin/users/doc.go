// Package users is the shop's accounts: registration, login with bcrypt,
// access and refresh tokens with rotation, and GET /api/me/.
//
// Login spends one bcrypt comparison whether or not the username exists
// (against a dummy hash), so timing never tells an attacker which usernames
// are taken. Refresh tokens rotate: each use revokes the old one, and using
// a revoked one again revokes its whole family (RFC 6819 §5.2.2.3); expired
// rows are swept in the background (RunSweeper). Failed logins count
// against a per-username throttle (loginguard) shared by the API and the
// storefront, which is why both build their Service with ForEnv. This
// package must never log or return a password, a hash, or a token it did
// not just issue.
package users
