package web

import (
	"net/url"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/cachekeys"
	"github.com/novashop/edge/origin/api"
	"github.com/novashop/edge/origin/catalog"
	"github.com/novashop/edge/origin/money"
)

// The catalog pages below must render the same bytes for every visitor:
// they never look at cookies or the caller, and never set a cookie.

// home is GET /: the categories and the newest products in stock.
func (h *handlers) home(ctx *fasthttp.RequestCtx) error {
	c, cancel := api.Context()
	defer cancel()
	cats, err := h.catalog.Categories(c)
	if err != nil {
		return err
	}
	page, err := h.catalog.List(c, catalog.ListQuery{MinCents: -1, MaxCents: -1, InStock: true,
		Ordering: catalog.OrderNewest, Limit: h.opt.Featured})
	if err != nil {
		return err
	}
	h.public(ctx, cachekeys.TagCatalog, cachekeys.TagCategories, cachekeys.TagProducts)
	return h.write(ctx, fasthttp.StatusOK, "home", &view{Title: "Novashop", Categories: cats, Products: page.Results})
}

// categoryPage is GET /{category_id}/: one category's products, paged by
// cursor with the list's own filters (ordering, in_stock, prices).
func (h *handlers) categoryPage(ctx *fasthttp.RequestCtx) error {
	id, err := api.PathID(ctx, "category_id", "category")
	if err != nil {
		return api.NotFound("page")
	}
	q := api.Query(ctx)
	q.Del("category")
	lq, err := catalog.ParseListQuery(q)
	if err != nil {
		return err
	}
	lq.Category = id
	c, cancel := api.Context()
	defer cancel()
	cat, err := h.catalog.Category(c, id)
	if err != nil {
		return err
	}
	page, err := h.catalog.List(c, lq)
	if err != nil {
		return err
	}
	base := "/" + strconv.FormatInt(id, 10) + "/"
	h.public(ctx, cachekeys.TagCatalog, cachekeys.TagProducts, cachekeys.TagCategory(id))
	return h.write(ctx, fasthttp.StatusOK, "category", &view{Title: cat.Name, Category: &cat,
		Products: page.Results, List: listOf(base, lq, page.Next, false)})
}

// productList is GET /products/ with the API's filters and cursor paging.
func (h *handlers) productList(ctx *fasthttp.RequestCtx) error {
	lq, err := catalog.ParseListQuery(api.Query(ctx))
	if err != nil {
		return err
	}
	c, cancel := api.Context()
	defer cancel()
	cats, err := h.catalog.Categories(c)
	if err != nil {
		return err
	}
	page, err := h.catalog.List(c, lq)
	if err != nil {
		return err
	}
	tags := []string{cachekeys.TagCatalog, cachekeys.TagProducts, cachekeys.TagCategories}
	if lq.Category > 0 {
		tags = append(tags, cachekeys.TagCategory(lq.Category))
	}
	h.public(ctx, tags...)
	title := "All products"
	if lq.Search != "" {
		title = "Results for “" + lq.Search + "”"
	}
	return h.write(ctx, fasthttp.StatusOK, "products", &view{Title: title, Categories: cats,
		Products: page.Results, List: listOf("/products/", lq, page.Next, true)})
}

// listOf builds the filter values and the paging links of a list page; the
// links keep every filter and change only the cursor.
func listOf(base string, lq catalog.ListQuery, next *string, withCategory bool) *listView {
	v := &listView{Search: lq.Search, Order: lq.Ordering, InStock: lq.InStock, Orderings: orderings}
	q := url.Values{}
	if withCategory && lq.Category > 0 {
		v.Category = lq.Category
		q.Set("category", strconv.FormatInt(lq.Category, 10))
	}
	if lq.MinCents >= 0 {
		v.MinPrice = money.Format(lq.MinCents)
		q.Set("min_price", v.MinPrice)
	}
	if lq.MaxCents >= 0 {
		v.MaxPrice = money.Format(lq.MaxCents)
		q.Set("max_price", v.MaxPrice)
	}
	if lq.InStock {
		q.Set("in_stock", "1")
	}
	if lq.Search != "" {
		q.Set("search", lq.Search)
	}
	if lq.Ordering != "" {
		q.Set("ordering", lq.Ordering)
	}
	if lq.Limit != catalog.DefaultLimit {
		q.Set("limit", strconv.Itoa(lq.Limit))
	}
	if lq.After != nil {
		v.FirstURL = base
		if len(q) > 0 {
			v.FirstURL += "?" + q.Encode()
		}
	}
	if next != nil {
		q.Set("cursor", *next)
		v.NextURL = base + "?" + q.Encode()
	}
	return v
}

// productPage is GET /products/{id}/: the product, its reviews, the
// add-to-cart form and (shown by the script to logged-in shoppers) the
// review form.
func (h *handlers) productPage(ctx *fasthttp.RequestCtx) error {
	id, err := api.PathID(ctx, "id", "product")
	if err != nil {
		return err
	}
	c, cancel := api.Context()
	defer cancel()
	p, err := h.catalog.Product(c, id)
	if err != nil {
		return err
	}
	revs, err := h.reviews.List(c, id)
	if err != nil {
		return err
	}
	h.public(ctx, cachekeys.TagProduct(id), cachekeys.TagCategory(p.Category.ID), cachekeys.TagReviews(id))
	return h.write(ctx, fasthttp.StatusOK, "product", &view{Title: p.Name, Product: &p, Reviews: &revs})
}
