package web

import (
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/novashop/edge/origin/api"
	"github.com/novashop/edge/origin/cart"
	"github.com/novashop/edge/origin/reviews"
	"github.com/novashop/edge/origin/users"
)

// maxNext bounds the next parameter; longer is not a page of ours.
const maxNext = 2048

// SafeNext returns next when it is a local path of this site, else "/".
//
// A login redirect to an attacker's address is an open redirect (CWE-601).
// Only a path that starts with exactly one "/" is kept: "//evil" and "/\evil"
// are protocol-relative for browsers (the URL standard treats "\" as "/" in
// special schemes), absolute URLs carry a scheme, and control characters or
// invalid UTF-8 could be reinterpreted along the way.
func SafeNext(next string) string {
	if next == "" || len(next) > maxNext || next[0] != '/' || !utf8.ValidString(next) {
		return "/"
	}
	if len(next) > 1 && (next[1] == '/' || next[1] == '\\') {
		return "/"
	}
	for i := 0; i < len(next); i++ {
		if c := next[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return "/"
	}
	// A path whose decoded form starts with "//" or "/\" would be rebuilt
	// into a protocol-relative URL by anything that decodes it again.
	if strings.HasPrefix(u.Path, "//") || strings.HasPrefix(u.Path, "/\\") || strings.ContainsRune(u.Path, '\\') {
		return "/"
	}
	return next
}

// loginURL is the login page that returns to next afterwards.
func loginURL(next string) string {
	next = SafeNext(next)
	if next == "/" {
		return "/login/"
	}
	return "/login/?next=" + url.QueryEscape(next)
}

// ParseQuantity reads a cart quantity form field; empty means def.
func ParseQuantity(s string, def int) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		if def > 0 {
			return def, nil
		}
		return 0, api.Invalid("quantity", "is required")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > cart.MaxQuantity {
		return 0, api.Invalid("quantity", "must be a whole number from 1 to 1000")
	}
	return n, nil
}

// ParseReview reads the review form (rating 1-5, optional text).
func ParseReview(get func(string) string) (reviews.Input, error) {
	var in reviews.Input
	s := strings.TrimSpace(get("rating"))
	if s == "" {
		return in, api.Invalid("rating", "is required: pick 1 to 5 stars")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 5 {
		return in, api.Invalid("rating", "must be a whole number from 1 to 5")
	}
	in.Rating = &n
	in.Text = strings.TrimSpace(normalizeNewlines(get("text")))
	return in, in.Validate()
}

// Login is the login form.
type Login struct {
	Username, Password, Next string
}

// ParseLogin reads the login form; both fields are required.
func ParseLogin(get func(string) string) (Login, error) {
	l := Login{Username: strings.TrimSpace(get("username")), Password: get("password"), Next: SafeNext(get("next"))}
	switch {
	case l.Username == "":
		return l, api.Invalid("username", "is required")
	case l.Password == "":
		return l, api.Invalid("password", "is required")
	case len(l.Username) > 150 || !utf8.ValidString(l.Username):
		return l, api.Invalid("username", "is not a username of this shop")
	case len(l.Password) > 1024:
		return l, api.Invalid("password", "is too long")
	}
	return l, nil
}

// ParseRegister reads the registration form and validates it with the
// accounts' own rules, so the page and the API accept the same accounts.
func ParseRegister(get func(string) string) (users.RegisterInput, error) {
	in := users.RegisterInput{
		Username:  strings.TrimSpace(get("username")),
		Email:     strings.TrimSpace(get("email")),
		Password:  get("password"),
		FirstName: strings.TrimSpace(get("first_name")),
		LastName:  strings.TrimSpace(get("last_name")),
		City:      strings.TrimSpace(get("city")),
		Address:   strings.TrimSpace(normalizeNewlines(get("address"))),
	}
	if in.Password != get("password2") && get("password2") != "" {
		return in, api.Invalid("password2", "does not match the password")
	}
	return in, in.Validate()
}

func normalizeNewlines(s string) string {
	return strings.ReplaceAll(s, "\r\n", "\n")
}
