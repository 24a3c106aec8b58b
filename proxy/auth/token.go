package auth

import "github.com/valyala/fasthttp"

// DefaultCookieName is the storefront's access-token cookie; it must match
// CookieAccess in origin/tokens, which sets it.
const DefaultCookieName = "novashop_access"

// TokenFromRequest returns the access token of req: the credentials of an
// "Authorization: Bearer <token>" header (RFC 6750 section 2.1; the scheme
// name is case-insensitive per RFC 9110 section 11.1) first, else the value
// of the cookie named cookieName (the storefront's HttpOnly cookie), else
// nil. An Authorization header with another scheme, or an empty bearer
// token, falls back to the cookie.
//
// The result points into req's buffers and dies with them: use it before
// the handler returns and copy it to keep it. It allocates nothing beyond
// fasthttp's own one-time cookie parsing into reused buffers.
func TokenFromRequest(req *fasthttp.Request, cookieName string) []byte {
	if tok := bearerToken(req.Header.Peek(fasthttp.HeaderAuthorization)); tok != nil {
		return tok
	}
	if cookieName == "" {
		return nil
	}
	if c := req.Header.Cookie(cookieName); len(c) > 0 {
		return c
	}
	return nil
}

// bearerToken extracts the token from an Authorization header value, or
// returns nil if the value is not a non-empty Bearer credential.
func bearerToken(h []byte) []byte {
	const scheme = "bearer"
	if len(h) <= len(scheme) || !isSpace(h[len(scheme)]) {
		return nil
	}
	for i := 0; i < len(scheme); i++ {
		if h[i]|0x20 != scheme[i] {
			return nil
		}
	}
	tok := h[len(scheme)+1:]
	for len(tok) > 0 && isSpace(tok[0]) {
		tok = tok[1:]
	}
	for len(tok) > 0 && isSpace(tok[len(tok)-1]) {
		tok = tok[:len(tok)-1]
	}
	if len(tok) == 0 {
		return nil
	}
	return tok
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' }
