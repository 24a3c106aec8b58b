package web

import (
	"html"
	"strings"
	"testing"

	"github.com/novashop/edge/origin/catalog"
)

func TestGridHTML(t *testing.T) {
	products := []catalog.Product{
		{ID: 1, Name: `<script>alert("x")</script>`, Price: "9.99", Stock: 0, Category: catalog.CategoryRef{ID: 2, Name: "Tom & Jerry's"}},
		{ID: 22, Name: "Émile", Price: "129.99", Stock: 3, Category: catalog.CategoryRef{ID: 3, Name: "Books"}},
		{ID: 333, Name: "", Price: "0.50", Stock: 50, Category: catalog.CategoryRef{ID: 4, Name: "x\x00y"}},
	}
	got := string(gridHTML(products))
	for _, want := range []string{
		`<div class="grid">`, `href="/products/1/"`, `href="/2/">Tom &amp; Jerry&#39;s</a>`,
		`&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`, `aria-label="&lt;script&gt;`,
		`<span class="pill pill-out">Sold out</span>`, `<span class="pill pill-low">Only 3 left</span>`,
		`<span class="pill pill-in">In stock</span>`, `>É</text>`, `>?</text>`, `$129.99`, "x\uFFFDy",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("grid lacks %q", want)
		}
	}
	if strings.Contains(got, "<script>") || strings.Count(got, `<article class="card">`) != 3 {
		t.Fatalf("bad grid:\n%s", got)
	}
	if empty := string(gridHTML(nil)); !strings.Contains(empty, "No products match") {
		t.Fatalf("empty grid: %s", empty)
	}
}

func FuzzAppendEscaped(f *testing.F) {
	for _, s := range []string{"", "a<b>c", `"'&`, "\x00", "日本 & more"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := string(appendEscaped(nil, s))
		if strings.ContainsAny(out, `<>"'`+"\x00") {
			t.Fatalf("%q escaped to %q", s, out)
		}
		if want := strings.ReplaceAll(s, "\x00", "\uFFFD"); html.UnescapeString(out) != want {
			t.Fatalf("%q escaped to %q, which reads back as %q", s, out, html.UnescapeString(out))
		}
	})
}

func TestGridAllocations(t *testing.T) {
	products := make([]catalog.Product, 20)
	for i := range products {
		products[i] = catalog.Product{ID: int64(i + 1), Name: "Product name", Price: "10.00", Stock: 9,
			Category: catalog.CategoryRef{ID: 1, Name: "Category"}}
	}
	if n := testing.AllocsPerRun(50, func() { _ = gridHTML(products) }); n > 2 {
		t.Fatalf("a 20-card grid allocates %v times, want at most 2", n)
	}
}
