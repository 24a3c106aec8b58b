package web

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/origin/cart"
	"github.com/novashop/edge/origin/catalog"
	"github.com/novashop/edge/origin/orders"
	"github.com/novashop/edge/origin/reviews"
	"github.com/novashop/edge/origin/users"
)

// pages are the templates, each parsed with the layout.
var pageNames = []string{"home", "category", "products", "product", "cart", "orders", "order", "login", "register", "logout", "error"}

// contentSecurityPolicy allows only this origin's own scripts, styles and
// form targets (CSP Level 3); the product pictures are inline SVG elements,
// which need no source at all.
const contentSecurityPolicy = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// view is everything a template may show. Catalog pages leave the personal
// fields (User, CSRF) empty: their bytes must not depend on the visitor.
type view struct {
	Title string
	// User is the logged-in shopper on personal pages; nil elsewhere.
	User *users.User
	// CSRF is the token personal pages put into their forms.
	CSRF string
	// Notice is a success banner, Error a failure banner, Field the form
	// field the failure is about.
	Notice, Error, Field string
	// Status is the HTTP status of an error page.
	Status int

	Categories []catalog.Category
	Category   *catalog.Category
	Products   []catalog.Product
	Product    *catalog.Product
	Reviews    *reviews.List
	List       *listView
	Cart       *cart.Cart
	Orders     []orders.Order
	Order      *orders.Order
	// Form holds the values of a form shown again after a failure (never a
	// password), and Next the page to return to after logging in.
	Form map[string]string
	Next string
}

// listView is the product list's filters and paging links.
type listView struct {
	Category                          int64
	MinPrice, MaxPrice, Search, Order string
	InStock                           bool
	NextURL, FirstURL                 string
	Orderings                         []option
}

type option struct{ Value, Label string }

var orderings = []option{
	{catalog.OrderID, "Featured"}, {catalog.OrderNewest, "Newest"}, {catalog.OrderPrice, "Price: low to high"},
	{catalog.OrderPriceDsc, "Price: high to low"}, {catalog.OrderName, "Name"},
}

// palette gives every category its colour (by id), for the placeholders.
var palette = []struct{ bg, fg string }{
	{"#e0e7ff", "#4f46e5"}, {"#fce7f3", "#db2777"}, {"#dcfce7", "#16a34a"}, {"#ffedd5", "#ea580c"},
	{"#e0f2fe", "#0284c7"}, {"#fef9c3", "#ca8a04"}, {"#f3e8ff", "#9333ea"}, {"#ccfbf1", "#0d9488"},
	{"#fee2e2", "#dc2626"}, {"#e2e8f0", "#475569"},
}

func colour(categoryID int64) (bg, fg string) {
	if categoryID < 0 {
		categoryID = -categoryID
	}
	c := palette[categoryID%int64(len(palette))]
	return c.bg, c.fg
}

// stars renders a rating (rounded to whole stars) as five glyphs.
func stars(r float64) string {
	n := int(r + 0.5)
	if n < 0 {
		n = 0
	}
	if n > 5 {
		n = 5
	}
	return strings.Repeat("★", n) + strings.Repeat("☆", 5-n)
}

func date(t time.Time) string { return t.UTC().Format("2 Jan 2006") }

func dateTime(t time.Time) string { return t.UTC().Format("2 Jan 2006, 15:04 UTC") }

// loadTemplates parses every page with the layout and the shared partials.
func loadTemplates(asset func(string) string) (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"asset":       asset,
		"placeholder": placeholder,
		"grid":        gridHTML,
		"stars":       stars,
		"starsInt":    func(n int) string { return stars(float64(n)) },
		"date":        date,
		"dateTime":    dateTime,
		"itoa":        func(n int64) string { return strconv.FormatInt(n, 10) },
		"field":       func(m map[string]string, k string) string { return m[k] },
		"lowStock":    func(n int) bool { return n > 0 && n <= 5 },
	}
	out := make(map[string]*template.Template, len(pageNames))
	for _, p := range pageNames {
		t, err := template.New(p).Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/partials.html", "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", p, err)
		}
		out[p] = t
	}
	return out, nil
}

// write renders page into the response with status. Rendering goes to a
// buffer first, so a failing template never sends half a page.
// The buffer comes from a pool, so a page allocates no body buffer.
func (h *handlers) write(ctx *fasthttp.RequestCtx, status int, page string, v *view) error {
	buf := bytebufferpool.Get()
	if err := h.tmpl[page].ExecuteTemplate(buf, "layout", v); err != nil {
		bytebufferpool.Put(buf)
		return fmt.Errorf("web: render %s: %w", page, err)
	}
	ctx.Response.Header.Set("Content-Security-Policy", contentSecurityPolicy)
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	ctx.Response.Header.Set("Referrer-Policy", "same-origin")
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.SetStatusCode(status)
	ctx.SetBody(buf.B)
	bytebufferpool.Put(buf)
	return nil
}
