package web

import (
	"errors"
	"fmt"
	"html/template"
	"mime"
	"strings"

	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/novashop/edge/origin/api"
	"github.com/novashop/edge/origin/cart"
	"github.com/novashop/edge/origin/catalog"
	"github.com/novashop/edge/origin/orders"
	"github.com/novashop/edge/origin/reviews"
	"github.com/novashop/edge/origin/tokens"
	"github.com/novashop/edge/origin/users"
)

// ErrConfig means Options are unusable; the message says which field.
var ErrConfig = errors.New("web: bad configuration")

// Options configure the storefront. The zero value is ready to use.
type Options struct {
	// CSRFKey signs the CSRF cookies. Every origin behind one edge must use
	// the same key, or a form rendered by one fails on another. Nil derives
	// it from the token keys (api.Env.Keys), which the origins share anyway.
	CSRFKey []byte
	// BcryptCost hashes passwords of accounts registered on the storefront;
	// 0 (the default) means the server's (api.Env.BcryptCost, from
	// server.Deps.BcryptCost), so both ways of registering hash alike.
	BcryptCost int
	// Featured is how many products the home page shows; 0 means 8.
	Featured int
}

// Validate reports every problem with the options at once.
func (o Options) Validate() error {
	var errs []error
	if o.CSRFKey != nil && len(o.CSRFKey) < 32 {
		errs = append(errs, fmt.Errorf("%w: CSRFKey must be at least 32 bytes", ErrConfig))
	}
	if o.BcryptCost != 0 && (o.BcryptCost < bcrypt.MinCost || o.BcryptCost > bcrypt.MaxCost) {
		errs = append(errs, fmt.Errorf("%w: BcryptCost must be 0 or %d..%d", ErrConfig, bcrypt.MinCost, bcrypt.MaxCost))
	}
	if o.Featured < 0 || o.Featured > catalog.MaxLimit {
		errs = append(errs, fmt.Errorf("%w: Featured must be 0..%d", ErrConfig, catalog.MaxLimit))
	}
	return errors.Join(errs...)
}

// handlers serve the storefront.
type handlers struct {
	env      *api.Env
	opt      Options
	csrf     csrf
	tmpl     map[string]*template.Template
	assets   assetSet
	catalog  *catalog.Store
	cart     *cart.Store
	orders   *orders.Store
	reviews  *reviews.Store
	accounts *users.Service
}

// New checks the options and returns the hook that mounts the storefront,
// for server.Deps.Mount.
func New(o Options) (func(r *router.Router, env *api.Env), error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	assets, err := loadAssets()
	if err != nil {
		return nil, fmt.Errorf("web: assets: %w", err)
	}
	tmpl, err := loadTemplates(func(name string) string { return assets.url[name] })
	if err != nil {
		return nil, err
	}
	if o.Featured == 0 {
		o.Featured = 8
	}
	return func(r *router.Router, env *api.Env) {
		h, err := newHandlers(o, env, assets, tmpl)
		if err != nil {
			// Only an impossible signing failure lands here; the shop still
			// serves, with forms failing their CSRF check, and says why.
			env.Log.Error("storefront not mounted", zap.Error(err))
			return
		}
		h.Register(r)
	}, nil
}

// Mount mounts the storefront with default Options:
// server.Deps{Mount: []func(*router.Router, *api.Env){web.Mount}}.
func Mount(r *router.Router, env *api.Env) {
	m, err := New(Options{})
	if err != nil {
		env.Log.Error("storefront not mounted", zap.Error(err))
		return
	}
	m(r, env)
}

func newHandlers(o Options, env *api.Env, assets assetSet, tmpl map[string]*template.Template) (*handlers, error) {
	key := o.CSRFKey
	if key == nil {
		key = deriveCSRFKey(env.Keys)
	}
	if o.BcryptCost == 0 {
		// The server's cost (server.Deps.BcryptCost), so an account made
		// on the register page is hashed like one made through the API.
		o.BcryptCost = env.BcryptCost
	}
	acc, err := users.ForEnv(env)
	if err != nil {
		return nil, err
	}
	if o.BcryptCost != acc.Cost() {
		if acc, err = users.NewService(env.Pool, env.Keys, o.BcryptCost); err != nil {
			return nil, err
		}
		acc.Logins = env.Logins
	}
	return &handlers{
		env: env, opt: o, csrf: csrf{key: key}, tmpl: tmpl, assets: assets,
		// Catalog pages and their review lists are shared and cached: they
		// read from the replica when there is one. The cart, orders and
		// accounts must see the shopper's own writes: primary.
		catalog: &catalog.Store{Pool: env.CatalogPool()}, cart: &cart.Store{Pool: env.Pool},
		orders: &orders.Store{Pool: env.Pool}, reviews: &reviews.Store{Pool: env.CatalogPool()},
		accounts: acc,
	}, nil
}

// Register adds the storefront's routes. Static segments win over the
// category parameter in the router, so "/products/" is never a category.
func (h *handlers) Register(r *router.Router) {
	// Every GET page answers HEAD too: the origin's server routes HEAD as
	// GET and fasthttp drops the body (link checkers and caches probe
	// before fetching).
	r.GET("/static/{name}", h.assets.serve)
	r.GET("/", h.handle(h.home))
	r.GET("/{category_id}/", h.handle(h.categoryPage))
	r.GET("/products/", h.handle(h.productList))
	r.GET("/products/{id}/", h.handle(h.productPage))
	r.POST("/products/{id}/reviews/add/", h.handle(h.addReview))
	r.GET("/cart/", h.handle(h.cartPage))
	r.POST("/cart/add/{product_id}/", h.handle(h.addToCart))
	r.POST("/cart/update/{product_id}/", h.handle(h.updateCart))
	r.POST("/cart/remove/{product_id}/", h.handle(h.removeFromCart))
	r.POST("/cart/checkout/", h.handle(h.checkout))
	r.GET("/orders/", h.handle(h.orderList))
	r.GET("/orders/{id}/", h.handle(h.orderPage))
	r.GET("/login/", h.handle(h.loginForm))
	r.POST("/login/", h.handle(h.login))
	r.GET("/register/", h.handle(h.registerForm))
	r.POST("/register/", h.handle(h.register))
	r.GET("/logout/", h.handle(h.logoutForm))
	r.POST("/logout/", h.handle(h.logout))
	r.GET("/csrf/", h.handle(h.csrfCookie))
	// Unknown pages outside the JSON API get an HTML 404 a shopper can
	// navigate from; /api/ keeps the server's JSON answer.
	apiNotFound := r.NotFound
	r.NotFound = func(ctx *fasthttp.RequestCtx) {
		if apiNotFound != nil && strings.HasPrefix(string(ctx.Path()), "/api/") {
			apiNotFound(ctx)
			return
		}
		h.fail(ctx, api.NotFound("page"))
	}
}

// handle adapts a page handler: a returned error becomes an HTML error page
// with the status its class maps to (api.Status), never a stack trace.
func (h *handlers) handle(fn func(ctx *fasthttp.RequestCtx) error) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if err := fn(ctx); err != nil {
			h.fail(ctx, err)
		}
	}
}

// fail renders err as an error page.
func (h *handlers) fail(ctx *fasthttp.RequestCtx, err error) {
	st := api.Status(err)
	msg := api.Message(err)
	if errors.Is(err, ErrCSRF) {
		st, msg = fasthttp.StatusForbidden, "This form has expired or did not come from this shop (CSRF check failed). Go back, reload the page and try again."
		h.ensureCSRF(ctx)
	}
	if st >= 500 {
		h.env.Log.Error("storefront request failed", zap.ByteString("path", ctx.Path()), zap.Int("status", st), zap.Error(err))
	}
	ctx.Response.Header.Del(fasthttp.HeaderLocation)
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, api.CacheControlPrivate)
	v := &view{Title: statusTitle(st), Status: st, Error: msg, Field: fieldOf(msg)}
	if werr := h.write(ctx, st, "error", v); werr != nil {
		h.env.Log.Error("storefront error page failed", zap.Error(werr))
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetStatusCode(st)
		ctx.SetBodyString(msg + "\n")
	}
}

func statusTitle(st int) string {
	switch st {
	case fasthttp.StatusNotFound:
		return "Page not found"
	case fasthttp.StatusForbidden:
		return "Form expired"
	case fasthttp.StatusConflict:
		return "That did not work"
	case fasthttp.StatusBadRequest, fasthttp.StatusUnprocessableEntity:
		return "Please check your input"
	case fasthttp.StatusRequestEntityTooLarge:
		return "Request too large"
	case fasthttp.StatusUnsupportedMediaType:
		return "Unsupported form"
	case fasthttp.StatusServiceUnavailable:
		return "Shop busy"
	}
	if st >= 500 {
		return "Something went wrong"
	}
	return "Error"
}

// fieldOf extracts the field an api.Invalid message names ("quantity: ...").
func fieldOf(msg string) string {
	f, _, ok := strings.Cut(msg, ": ")
	if !ok || len(f) > 32 || strings.ContainsAny(f, " \"'") {
		return ""
	}
	return f
}

// public marks a catalog page: shared by every visitor, with its tags.
func (h *handlers) public(ctx *fasthttp.RequestCtx, tags ...string) { h.env.Public(ctx, tags...) }

// private marks a personal page.
func private(ctx *fasthttp.RequestCtx) { api.Private(ctx) }

// formValue returns a form field of a POST body.
func formValue(ctx *fasthttp.RequestCtx) func(string) string {
	return func(k string) string { return string(ctx.PostArgs().Peek(k)) }
}

// checkForm enforces what every storefront POST must be: a urlencoded body
// (HTML forms' default, RFC 1866 §8.2.1) no larger than 1 MiB.
func checkForm(ctx *fasthttp.RequestCtx) error {
	if len(ctx.Request.Body()) > api.MaxBody {
		return api.Errorf(api.ErrTooLarge, "the form is larger than 1 MiB")
	}
	ct := string(ctx.Request.Header.ContentType())
	if len(ctx.Request.Body()) == 0 && ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return api.Errorf(api.ErrMediaType, "forms must be sent as application/x-www-form-urlencoded")
	}
	return nil
}

// caller returns the logged-in shopper, or ok=false when the request has no
// valid access token (cookie or Bearer).
func (h *handlers) caller(ctx *fasthttp.RequestCtx) (tokens.Principal, bool) {
	tok := tokens.FromRequest(ctx)
	if tok == "" {
		return tokens.Principal{}, false
	}
	p, err := h.env.Keys.VerifyAccess(tok)
	return p, err == nil
}

// requireLogin returns the caller, or redirects (303) to the login page that
// comes back to next and returns ok=false. The edge does the same for these
// paths before the request reaches an origin.
func (h *handlers) requireLogin(ctx *fasthttp.RequestCtx, next string) (tokens.Principal, bool) {
	p, ok := h.caller(ctx)
	if !ok {
		private(ctx)
		seeOther(ctx, loginURL(next))
	}
	return p, ok
}

// requestURI is the path and query of the request, for next.
func requestURI(ctx *fasthttp.RequestCtx) string { return string(ctx.RequestURI()) }

// checkCSRF verifies a POST's token (form field or header) against the
// browser's CSRF cookie.
func (h *handlers) checkCSRF(ctx *fasthttp.RequestCtx) error {
	sub := string(ctx.PostArgs().Peek(FieldCSRF))
	if sub == "" {
		sub = string(ctx.Request.Header.Peek(HeaderCSRF))
	}
	return h.csrf.check(string(ctx.Request.Header.Cookie(CookieCSRF)), sub)
}

// ensureCSRF returns the browser's valid CSRF token, issuing a new cookie
// when it has none. Only personal (never cached) answers may call it.
func (h *handlers) ensureCSRF(ctx *fasthttp.RequestCtx) string {
	if c := string(ctx.Request.Header.Cookie(CookieCSRF)); h.csrf.valid(c) {
		return c
	}
	tok := h.csrf.issue()
	h.setCookie(ctx, CookieCSRF, tok, int(csrfTTL.Seconds()), false)
	return tok
}

// secure reports whether the browser reached us over HTTPS (through the
// edge, which sets X-Forwarded-Proto), so cookies get the Secure attribute.
func secure(ctx *fasthttp.RequestCtx) bool {
	return ctx.IsTLS() || strings.EqualFold(string(ctx.Request.Header.Peek("X-Forwarded-Proto")), "https")
}

// setCookie sets a first-party cookie. SameSite=Lax keeps it off
// cross-site POSTs (RFC 6265bis §5.4.7); maxAge < 0 deletes it.
func (h *handlers) setCookie(ctx *fasthttp.RequestCtx, name, value string, maxAge int, httpOnly bool) {
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(name)
	c.SetValue(value)
	c.SetPath("/")
	c.SetHTTPOnly(httpOnly)
	c.SetSameSite(fasthttp.CookieSameSiteLaxMode)
	c.SetSecure(secure(ctx))
	if maxAge < 0 {
		c.SetExpire(fasthttp.CookieExpireDelete)
		c.SetMaxAge(-1)
	} else {
		c.SetMaxAge(maxAge)
	}
	ctx.Response.Header.SetCookie(c)
}

// seeOther answers 303 See Other with a relative Location (RFC 9110
// §10.2.2 allows a relative reference). fasthttp's Redirect would make it
// absolute from the request's Host and scheme, which behind the edge are the
// origin's, not the shopper's.
func seeOther(ctx *fasthttp.RequestCtx, location string) {
	ctx.Response.Header.Set(fasthttp.HeaderLocation, location)
	ctx.SetStatusCode(fasthttp.StatusSeeOther)
}
