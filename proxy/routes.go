package proxy

import (
	"bytes"
)

// access is what a route demands of the caller.
type access uint8

const (
	// accessPublic routes are forwarded without a token check.
	accessPublic access = iota
	// accessUserAPI routes need a verified token; failures get 401 JSON.
	accessUserAPI
	// accessStaffAPI routes need a verified staff token; shoppers get 403 JSON.
	accessStaffAPI
	// accessUserPage storefront routes need a verified token; failures get a 303 to
	// /login/?next=….
	accessUserPage
)

// routeAccess classifies a request by method and (normalised) path, following the
// shop's routes in DESIGN.md. It allocates nothing.
func routeAccess(method, path []byte) access {
	if len(path) == 0 || path[0] != '/' {
		return accessPublic // fasthttp's normalised paths always start with "/"
	}
	switch {
	case hasPrefix(path, "/api/"):
		rest := path[len("/api/"):]
		switch {
		case underSegment(rest, "me"), underSegment(rest, "cart"), underSegment(rest, "orders"):
			return accessUserAPI
		case hasPrefix(rest, "products/"):
			seg := rest[len("products/"):]
			if len(seg) == 0 {
				if isMethod(method, "POST") {
					return accessStaffAPI
				}
				return accessPublic
			}
			id, tail, ok := cutSegment(seg)
			if !ok || len(id) == 0 {
				return accessPublic
			}
			switch {
			case len(tail) == 0 && (isMethod(method, "PATCH") || isMethod(method, "DELETE") || isMethod(method, "PUT")):
				return accessStaffAPI
			case string(tail) == "reviews/" && isMethod(method, "POST"):
				return accessUserAPI
			}
		case hasPrefix(rest, "categories/"):
			seg := rest[len("categories/"):]
			if len(seg) == 0 {
				if isMethod(method, "POST") {
					return accessStaffAPI
				}
				return accessPublic
			}
			if id, tail, ok := cutSegment(seg); ok && len(id) > 0 && len(tail) == 0 &&
				(isMethod(method, "PATCH") || isMethod(method, "PUT") || isMethod(method, "DELETE")) {
				return accessStaffAPI
			}
		}
		return accessPublic
	case underSegment(path[1:], "cart"), underSegment(path[1:], "orders"):
		return accessUserPage
	case hasPrefix(path, "/products/") && isMethod(method, "POST"):
		seg := path[len("/products/"):]
		if id, tail, ok := cutSegment(seg); ok && len(id) > 0 && string(tail) == "reviews/add/" {
			return accessUserPage
		}
	}
	return accessPublic
}

// underSegment reports whether b is seg, or seg followed by "/" and anything:
// "cart", "cart/" and "cart/items/1/" are under "cart", "carts/" is not. Matching the
// bare segment too means "/api/cart" cannot slip past the check.
func underSegment(b []byte, seg string) bool {
	return hasPrefix(b, seg) && (len(b) == len(seg) || b[len(seg)] == '/')
}

func hasPrefix(b []byte, p string) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }

func isMethod(m []byte, want string) bool { return string(m) == want }

// cutSegment splits "id/rest" into "id" and "rest"; ok is false without a slash.
func cutSegment(b []byte) (seg, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '/')
	if i < 0 {
		return nil, nil, false
	}
	return b[:i], b[i+1:], true
}
