package auth

import "errors"

// Sentinel errors. Every error Verify returns is one of these or wraps one of
// them, so the server can map them with errors.Is in one place.
var (
	// ErrNoToken means the request carried no token at all: answer 401 with
	// WWW-Authenticate: Bearer (RFC 6750 section 3), without an error code.
	ErrNoToken = errors.New("auth: no bearer token")

	// ErrInvalidToken means the token was refused: malformed, too large,
	// wrong algorithm, bad signature, wrong issuer or audience, missing or
	// bad claims. ErrExpired, ErrNotYetValid and ErrUnknownKey errors also
	// match ErrInvalidToken, so one errors.Is check covers every refusal.
	ErrInvalidToken = errors.New("auth: invalid token")

	// ErrExpired means the token's exp (plus the leeway) has passed; the
	// client should refresh its access token.
	ErrExpired = errors.New("auth: token expired")

	// ErrNotYetValid means the token's nbf or iat lies in the future beyond
	// the leeway: the issuer's clock or the edge's clock is wrong.
	ErrNotYetValid = errors.New("auth: token not yet valid")

	// ErrUnknownKey means the token names a key id the JWKS endpoint does
	// not publish (even after a rate-limited re-fetch), or no key of the
	// token's algorithm is known.
	ErrUnknownKey = errors.New("auth: token signed by an unknown key")

	// ErrKeysUnavailable means the verifier has no key set yet because the
	// JWKS endpoint has not answered since start-up; the server may answer
	// 503. It does not match ErrInvalidToken: the token may well be good.
	ErrKeysUnavailable = errors.New("auth: no verification keys loaded yet (JWKS endpoint unreachable)")

	// ErrConfig is wrapped by every error NewVerifier returns for a bad
	// Config: fix the JWT settings named in the message.
	ErrConfig = errors.New("auth: invalid config")
)

// tokenError is a refusal with a reason. It matches its kind and, for the
// refusal kinds, ErrInvalidToken too, without the doubled "auth:" prefixes
// that nesting fmt.Errorf("%w: %w") would print.
type tokenError struct {
	kind   error
	reason string
}

func (e *tokenError) Error() string {
	if e.reason == "" {
		return e.kind.Error()
	}
	return e.kind.Error() + ": " + e.reason
}

func (e *tokenError) Is(target error) bool {
	if target == e.kind {
		return true
	}
	return target == ErrInvalidToken && e.kind != ErrKeysUnavailable
}

func invalid(kind error, reason string) error {
	return &tokenError{kind: kind, reason: reason}
}
