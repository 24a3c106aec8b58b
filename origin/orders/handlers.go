package orders

import (
	"context"
	"github.com/fasthttp/router"
	"github.com/jackc/pgx/v5"
	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/origin/api"
)

// Handlers serves the order routes.
type Handlers struct {
	env   *api.Env
	Store *Store
}

// NewHandlers makes the order handlers.
func NewHandlers(env *api.Env) *Handlers {
	return &Handlers{env: env, Store: &Store{Pool: env.Pool}}
}

// Register adds the order routes.
func (h *Handlers) Register(r *router.Router) {
	r.POST("/api/orders/", h.env.Handle(h.checkout))
	r.GET("/api/orders/", h.env.Handle(h.list))
	r.GET("/api/orders/{id}/", h.env.Handle(h.get))
}

func (h *Handlers) checkout(ctx *fasthttp.RequestCtx) error {
	p, err := h.env.User(ctx)
	if err != nil {
		return err
	}
	// The body is optional; if one is sent it must be a JSON object.
	if len(ctx.Request.Body()) > 0 {
		var in struct{}
		if err := api.Decode(ctx, &in); err != nil {
			return err
		}
	}
	o, err := api.WriteTx(h.env, ctx, func(c context.Context, tx pgx.Tx) (Order, []string, error) {
		return Checkout(c, tx, p.UserID)
	})
	if err != nil {
		return err
	}
	ctx.Response.Header.Set(fasthttp.HeaderLocation, "/api/orders/"+itoa(o.ID)+"/")
	api.WriteJSON(ctx, fasthttp.StatusCreated, o)
	return nil
}

func (h *Handlers) list(ctx *fasthttp.RequestCtx) error {
	p, err := h.env.User(ctx)
	if err != nil {
		return err
	}
	return api.Respond(ctx, fasthttp.StatusOK, func(c context.Context) (List, error) {
		return h.Store.List(c, p.UserID)
	})
}

func (h *Handlers) get(ctx *fasthttp.RequestCtx) error {
	p, err := h.env.User(ctx)
	if err != nil {
		return err
	}
	id, err := api.PathID(ctx, "id", "order")
	if err != nil {
		return err
	}
	return api.Respond(ctx, fasthttp.StatusOK, func(c context.Context) (Order, error) {
		return h.Store.Get(c, p.UserID, id)
	})
}
