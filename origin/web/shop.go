package web

import (
	"context"
	"errors"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/origin/api"
	"github.com/novashop/edge/origin/orders"
	"github.com/novashop/edge/origin/reviews"
	"github.com/novashop/edge/origin/tokens"
	"github.com/novashop/edge/origin/users"
)

// personal loads the logged-in shopper for a personal page, marks the
// answer private and returns the CSRF token its forms carry. A token whose
// account is gone logs the browser out.
func (h *handlers) personal(ctx *fasthttp.RequestCtx, c context.Context, next string) (*view, tokens.Principal, bool, error) {
	private(ctx)
	p, ok := h.requireLogin(ctx, next)
	if !ok {
		return nil, p, false, nil
	}
	u, err := h.accounts.Get(c, p.UserID)
	if errors.Is(err, users.ErrUserNotFound) {
		h.setCookie(ctx, tokens.CookieAccess, "", -1, true)
		seeOther(ctx, loginURL(next))
		return nil, p, false, nil
	}
	if err != nil {
		return nil, p, false, err
	}
	return &view{User: &u, CSRF: h.ensureCSRF(ctx)}, p, true, nil
}

// cartPage is GET /cart/.
func (h *handlers) cartPage(ctx *fasthttp.RequestCtx) error {
	c, cancel := api.Context()
	defer cancel()
	v, p, ok, err := h.personal(ctx, c, "/cart/")
	if !ok || err != nil {
		return err
	}
	if ctx.QueryArgs().Has("added") {
		v.Notice = "Added to your cart."
	}
	return h.showCart(ctx, c, v, p, fasthttp.StatusOK)
}

func (h *handlers) showCart(ctx *fasthttp.RequestCtx, c context.Context, v *view, p tokens.Principal, st int) error {
	crt, err := h.cart.Get(c, p.UserID)
	if err != nil {
		return err
	}
	v.Title, v.Cart = "Your cart", &crt
	return h.write(ctx, st, "cart", v)
}

// postAuth is the common start of every personal POST: a form body, a
// logged-in shopper (else 303 to the login page coming back to back), and
// a valid CSRF token, in that order, so an anonymous click is sent to log
// in rather than told off.
func (h *handlers) postAuth(ctx *fasthttp.RequestCtx, back string) (tokens.Principal, bool, error) {
	private(ctx)
	if err := checkForm(ctx); err != nil {
		return tokens.Principal{}, false, err
	}
	p, ok := h.requireLogin(ctx, back)
	if !ok {
		return p, false, nil
	}
	if err := h.checkCSRF(ctx); err != nil {
		return p, false, err
	}
	return p, true, nil
}

// addToCart is POST /cart/add/{product_id}/ with an optional quantity.
func (h *handlers) addToCart(ctx *fasthttp.RequestCtx) error {
	id, err := api.PathID(ctx, "product_id", "product")
	if err != nil {
		return err
	}
	p, ok, err := h.postAuth(ctx, "/products/"+strconv.FormatInt(id, 10)+"/")
	if !ok || err != nil {
		return err
	}
	q, err := ParseQuantity(string(ctx.PostArgs().Peek("quantity")), 1)
	if err != nil {
		return err
	}
	c, cancel := api.Context()
	defer cancel()
	if _, err := h.cart.Add(c, p.UserID, id, q); err != nil {
		return err
	}
	seeOther(ctx, "/cart/?added="+strconv.FormatInt(id, 10))
	return nil
}

// updateCart is POST /cart/update/{product_id}/ setting a line's quantity.
func (h *handlers) updateCart(ctx *fasthttp.RequestCtx) error {
	id, err := api.PathID(ctx, "product_id", "cart item")
	if err != nil {
		return err
	}
	p, ok, err := h.postAuth(ctx, "/cart/")
	if !ok || err != nil {
		return err
	}
	q, err := ParseQuantity(string(ctx.PostArgs().Peek("quantity")), 0)
	if err != nil {
		return err
	}
	c, cancel := api.Context()
	defer cancel()
	if _, err := h.cart.Set(c, p.UserID, id, q); err != nil {
		if errors.Is(err, api.ErrConflict) {
			return h.cartError(ctx, c, p, err)
		}
		return err
	}
	seeOther(ctx, "/cart/")
	return nil
}

// removeFromCart is POST /cart/remove/{product_id}/.
func (h *handlers) removeFromCart(ctx *fasthttp.RequestCtx) error {
	id, err := api.PathID(ctx, "product_id", "cart item")
	if err != nil {
		return err
	}
	p, ok, err := h.postAuth(ctx, "/cart/")
	if !ok || err != nil {
		return err
	}
	c, cancel := api.Context()
	defer cancel()
	if _, err := h.cart.Remove(c, p.UserID, id); err != nil && !errors.Is(err, api.ErrNotFound) {
		return err
	}
	// Removing a line that is already gone (a double click) is done.
	seeOther(ctx, "/cart/")
	return nil
}

// checkout is POST /cart/checkout/: the cart becomes an order through the
// orders package, in one transaction with its tag bumps.
func (h *handlers) checkout(ctx *fasthttp.RequestCtx) error {
	p, ok, err := h.postAuth(ctx, "/cart/")
	if !ok || err != nil {
		return err
	}
	c, cancel := api.Context()
	defer cancel()
	var o orders.Order
	err = h.env.Write(ctx, c, func(tx pgx.Tx) (tags []string, err error) {
		o, tags, err = orders.Checkout(c, tx, p.UserID)
		return tags, err
	})
	if errors.Is(err, api.ErrConflict) || errors.Is(err, orders.ErrEmptyCart) {
		return h.cartError(ctx, c, p, err)
	}
	if err != nil {
		return err
	}
	seeOther(ctx, "/orders/"+strconv.FormatInt(o.ID, 10)+"/?placed=1")
	return nil
}

// cartError shows the cart again with a friendly message and the error's
// status (409 stock short, 422 empty cart).
func (h *handlers) cartError(ctx *fasthttp.RequestCtx, c context.Context, p tokens.Principal, err error) error {
	u, uerr := h.accounts.Get(c, p.UserID)
	if uerr != nil {
		return uerr
	}
	msg := api.Message(err)
	if errors.Is(err, orders.ErrEmptyCart) {
		msg = "Your cart is empty; add products before checking out."
	} else {
		msg = "Sorry, " + msg + ". Lower the quantity or remove the item, then check out again."
	}
	v := &view{User: &u, CSRF: h.ensureCSRF(ctx), Error: msg}
	return h.showCart(ctx, c, v, p, api.Status(err))
}

// orderList is GET /orders/.
func (h *handlers) orderList(ctx *fasthttp.RequestCtx) error {
	c, cancel := api.Context()
	defer cancel()
	v, p, ok, err := h.personal(ctx, c, "/orders/")
	if !ok || err != nil {
		return err
	}
	l, err := h.orders.List(c, p.UserID)
	if err != nil {
		return err
	}
	v.Title, v.Orders = "Your orders", l.Results
	return h.write(ctx, fasthttp.StatusOK, "orders", v)
}

// orderPage is GET /orders/{id}/; another shopper's order is a 404, the
// same as one that does not exist, so ids reveal nothing.
func (h *handlers) orderPage(ctx *fasthttp.RequestCtx) error {
	c, cancel := api.Context()
	defer cancel()
	v, p, ok, err := h.personal(ctx, c, requestURI(ctx))
	if !ok || err != nil {
		return err
	}
	id, err := api.PathID(ctx, "id", "order")
	if err != nil {
		return err
	}
	o, err := h.orders.Get(c, p.UserID, id)
	if err != nil {
		return err
	}
	if ctx.QueryArgs().Has("placed") {
		v.Notice = "Thank you! Your order #" + strconv.FormatInt(o.ID, 10) + " is placed."
	}
	v.Title, v.Order = "Order #"+strconv.FormatInt(o.ID, 10), &o
	return h.write(ctx, fasthttp.StatusOK, "order", v)
}

// addReview is POST /products/{id}/reviews/add/ with rating and text.
func (h *handlers) addReview(ctx *fasthttp.RequestCtx) error {
	id, err := api.PathID(ctx, "id", "product")
	if err != nil {
		return err
	}
	back := "/products/" + strconv.FormatInt(id, 10) + "/"
	p, ok, err := h.postAuth(ctx, back)
	if !ok || err != nil {
		return err
	}
	in, err := ParseReview(formValue(ctx))
	if err != nil {
		return err
	}
	c, cancel := api.Context()
	defer cancel()
	err = h.env.Write(ctx, c, func(tx pgx.Tx) ([]string, error) {
		_, tags, err := reviews.Add(c, tx, p.UserID, id, in)
		return tags, err
	})
	if err != nil {
		return err
	}
	seeOther(ctx, back+"#reviews")
	return nil
}
