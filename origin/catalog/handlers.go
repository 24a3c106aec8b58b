package catalog

import (
	"context"
	"github.com/fasthttp/router"
	"github.com/jackc/pgx/v5"
	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/cachekeys"
	"github.com/novashop/edge/origin/api"
)

// Handlers serves the catalog's JSON API.
type Handlers struct {
	env   *api.Env
	Store *Store
}

// NewHandlers makes the catalog handlers.
func NewHandlers(env *api.Env) *Handlers {
	// The store reads from env.CatalogPool (the replica when there is one):
	// every read it serves is a shared, cached catalog answer, while writes
	// go through env.Write on the primary.
	return &Handlers{env: env, Store: &Store{Pool: env.CatalogPool()}}
}

// Register adds the catalog routes.
func (h *Handlers) Register(r *router.Router) {
	e := h.env
	r.GET("/api/categories/", e.Handle(h.categories))
	r.POST("/api/categories/", e.Handle(h.createCategory))
	r.GET("/api/categories/{id}/", e.Handle(h.category))
	r.PATCH("/api/categories/{id}/", e.Handle(h.updateCategory))
	r.GET("/api/products/", e.Handle(h.list))
	r.POST("/api/products/", e.Handle(h.createProduct))
	r.GET("/api/products/{id}/", e.Handle(h.product))
	r.PATCH("/api/products/{id}/", e.Handle(h.updateProduct))
	r.DELETE("/api/products/{id}/", e.Handle(h.deleteProduct))
}

func (h *Handlers) categories(ctx *fasthttp.RequestCtx) error {
	c, cancel := api.Context()
	defer cancel()
	cs, err := h.Store.Categories(c)
	if err != nil {
		return err
	}
	h.env.Public(ctx, cachekeys.TagCategories, cachekeys.TagCatalog)
	api.WriteJSON(ctx, fasthttp.StatusOK, cs)
	return nil
}

func (h *Handlers) category(ctx *fasthttp.RequestCtx) error {
	id, err := api.PathID(ctx, "id", "category")
	if err != nil {
		return err
	}
	c, cancel := api.Context()
	defer cancel()
	cat, err := h.Store.Category(c, id)
	if err != nil {
		return err
	}
	h.env.Public(ctx, cachekeys.TagCategory(id), cachekeys.TagCatalog)
	api.WriteJSON(ctx, fasthttp.StatusOK, cat)
	return nil
}

func (h *Handlers) list(ctx *fasthttp.RequestCtx) error {
	q, err := ParseListQuery(api.Args{Args: ctx.QueryArgs()})
	if err != nil {
		return err
	}
	c, cancel := api.Context()
	defer cancel()
	// The hot path: JSON appended from the rows (see jsonenc.go).
	err = api.WriteJSONAppend(ctx, fasthttp.StatusOK, func(dst []byte) ([]byte, error) {
		return h.Store.AppendListJSON(c, dst, q)
	})
	if err != nil {
		return err
	}
	if q.Category > 0 {
		h.env.Public(ctx, cachekeys.TagProducts, cachekeys.TagCatalog, cachekeys.TagCategory(q.Category))
	} else {
		h.env.Public(ctx, cachekeys.TagProducts, cachekeys.TagCatalog)
	}
	return nil
}

func (h *Handlers) product(ctx *fasthttp.RequestCtx) error {
	id, err := api.PathID(ctx, "id", "product")
	if err != nil {
		return err
	}
	c, cancel := api.Context()
	defer cancel()
	var catID int64
	err = api.WriteJSONAppend(ctx, fasthttp.StatusOK, func(dst []byte) (out []byte, err error) {
		out, catID, err = h.Store.AppendProductJSON(c, dst, id)
		return out, err
	})
	if err != nil {
		return err
	}
	h.env.Public(ctx, cachekeys.TagProduct(id), cachekeys.TagCategory(catID))
	return nil
}

func (h *Handlers) createProduct(ctx *fasthttp.RequestCtx) error {
	if _, err := api.Staff(ctx, h.env.Keys); err != nil {
		return err
	}
	var in ProductInput
	if err := api.Decode(ctx, &in); err != nil {
		return err
	}
	p, err := api.WriteTx(h.env, ctx, func(c context.Context, tx pgx.Tx) (Product, []string, error) {
		return CreateProduct(c, tx, in)
	})
	if err != nil {
		return err
	}
	api.Private(ctx)
	ctx.Response.Header.Set(fasthttp.HeaderLocation, "/api/products/"+itoa(p.ID)+"/")
	api.WriteJSON(ctx, fasthttp.StatusCreated, p)
	return nil
}

func (h *Handlers) updateProduct(ctx *fasthttp.RequestCtx) error {
	if _, err := api.Staff(ctx, h.env.Keys); err != nil {
		return err
	}
	id, err := api.PathID(ctx, "id", "product")
	if err != nil {
		return err
	}
	var in ProductInput
	if err := api.Decode(ctx, &in); err != nil {
		return err
	}
	p, err := api.WriteTx(h.env, ctx, func(c context.Context, tx pgx.Tx) (Product, []string, error) {
		return UpdateProduct(c, tx, id, in)
	})
	if err != nil {
		return err
	}
	api.Private(ctx)
	api.WriteJSON(ctx, fasthttp.StatusOK, p)
	return nil
}

func (h *Handlers) deleteProduct(ctx *fasthttp.RequestCtx) error {
	if _, err := api.Staff(ctx, h.env.Keys); err != nil {
		return err
	}
	id, err := api.PathID(ctx, "id", "product")
	if err != nil {
		return err
	}
	c, cancel := api.Context()
	defer cancel()
	err = h.env.Write(ctx, c, func(tx pgx.Tx) ([]string, error) {
		return DeleteProduct(c, tx, id)
	})
	if err != nil {
		return err
	}
	api.Private(ctx)
	ctx.SetStatusCode(fasthttp.StatusNoContent)
	return nil
}

func (h *Handlers) createCategory(ctx *fasthttp.RequestCtx) error {
	if _, err := api.Staff(ctx, h.env.Keys); err != nil {
		return err
	}
	var in CategoryInput
	if err := api.Decode(ctx, &in); err != nil {
		return err
	}
	cat, err := api.WriteTx(h.env, ctx, func(c context.Context, tx pgx.Tx) (Category, []string, error) {
		return CreateCategory(c, tx, in)
	})
	if err != nil {
		return err
	}
	api.Private(ctx)
	ctx.Response.Header.Set(fasthttp.HeaderLocation, "/api/categories/"+itoa(cat.ID)+"/")
	api.WriteJSON(ctx, fasthttp.StatusCreated, cat)
	return nil
}

func (h *Handlers) updateCategory(ctx *fasthttp.RequestCtx) error {
	if _, err := api.Staff(ctx, h.env.Keys); err != nil {
		return err
	}
	id, err := api.PathID(ctx, "id", "category")
	if err != nil {
		return err
	}
	var in CategoryInput
	if err := api.Decode(ctx, &in); err != nil {
		return err
	}
	cat, err := api.WriteTx(h.env, ctx, func(c context.Context, tx pgx.Tx) (Category, []string, error) {
		return UpdateCategory(c, tx, id, in)
	})
	if err != nil {
		return err
	}
	api.Private(ctx)
	api.WriteJSON(ctx, fasthttp.StatusOK, cat)
	return nil
}
