package api

import (
	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/origin/tokens"
)

// Caller verifies the request's access token (Bearer header or storefront
// cookie). The origin checks it itself even behind the edge, so a request
// that bypasses the edge gains nothing.
func Caller(ctx *fasthttp.RequestCtx, keys *tokens.Keys) (tokens.Principal, error) {
	tok := tokens.FromRequest(ctx)
	if tok == "" {
		return tokens.Principal{}, Errorf(ErrUnauthenticated, "authentication required: send Authorization: Bearer <access token>")
	}
	p, err := keys.VerifyAccess(tok)
	if err != nil {
		return tokens.Principal{}, Errorf(ErrUnauthenticated, "invalid or expired access token")
	}
	return p, nil
}

// User is Caller for a personal answer: it marks the response private first,
// so even the 401 is never stored by a shared cache.
func (e *Env) User(ctx *fasthttp.RequestCtx) (tokens.Principal, error) {
	Private(ctx)
	return Caller(ctx, e.Keys)
}

// Staff is Caller plus a check that the caller is staff (403 otherwise).
func Staff(ctx *fasthttp.RequestCtx, keys *tokens.Keys) (tokens.Principal, error) {
	p, err := Caller(ctx, keys)
	if err != nil {
		return p, err
	}
	if !p.IsStaff() {
		return p, Errorf(ErrForbidden, "staff only")
	}
	return p, nil
}
