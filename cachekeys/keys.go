package cachekeys

import (
	"bytes"
	"errors"
	"strings"
)

// Key errors. The edge answers a request whose key cannot be derived by
// forwarding it uncached; the origin then gives the client its own 400.
var (
	// ErrBadMethod means the method is empty or not an RFC 9110 token.
	ErrBadMethod = errors.New("cachekeys: method is not a token")
	// ErrBadHost means the Host contains bytes a host name never has.
	ErrBadHost = errors.New("cachekeys: host contains invalid bytes")
	// ErrBadURI means the request target is not origin-form or absolute-form.
	ErrBadURI = errors.New("cachekeys: request target must start with '/' or http(s)://")
	// ErrBadEscape means a '%' is not followed by two hex digits.
	ErrBadEscape = errors.New("cachekeys: malformed percent-encoding in request target")
	// ErrKeyTooLong means the normalised key exceeds MaxKeyLen bytes.
	ErrKeyTooLong = errors.New("cachekeys: key longer than MaxKeyLen")
)

// MaxKeyLen bounds a key (without Vary parts), so one client cannot make the
// cache hold megabyte keys.
const MaxKeyLen = 8192

// VarySep separates the primary key from the Vary-named request headers.
// It is a byte a normalised request target never contains.
const VarySep = '\n'

// maxStackParams is how many query parameters are sorted without allocating.
const maxStackParams = 32

// span is one query parameter inside the scratch area of dst.
type span struct{ start, nameEnd, end int }

// Key is AppendKey for callers that want a string (tests, purge by URL).
func Key(method, host, requestURI string) (string, error) {
	b, err := AppendKey(make([]byte, 0, len(method)+len(host)+len(requestURI)+2), []byte(method), []byte(host), []byte(requestURI))
	return string(b), err
}

// AppendKey appends the primary cache key of a request to dst and returns the
// extended slice. The key reads "METHOD host/path?query":
//
//   - HEAD is keyed as GET, because a stored GET answers both (RFC 9110
//     section 9.3.2) and a HEAD miss is filled with a GET.
//   - host is lower-cased and loses trailing dots (RFC 3986 section 6.2.2.1).
//   - path and query are percent-encoding normalised (RFC 3986 section
//     6.2.2): escapes of unreserved characters are decoded, other escapes get
//     upper-case hex, bytes that may not appear raw are escaped; dot segments
//     are removed from the path (RFC 3986 section 5.2.4); the fragment goes.
//   - query parameters are sorted by name (values of one name keep their
//     order, which the origin may rely on), empty ones dropped, and tracking
//     parameters (utm_*, gclid, fbclid) removed: they never change the answer.
//
// On error dst is returned unchanged. With enough capacity in dst and at most
// 32 query parameters it allocates nothing.
func AppendKey(dst, method, host, requestURI []byte) ([]byte, error) {
	orig := len(dst)
	if len(method) == 0 {
		return dst, ErrBadMethod
	}
	if string(method) == "HEAD" {
		dst = append(dst, "GET"...)
	} else {
		for _, c := range method {
			if !isTchar(c) {
				return dst[:orig], ErrBadMethod
			}
		}
		dst = append(dst, method...)
	}
	dst = append(dst, ' ')
	h := host
	for n := len(h); n > 0 && h[n-1] == '.'; n-- {
		h = h[:n-1]
	}
	for _, c := range h {
		if c <= ' ' || c >= 0x7f || c == '/' || c == '?' || c == '#' || c == '@' || c == '\\' || c == '%' {
			return dst[:orig], ErrBadHost
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	uri := requestURI
	if hasPrefixFold(uri, "http://") || hasPrefixFold(uri, "https://") {
		i := 0
		for i < len(uri) && uri[i] != ':' {
			i++
		}
		rest := uri[i+3:]
		j := 0
		for j < len(rest) && rest[j] != '/' && rest[j] != '?' && rest[j] != '#' {
			j++
		}
		uri = rest[j:]
		if len(uri) == 0 || uri[0] != '/' {
			// "http://host" and "http://host?q" mean path "/".
			dst = append(dst, '/')
		}
	} else if len(uri) == 0 || uri[0] != '/' {
		return dst[:orig], ErrBadURI
	}
	if i := bytes.IndexByte(uri, '#'); i >= 0 {
		uri = uri[:i]
	}
	path, query := uri, []byte(nil)
	hasQuery := false
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		path, query, hasQuery = uri[:i], uri[i+1:], true
	}
	pathStart := len(dst)
	var err error
	if dst, err = appendNormalised(dst, path, false); err != nil {
		return dst[:orig], err
	}
	dst = removeDotSegments(dst, pathStart)
	if hasQuery {
		if dst, err = appendQuery(dst, query); err != nil {
			return dst[:orig], err
		}
	}
	if len(dst)-orig > MaxKeyLen {
		return dst[:orig], ErrKeyTooLong
	}
	return dst, nil
}

// appendQuery appends "?" and the normalised, filtered, sorted parameters
// (nothing when none survive). It uses the capacity after dst as scratch.
func appendQuery(dst, query []byte) ([]byte, error) {
	base := len(dst)
	var stack [maxStackParams]span
	spans := stack[:0]
	for len(query) > 0 {
		i := bytes.IndexByte(query, '&')
		if i < 0 {
			i = len(query)
		}
		p := query[:i]
		if i < len(query) {
			query = query[i+1:]
		} else {
			query = nil
		}
		if len(p) == 0 {
			continue
		}
		start := len(dst)
		var err error
		name, value, hasValue := p, []byte(nil), false
		if j := bytes.IndexByte(p, '='); j >= 0 {
			name, value, hasValue = p[:j], p[j+1:], true
		}
		if dst, err = appendNormalised(dst, name, true); err != nil {
			return dst[:base], err
		}
		nameEnd := len(dst)
		if isTracking(dst[start:nameEnd]) {
			dst = dst[:start]
			continue
		}
		if hasValue {
			dst = append(dst, '=')
			if dst, err = appendNormalised(dst, value, true); err != nil {
				return dst[:base], err
			}
		}
		spans = append(spans, span{start, nameEnd, len(dst)})
	}
	if len(spans) == 0 {
		return dst[:base], nil
	}
	// Stable insertion sort by name: few parameters, no allocation.
	for i := 1; i < len(spans); i++ {
		for j := i; j > 0 && string(dst[spans[j].start:spans[j].nameEnd]) < string(dst[spans[j-1].start:spans[j-1].nameEnd]); j-- {
			spans[j], spans[j-1] = spans[j-1], spans[j]
		}
	}
	out := len(dst)
	dst = append(dst, '?')
	for i, s := range spans {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, dst[s.start:s.end]...)
	}
	n := copy(dst[base:], dst[out:])
	return dst[:base+n], nil
}

// isTracking reports whether a normalised parameter name is a click or
// campaign tracker that never changes the origin's answer.
func isTracking(name []byte) bool {
	switch {
	case len(name) >= 4 && (name[0]|0x20) == 'u':
		return (name[1]|0x20) == 't' && (name[2]|0x20) == 'm' && name[3] == '_'
	case len(name) == 5 && (name[0]|0x20) == 'g':
		return strings.EqualFold(string(name), "gclid")
	case len(name) == 6 && (name[0]|0x20) == 'f':
		return strings.EqualFold(string(name), "fbclid")
	}
	return false
}

// appendNormalised appends s with RFC 3986 section 6.2.2 percent-encoding
// normalisation. In a query component '&' and '=' stay escaped when they
// arrive escaped, since decoding them would change the parameter split; in
// a path "%2F" stays escaped for the same reason.
func appendNormalised(dst, s []byte, inQuery bool) ([]byte, error) {
	// Fast path: copy the run of bytes that need no change in one go.
	n := 0
	for n < len(s) && plain[s[n]] {
		n++
	}
	dst = append(dst, s[:n]...)
	for i := n; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return dst, ErrBadEscape
			}
			d := unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
			if isUnreserved(d) {
				dst = append(dst, d)
			} else {
				dst = append(dst, '%', upperHex[d>>4], upperHex[d&15])
			}
			continue
		}
		if isUnreserved(c) || isSubDelim(c) || c == ':' || c == '@' || c == '/' || (inQuery && c == '?') {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
	}
	return dst, nil
}

// removeDotSegments applies RFC 3986 section 5.2.4 in place to dst[start:]
// (which begins with '/') and returns dst shortened accordingly.
func removeDotSegments(dst []byte, start int) []byte {
	p := dst[start:]
	if !hasDotSegment(p) {
		return dst
	}
	w := 0 // write position inside p
	r := 0
	for r < len(p) {
		// p[r] == '/' always holds here.
		end := r + 1
		for end < len(p) && p[end] != '/' {
			end++
		}
		seg := p[r+1 : end]
		switch string(seg) {
		case ".":
			if end == len(p) {
				p[w] = '/'
				w++
			}
		case "..":
			for w > 0 {
				w--
				if p[w] == '/' {
					break
				}
			}
			if end == len(p) {
				p[w] = '/'
				w++
			}
		default:
			w += copy(p[w:], p[r:end])
		}
		r = end
	}
	if w == 0 {
		p[0] = '/'
		w = 1
	}
	return dst[:start+w]
}

func hasDotSegment(p []byte) bool {
	for i := 0; i < len(p); i++ {
		if p[i] == '.' && i > 0 && p[i-1] == '/' {
			if i+1 == len(p) || p[i+1] == '/' {
				return true
			}
			if p[i+1] == '.' && (i+2 == len(p) || p[i+2] == '/') {
				return true
			}
		}
	}
	return false
}

// SplitKey splits a primary or variant key into its method, host and
// normalised path with query. It reports false for a string AppendKey
// cannot have produced.
func SplitKey(key string) (method, host, pathQuery string, ok bool) {
	if i := strings.IndexByte(key, VarySep); i >= 0 {
		key = key[:i]
	}
	sp := strings.IndexByte(key, ' ')
	if sp <= 0 {
		return "", "", "", false
	}
	method, rest := key[:sp], key[sp+1:]
	sl := strings.IndexByte(rest, '/')
	if sl < 0 {
		return "", "", "", false
	}
	return method, rest[:sl], rest[sl:], true
}

// ParseVary parses a Vary field value (RFC 9110 section 12.5.5) into
// lower-cased, sorted, de-duplicated field names appended to dst. It reports
// false when the response must not be stored: "*" (which matches no later
// request) or a name that is not a token.
func ParseVary(v string, dst []string) ([]string, bool) {
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if f == "*" {
			return dst, false
		}
		for i := 0; i < len(f); i++ {
			if !isTchar(f[i]) {
				return dst, false
			}
		}
		f = strings.ToLower(f)
		dup := false
		for _, d := range dst {
			if d == f {
				dup = true
				break
			}
		}
		if !dup {
			dst = append(dst, f)
		}
	}
	for i := 1; i < len(dst); i++ {
		for j := i; j > 0 && dst[j] < dst[j-1]; j-- {
			dst[j], dst[j-1] = dst[j-1], dst[j]
		}
	}
	return dst, true
}

// AppendVary appends one Vary-named request header to a key: a VarySep, the
// lower-case name, '=' and the value with surrounding whitespace trimmed
// (RFC 9111 section 4.1 allows normalising whitespace). A missing header and
// an empty one are the same. Control bytes in the value are escaped so the
// key stays one line per header.
func AppendVary(dst []byte, name string, value []byte) []byte {
	dst = append(dst, VarySep)
	dst = append(dst, name...)
	dst = append(dst, '=')
	for len(value) > 0 && (value[0] == ' ' || value[0] == '\t') {
		value = value[1:]
	}
	for len(value) > 0 && (value[len(value)-1] == ' ' || value[len(value)-1] == '\t') {
		value = value[:len(value)-1]
	}
	for _, c := range value {
		if c < ' ' || c == 0x7f || c == '%' {
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

const upperHex = "0123456789ABCDEF"

// plain marks the bytes appendNormalised copies unchanged in both path and
// query: unreserved, sub-delims, ':', '@' and '/'.
var plain = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		t[c] = isUnreserved(b) || isSubDelim(b) || b == ':' || b == '@' || b == '/'
	}
	return t
}()

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// isUnreserved: RFC 3986 section 2.3.
func isUnreserved(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~'
}

// isSubDelim: RFC 3986 section 2.2.
func isSubDelim(c byte) bool {
	switch c {
	case '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=':
		return true
	}
	return false
}

// isTchar: RFC 9110 section 5.6.2.
func isTchar(c byte) bool {
	if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// hasPrefixFold reports whether b starts with the ASCII string p, ignoring
// case. A byte loop: converting b's prefix to a string for strings.EqualFold
// copied it on every key built (about 1 % of a cache hit's CPU).
func hasPrefixFold(b []byte, p string) bool {
	if len(b) < len(p) {
		return false
	}
	for i := 0; i < len(p); i++ {
		x, y := b[i], p[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
