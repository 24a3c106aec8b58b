package proxy

import "testing"

func TestRouteAccess(t *testing.T) {
	tests := []struct {
		method, path string
		want         access
	}{
		{"GET", "/", accessPublic},
		{"GET", "/3/", accessPublic},
		{"GET", "/products/", accessPublic},
		{"GET", "/products/7/", accessPublic},
		{"GET", "/login/", accessPublic},
		{"POST", "/api/login/", accessPublic},
		{"POST", "/api/register/", accessPublic},
		{"POST", "/api/token/refresh/", accessPublic},
		{"GET", "/api/products/", accessPublic},
		{"GET", "/api/products/7/", accessPublic},
		{"GET", "/api/products/7/reviews/", accessPublic},
		{"GET", "/api/categories/", accessPublic},
		{"GET", "/api/categories/2/", accessPublic},
		{"GET", "/api/me/", accessUserAPI},
		{"GET", "/api/cart/", accessUserAPI},
		{"POST", "/api/cart/items/", accessUserAPI},
		{"PATCH", "/api/cart/items/4/", accessUserAPI},
		{"DELETE", "/api/cart/items/4/", accessUserAPI},
		{"POST", "/api/orders/", accessUserAPI},
		{"GET", "/api/orders/9/", accessUserAPI},
		{"POST", "/api/products/7/reviews/", accessUserAPI},
		{"POST", "/api/products/", accessStaffAPI},
		{"PATCH", "/api/products/7/", accessStaffAPI},
		{"DELETE", "/api/products/7/", accessStaffAPI},
		{"POST", "/api/categories/", accessStaffAPI},
		{"PATCH", "/api/categories/2/", accessStaffAPI},
		{"GET", "/cart/", accessUserPage},
		{"POST", "/cart/add/5/", accessUserPage},
		{"GET", "/orders/", accessUserPage},
		{"GET", "/orders/12/", accessUserPage},
		{"POST", "/products/7/reviews/add/", accessUserPage},
		{"GET", "/products/7/reviews/add/", accessPublic},
		{"GET", "/api", accessPublic},
		{"GET", "/api/me", accessUserAPI},
		{"GET", "/api/cart", accessUserAPI},
		{"POST", "/api/orders", accessUserAPI},
		{"GET", "/api/carts/", accessPublic},
		{"GET", "/cart", accessUserPage},
		{"GET", "/orders", accessUserPage},
		{"GET", "/ordersx/", accessPublic},
		{"GET", "", accessPublic},
		{"GET", "x", accessPublic},
		{"GET", "/api/products//", accessPublic},
	}
	for _, tt := range tests {
		if got := routeAccess([]byte(tt.method), []byte(tt.path)); got != tt.want {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, got, tt.want)
		}
	}
}

func FuzzRouteAccess(f *testing.F) {
	for _, s := range []string{"/api/products/1/", "/api/cart/", "/cart/add/1/", "/products/1/reviews/add/", "/api/categories/x/", "/", ""} {
		f.Add("POST", s)
		f.Add("GET", s)
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		got := routeAccess([]byte(method), []byte(path))
		if got > accessUserPage {
			t.Fatalf("unknown access %d", got)
		}
		// Everything under the private API prefixes needs a user whatever the method.
		for _, p := range []string{"/api/me/", "/api/cart/", "/api/orders/", "/api/me", "/api/cart"} {
			if (path == p || len(path) > len(p) && path[:len(p)] == p && (p[len(p)-1] == '/' || path[len(p)] == '/')) && got != accessUserAPI {
				t.Fatalf("%s %s classified %d", method, path, got)
			}
		}
	})
}
