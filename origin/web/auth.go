package web

import (
	"errors"

	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/origin/api"
	"github.com/novashop/edge/origin/tokens"
	"github.com/novashop/edge/origin/users"
)

// accessMaxAge keeps the cookie as long as the token inside is valid.
var accessMaxAge = int(tokens.AccessTTL.Seconds())

// loginForm is GET /login/. It is personal (its form carries the CSRF
// token inline), so it is never cached.
func (h *handlers) loginForm(ctx *fasthttp.RequestCtx) error {
	private(ctx)
	v := &view{Title: "Log in", CSRF: h.ensureCSRF(ctx), Next: SafeNext(string(ctx.QueryArgs().Peek("next"))),
		Form: map[string]string{}}
	if ctx.QueryArgs().Has("registered") {
		v.Notice = "Your account is ready. Log in to start shopping."
	}
	return h.write(ctx, fasthttp.StatusOK, "login", v)
}

// login is POST /login/: on success the access token goes into an
// HttpOnly cookie and the browser returns (303) to a safe next.
func (h *handlers) login(ctx *fasthttp.RequestCtx) error {
	private(ctx)
	if err := checkForm(ctx); err != nil {
		return err
	}
	if err := h.checkCSRF(ctx); err != nil {
		return err
	}
	in, err := ParseLogin(formValue(ctx))
	if err != nil {
		return h.loginAgain(ctx, in, err)
	}
	c, cancel := api.Context()
	defer cancel()
	pair, err := h.accounts.Login(c, in.Username, in.Password)
	if err != nil {
		return h.loginAgain(ctx, in, err)
	}
	h.setCookie(ctx, tokens.CookieAccess, pair.Access, accessMaxAge, true)
	seeOther(ctx, in.Next)
	return nil
}

// loginAgain shows the login form with what went wrong: 422 naming a
// missing field, 401 for a bad username or password (one message for both,
// so the page does not reveal which accounts exist).
func (h *handlers) loginAgain(ctx *fasthttp.RequestCtx, in Login, err error) error {
	st := api.Status(err)
	if st >= 500 {
		return err
	}
	if st == fasthttp.StatusUnauthorized {
		// RFC 9110 §15.5.2: a 401 carries a challenge; the scheme is the
		// one the shop's tokens use.
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, `Bearer realm="novashop"`)
	}
	api.SetRetryAfter(ctx, err) // 429: too many failed logins for this username
	msg := api.Message(err)
	v := &view{Title: "Log in", CSRF: h.ensureCSRF(ctx), Next: in.Next, Error: msg, Field: fieldOf(msg),
		Form: map[string]string{"username": in.Username}}
	return h.write(ctx, st, "login", v)
}

// registerForm is GET /register/.
func (h *handlers) registerForm(ctx *fasthttp.RequestCtx) error {
	private(ctx)
	v := &view{Title: "Create your account", CSRF: h.ensureCSRF(ctx),
		Next: SafeNext(string(ctx.QueryArgs().Peek("next"))), Form: map[string]string{}}
	return h.write(ctx, fasthttp.StatusOK, "register", v)
}

// register is POST /register/: creates the account through the users
// service and sends the browser to log in.
func (h *handlers) register(ctx *fasthttp.RequestCtx) error {
	private(ctx)
	if err := checkForm(ctx); err != nil {
		return err
	}
	if err := h.checkCSRF(ctx); err != nil {
		return err
	}
	get := formValue(ctx)
	next := SafeNext(get("next"))
	in, err := ParseRegister(get)
	if err == nil {
		c, cancel := api.Context()
		defer cancel()
		_, err = h.accounts.Register(c, in)
	}
	if err != nil {
		st := api.Status(err)
		if st >= 500 {
			return err
		}
		msg := api.Message(err)
		if errors.Is(err, users.ErrUsernameTaken) {
			msg = "username: is already taken; pick another one"
		}
		v := &view{Title: "Create your account", CSRF: h.ensureCSRF(ctx), Next: next, Error: msg, Field: fieldOf(msg),
			Form: map[string]string{"username": in.Username, "email": in.Email, "first_name": in.FirstName,
				"last_name": in.LastName, "city": in.City, "address": in.Address}}
		return h.write(ctx, st, "register", v)
	}
	dest := "/login/?registered=1"
	if next != "/" {
		dest = loginURL(next) + "&registered=1"
	}
	seeOther(ctx, dest)
	return nil
}

// logoutForm is GET /logout/: a page with the log-out button, since
// logging out changes state and so is only ever a (CSRF-checked) POST.
func (h *handlers) logoutForm(ctx *fasthttp.RequestCtx) error {
	private(ctx)
	return h.write(ctx, fasthttp.StatusOK, "logout", &view{Title: "Log out", CSRF: h.ensureCSRF(ctx)})
}

// logout is POST /logout/: clears the access cookie (CSRF-checked, so a
// foreign page cannot log a shopper out) and goes home.
func (h *handlers) logout(ctx *fasthttp.RequestCtx) error {
	private(ctx)
	if err := checkForm(ctx); err != nil {
		return err
	}
	if err := h.checkCSRF(ctx); err != nil {
		return err
	}
	h.setCookie(ctx, tokens.CookieAccess, "", -1, true)
	seeOther(ctx, "/")
	return nil
}

// csrfCookie is GET /csrf/: the page's script calls it when the browser
// has no CSRF cookie yet (a shopper whose first page was a cached catalog
// page). It answers 204 with the cookie.
func (h *handlers) csrfCookie(ctx *fasthttp.RequestCtx) error {
	private(ctx)
	h.ensureCSRF(ctx)
	ctx.SetStatusCode(fasthttp.StatusNoContent)
	return nil
}
