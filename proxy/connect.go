package proxy

// connectTarget reports whether target is the authority-form a CONNECT
// request must carry (RFC 9112 §3.2.3): uri-host ":" port, where uri-host is
// an IP literal in brackets or a reg-name / IPv4 address (RFC 3986 §3.2.2)
// and port is 1 to 5 digits. The framer lets any target-like bytes through
// for CONNECT; this is the stricter check, so "CONNECT domain.example" (no
// port) is refused instead of forwarded.
func connectTarget(target []byte) bool {
	colon := -1
	for i := len(target) - 1; i >= 0; i-- {
		if target[i] == ':' {
			colon = i
			break
		}
	}
	if colon <= 0 {
		return false
	}
	host, port := target[:colon], target[colon+1:]
	if len(port) == 0 || len(port) > 5 {
		return false
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return false
		}
	}
	if host[0] == '[' {
		if len(host) < 3 || host[len(host)-1] != ']' {
			return false
		}
		for _, c := range host[1 : len(host)-1] {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':' || c == '.') {
				return false
			}
		}
		return true
	}
	for _, c := range host {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '.' || c == '_' || c == '~' || c == '%':
		case c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' || c == ')' ||
			c == '*' || c == '+' || c == ',' || c == ';' || c == '=':
		default:
			return false
		}
	}
	return true
}

// absoluteTarget reports whether an absolute-form request-target (RFC 9112
// §3.2.2, a target that starts with neither "/" nor "*") has a scheme, "//"
// and an authority of RFC 3986 §3.2: [userinfo "@"] host [":" port], host an
// IP literal in brackets or a reg-name / IPv4 address. The framer checks only
// "scheme://"; fasthttp refuses a broken authority (PUT s://]ufd/:) on the
// goroutine core but forwarded it on the event-loop core, so this check
// answers both the same way.
func absoluteTarget(target []byte) bool {
	i := 0
	for i < len(target) && target[i] != ':' {
		c := target[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
		i++
	}
	if i == 0 || len(target) < i+3 || target[i+1] != '/' || target[i+2] != '/' {
		return false
	}
	auth := target[i+3:]
	for j, c := range auth {
		if c == '/' || c == '?' || c == '#' {
			auth = auth[:j]
			break
		}
	}
	if at := lastIndexByte(auth, '@'); at >= 0 {
		for _, c := range auth[:at] {
			if !(uriUnreserved(c) || uriSubDelim(c) || c == ':' || c == '%') {
				return false
			}
		}
		auth = auth[at+1:]
	}
	if len(auth) == 0 {
		return false
	}
	host, port := auth, []byte(nil)
	if auth[0] == '[' {
		end := lastIndexByte(auth, ']')
		if end < 2 {
			return false
		}
		for _, c := range auth[1:end] {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':' || c == '.') {
				return false
			}
		}
		host, port = nil, auth[end+1:]
		if len(port) > 0 {
			if port[0] != ':' {
				return false
			}
			port = port[1:]
		}
	} else if colon := lastIndexByte(auth, ':'); colon >= 0 {
		host, port = auth[:colon], auth[colon+1:]
	}
	for _, c := range host {
		if !(uriUnreserved(c) || uriSubDelim(c) || c == '%') {
			return false
		}
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(port) <= 5
}

func lastIndexByte(b []byte, c byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == c {
			return i
		}
	}
	return -1
}

func uriUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func uriSubDelim(c byte) bool {
	switch c {
	case '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=':
		return true
	}
	return false
}
