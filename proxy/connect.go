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
