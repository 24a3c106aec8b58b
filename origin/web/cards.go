package web

import (
	"html/template"
	"strconv"
	"unicode/utf8"

	"github.com/novashop/edge/origin/catalog"
)

// The product grid is the bulk of every catalog page. html/template calls
// its escapers through reflection for every action, so a grid of 20 cards
// cost about 1,700 allocations; rendering the grid here, with the same
// escaping rules (every text from the database goes through appendEscaped),
// costs a handful. Templates still say where the grid goes ({{grid .}}).

// gridHTML renders products as the card grid, or the empty-state message.
func gridHTML(products []catalog.Product) template.HTML {
	if len(products) == 0 {
		return `<div class="empty"><p>No products match. Try fewer filters.</p><a class="btn" href="/products/">See all products</a></div>`
	}
	b := make([]byte, 0, len(products)*1600+32)
	b = append(b, `<div class="grid">`...)
	for i := range products {
		b = appendCard(b, &products[i])
	}
	b = append(b, `</div>`...)
	return template.HTML(b)
}

func appendCard(b []byte, p *catalog.Product) []byte {
	b = append(b, "<article class=\"card\">\n  <a class=\"card-img\" href=\"/products/"...)
	b = strconv.AppendInt(b, p.ID, 10)
	b = append(b, `/" tabindex="-1" aria-hidden="true">`...)
	b = appendPlaceholder(b, p.Category.ID, p.Name)
	b = append(b, "</a>\n  <div class=\"card-body\">\n    <a class=\"card-cat\" href=\"/"...)
	b = strconv.AppendInt(b, p.Category.ID, 10)
	b = append(b, `/">`...)
	b = appendEscaped(b, p.Category.Name)
	b = append(b, "</a>\n    <h3 class=\"card-title\"><a href=\"/products/"...)
	b = strconv.AppendInt(b, p.ID, 10)
	b = append(b, `/">`...)
	b = appendEscaped(b, p.Name)
	b = append(b, "</a></h3>\n    <div class=\"card-foot\">\n      <span class=\"price\">$"...)
	b = appendEscaped(b, p.Price)
	b = append(b, "</span>\n      "...)
	b = appendStock(b, p.Stock)
	return append(b, "\n    </div>\n  </div>\n</article>"...)
}

// appendStock is the "stock" pill (the template partial of that name).
func appendStock(b []byte, n int) []byte {
	switch {
	case n <= 0:
		return append(b, `<span class="pill pill-out">Sold out</span>`...)
	case n <= 5:
		b = append(b, `<span class="pill pill-low">Only `...)
		b = strconv.AppendInt(b, int64(n), 10)
		return append(b, ` left</span>`...)
	}
	return append(b, `<span class="pill pill-in">In stock</span>`...)
}

// placeholder draws a product picture as an inline SVG in its category's
// colour with the product's initial: no image files, no external requests.
func placeholder(categoryID int64, name string) template.HTML {
	return template.HTML(appendPlaceholder(make([]byte, 0, 1024), categoryID, name))
}

func appendPlaceholder(b []byte, categoryID int64, name string) []byte {
	bg, fg := colour(categoryID)
	initial := "?"
	if name != "" {
		_, n := utf8.DecodeRuneInString(name)
		initial = name[:n]
	}
	b = append(b, `<svg class="ph" viewBox="0 0 400 300" preserveAspectRatio="xMidYMid slice" role="img" aria-label="`...)
	b = appendEscaped(b, name)
	b = append(b, `" xmlns="http://www.w3.org/2000/svg"><rect width="400" height="300" fill="`...)
	b = append(b, bg...)
	b = append(b, `"/><circle cx="330" cy="40" r="110" fill="`...)
	b = append(b, fg...)
	b = append(b, `" opacity=".10"/><circle cx="60" cy="280" r="90" fill="`...)
	b = append(b, fg...)
	b = append(b, `" opacity=".08"/><path d="M160 120h80l10 100h-100z" fill="`...)
	b = append(b, fg...)
	b = append(b, `" opacity=".9"/><path d="M178 120v-12a22 22 0 0 1 44 0v12" fill="none" stroke="`...)
	b = append(b, fg...)
	b = append(b, `" stroke-width="8" stroke-linecap="round"/><text x="200" y="192" text-anchor="middle" font-family="system-ui,sans-serif" font-size="48" font-weight="700" fill="#fff">`...)
	b = appendEscaped(b, initial)
	return append(b, `</text></svg>`...)
}

// appendEscaped appends s escaped for HTML text and quoted attribute
// values, as template.HTMLEscapeString does: the five significant
// characters as entities, NUL as U+FFFD.
func appendEscaped(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '"':
			esc = "&#34;"
		case '\'':
			esc = "&#39;"
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case 0:
			esc = "\uFFFD"
		default:
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, esc...)
		start = i + 1
	}
	return append(b, s[start:]...)
}
