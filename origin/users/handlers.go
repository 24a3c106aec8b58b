package users

import (
	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/origin/api"
)

// Handlers serves the account routes.
type Handlers struct {
	env *api.Env
	Svc *Service
}

// NewHandlers makes the account handlers.
func NewHandlers(env *api.Env, svc *Service) *Handlers {
	return &Handlers{env: env, Svc: svc}
}

// Register adds the account routes.
func (h *Handlers) Register(r *router.Router) {
	r.POST("/api/register/", h.env.Handle(h.register))
	r.POST("/api/login/", h.env.Handle(h.login))
	r.POST("/api/token/refresh/", h.env.Handle(h.refresh))
	r.GET("/api/me/", h.env.Handle(h.me))
}

func (h *Handlers) register(ctx *fasthttp.RequestCtx) error {
	api.Private(ctx)
	var in RegisterInput
	if err := api.Decode(ctx, &in); err != nil {
		return err
	}
	c, cancel := api.Context()
	defer cancel()
	u, err := h.Svc.Register(c, in)
	if err != nil {
		return err
	}
	api.WriteJSON(ctx, fasthttp.StatusCreated, u)
	return nil
}

// LoginInput is the body of POST /api/login/.
type LoginInput struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func (h *Handlers) login(ctx *fasthttp.RequestCtx) error {
	api.Private(ctx)
	var in LoginInput
	if err := api.Decode(ctx, &in); err != nil {
		return err
	}
	if in.Username == "" {
		return api.Invalid("username", "is required")
	}
	if in.Password == "" {
		return api.Invalid("password", "is required")
	}
	if len(in.Username) > 150 || len(in.Password) > 1024 {
		return ErrBadCredentials
	}
	c, cancel := api.Context()
	defer cancel()
	pair, err := h.Svc.Login(c, in.Username, in.Password)
	if err != nil {
		return err
	}
	api.WriteJSON(ctx, fasthttp.StatusOK, pair)
	return nil
}

// RefreshInput is the body of POST /api/token/refresh/.
type RefreshInput struct {
	Refresh string `json:"refresh"`
}

func (h *Handlers) refresh(ctx *fasthttp.RequestCtx) error {
	api.Private(ctx)
	var in RefreshInput
	if err := api.Decode(ctx, &in); err != nil {
		return err
	}
	if in.Refresh == "" {
		return api.Invalid("refresh", "is required")
	}
	c, cancel := api.Context()
	defer cancel()
	pair, err := h.Svc.Refresh(c, in.Refresh)
	if err != nil {
		return err
	}
	api.WriteJSON(ctx, fasthttp.StatusOK, pair)
	return nil
}

func (h *Handlers) me(ctx *fasthttp.RequestCtx) error {
	p, err := h.env.User(ctx)
	if err != nil {
		return err
	}
	c, cancel := api.Context()
	defer cancel()
	m, err := h.Svc.Me(c, p.UserID)
	if err != nil {
		return err
	}
	api.WriteJSON(ctx, fasthttp.StatusOK, m)
	return nil
}
