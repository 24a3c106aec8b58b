package web_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/internal/testenv/browsertest"
)

// TestEndToEndBrowser drives the storefront in headless Chromium as a new
// shopper would: register, log in, add to cart, check out, see the order.
// It also saves screenshots of the home and product pages into
// WEB_SCREENSHOTS (or a temporary directory) for a person to look at.
func TestEndToEndBrowser(t *testing.T) {
	base, pool := shop(t)
	pid, pname, _ := inStock(t, pool, 3)
	bin := testenv.Chromium(t)

	// The whole browser session is bounded, apart from Chromium's launch.
	ctx := browsertest.Start(t, bin, 55*time.Second)

	shots := os.Getenv("WEB_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if len(png) < 1000 {
			t.Fatalf("screenshot %s is only %d bytes", name, len(png))
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	click := func(what, sel string) {
		t.Helper()
		if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	location := func() string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimPrefix(s, base)
	}

	// Anonymous home page: the script finds no session and keeps "Log in".
	must("home", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(".grid .card")),
		chromedp.WaitVisible(chromedp.CSS("[data-login-link]")))

	must("product list", chromedp.Navigate(base+"/products/?in_stock=1&ordering=price"), chromedp.WaitVisible(chromedp.CSS(".pager")))
	shot("products")
	must("not found", chromedp.Navigate(base+"/products/999999/"), chromedp.WaitVisible(chromedp.CSS(".error-code")))
	if got := text(".error-code"); got != "404" {
		t.Fatalf("unknown product page shows %q", got)
	}
	shot("not-found")

	// Register.
	must("register form", chromedp.Navigate(base+"/register/"),
		chromedp.SendKeys(chromedp.ID("username"), "dana"),
		chromedp.SendKeys(chromedp.ID("email"), "dana@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), "dana-secret-1"),
		chromedp.SendKeys(chromedp.ID("password2"), "dana-secret-1"),
		chromedp.SendKeys(chromedp.ID("city"), "Almaty"))
	click("register", `form[action="/register/"] button[type=submit]`)
	if loc := location(); loc != "/login/?registered=1" {
		t.Fatalf("after register at %s: %s", loc, text("main"))
	}

	// Log in, coming back to the product page.
	must("login form", chromedp.Navigate(base+fmt.Sprintf("/login/?next=/products/%d/", pid)),
		chromedp.SendKeys(chromedp.ID("username"), "dana"),
		chromedp.SendKeys(chromedp.ID("password"), "dana-secret-1"))
	click("login", `form[action="/login/"] button[type=submit]`)
	if loc := location(); loc != fmt.Sprintf("/products/%d/", pid) {
		t.Fatalf("after login at %s: %s", loc, text("main"))
	}
	// The shared page learns who is here from /api/me/.
	must("personal header", chromedp.WaitVisible(chromedp.CSS("span.hello")), chromedp.WaitVisible(chromedp.CSS("form.review-form")))
	if got := text("[data-me-name]"); got != "dana" {
		t.Fatalf("header says %q", got)
	}
	if h1 := text("h1"); h1 != pname {
		t.Fatalf("product page h1 %q, want %q", h1, pname)
	}
	shot("product")

	// Add two to the cart (the script fills in the CSRF token).
	must("quantity", chromedp.SetValue(chromedp.ID("qty"), "2"))
	click("add to cart", "form.buy button[type=submit]")
	if loc := location(); !strings.HasPrefix(loc, "/cart/") {
		t.Fatalf("after add at %s: %s", loc, text("main"))
	}
	must("cart", chromedp.WaitVisible(chromedp.CSS(".cart-line")))
	if got := text(".cart-name"); got != pname {
		t.Fatalf("cart line %q", got)
	}
	must("badge", chromedp.WaitVisible(chromedp.CSS("[data-cart-count]")))
	if got := text("[data-cart-count]"); got != "2" {
		t.Fatalf("cart badge %q, want 2", got)
	}
	shot("cart")

	// Check out.
	click("checkout", `form[action="/cart/checkout/"] button[type=submit]`)
	loc := location()
	m := regexp.MustCompile(`^/orders/(\d+)/\?placed=1$`).FindStringSubmatch(loc)
	if m == nil {
		t.Fatalf("after checkout at %s: %s", loc, text("main"))
	}
	if got := text(".flash-ok"); !strings.Contains(got, "Thank you") {
		t.Fatalf("order page notice %q", got)
	}

	// The order is listed on /orders/.
	must("orders", chromedp.Navigate(base+"/orders/"), chromedp.WaitVisible(chromedp.CSS(".order-row")))
	if got := text(".order-id"); got != "Order #"+m[1] {
		t.Fatalf("orders list shows %q, want Order #%s", got, m[1])
	}
	if got := strings.ToLower(text(".order-row .status")); got != "pending" && got != "confirmed" {
		t.Fatalf("order status %q", got)
	}

	// Logged-in home page, for the screenshot.
	must("home again", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("span.hello")))
	shot("home")
	// A phone: the layout must stay usable at 390 px.
	must("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Navigate(fmt.Sprintf("%s/products/%d/", base, pid)), chromedp.WaitVisible(chromedp.CSS("form.buy")))
	if w, err := chromedp.Run(ctx, chromedp.Evaluate[int]("document.documentElement.scrollWidth")); err != nil || w > 390 {
		t.Fatalf("phone layout is %d px wide (%v), wider than the screen", w, err)
	}
	shot("phone-product")
	t.Logf("screenshots in %s", shots)
}
