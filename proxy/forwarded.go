package proxy

import (
	"bytes"
	"net"
	"net/netip"
	"unsafe"

	"github.com/novashop/edge/proxy/config"
	"github.com/valyala/fasthttp"
)

// Trusted forwarding headers (forwarded.*): behind an L7 load balancer or a
// CDN the direct peer is the balancer, and the client's address and scheme
// arrive in X-Forwarded-For / X-Forwarded-Proto / X-Forwarded-Ssl or in RFC
// 7239's Forwarded. The edge reads them only from a peer in forwarded.trusted
// (nginx's set_real_ip_from, gunicorn's forwarded_allow_ips); from anyone else
// they could claim any address or scheme, so the edge then writes
// X-Forwarded-For and X-Forwarded-Proto itself, as it always has.
//
// The client is the rightmost address of the header, or with
// forwarded.recursive the rightmost one not in forwarded.trusted (nginx's
// real_ip_recursive): the right end is what the trusted balancers wrote, the
// left end whatever the client sent. As nginx does, an entry that is not an
// address (garbage, "unknown", an obfuscated RFC 7239 identifier) ends the
// walk: the client is the last address read before it, or the peer when it is
// the rightmost entry. Such a request is not refused (the balancer wrote the
// header, not the client; refusing would turn one odd hop into an outage) but
// counted in edge_forwarded_header_problems_total{problem="invalid_address"}.
// Scheme headers that contradict each other or say neither http nor https
// are refused 400, as gunicorn refuses them (InvalidSchemeHeaders): the
// origin marks cookies Secure on X-Forwarded-Proto, so a guess could go
// either way wrong.

// forwardTrust is forwarded.* compiled; nil when nothing is trusted.
type forwardTrust struct {
	trusted   []netip.Prefix
	rfc7239   bool
	recursive bool
}

func newForwardTrust(c config.Forwarded) *forwardTrust {
	p := c.Prefixes()
	if len(p) == 0 {
		return nil
	}
	return &forwardTrust{trusted: p, rfc7239: c.Header == config.ForwardedRFC7239, recursive: c.Recursive}
}

func (f *forwardTrust) trusts(a netip.Addr) bool {
	for _, p := range f.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Schemes a forwarding header can name.
const (
	schemeNone  = iota // no scheme header: the connection's own
	schemeHTTP         // http, or X-Forwarded-Ssl: off
	schemeHTTPS        // https, or X-Forwarded-Ssl: on
	schemeBad          // contradicting or unknown: answer 400
)

// forwardedView is what a trusted peer's forwarding headers say.
type forwardedView struct {
	client  netip.Addr // the client; invalid when the header names none
	scheme  int
	invalid bool // an entry that is not an address ended the walk, or a Forwarded header did not parse
}

// resolveForwarded reads the forwarding headers of a request whose peer is
// trusted. With the Forwarded header, prior receives its for= chain as an
// X-Forwarded-For list (addresses, "unknown" for anything else), so the
// origin gets the chain in the header it already reads; with X-Forwarded-For
// it is left empty (the received list is sent on as it is).
func (f *forwardTrust) resolveForwarded(h *fasthttp.RequestHeader, prior []byte) (forwardedView, []byte) {
	var v forwardedView
	if f.rfc7239 {
		var ok bool
		var p forwardedParse
		for _, line := range h.PeekAll("Forwarded") {
			if prior, ok = p.add(line, prior); !ok {
				// Forwarded does not parse: ignore it whole, as
				// garbage, since its elements cannot be told apart.
				return forwardedView{invalid: true}, prior[:0]
			}
		}
		v.client, v.scheme, v.invalid = p.resolve(f)
		return v, prior
	}
	v.client, v.invalid = f.walkXFF(h.PeekAll(headerForwardedFor))
	v.scheme = xffScheme(h)
	return v, prior
}

// walkXFF finds the client in X-Forwarded-For's lines, from the right.
func (f *forwardTrust) walkXFF(lines [][]byte) (client netip.Addr, invalid bool) {
	for i := len(lines) - 1; i >= 0; i-- {
		v := lines[i]
		for len(v) > 0 {
			var item []byte
			if j := bytes.LastIndexByte(v, ','); j >= 0 {
				item, v = v[j+1:], v[:j]
			} else {
				item, v = v, nil
			}
			item = trimOWS(item)
			if len(item) == 0 {
				continue // empty list elements are allowed (RFC 9110 §5.6.1)
			}
			a, ok := parseNode(item)
			if !ok {
				return client, true
			}
			client = a
			if !f.recursive || !f.trusts(a) {
				return client, false
			}
		}
	}
	return client, false
}

// xffScheme reads X-Forwarded-Proto (http or https; a list must agree) and
// X-Forwarded-Ssl (on or off), which must agree with each other.
func xffScheme(h *fasthttp.RequestHeader) int {
	proto := schemeNone
	for _, line := range h.PeekAll(headerForwardedProto) {
		for item := range listItems(line) {
			if proto = sameScheme(proto, protoScheme(item)); proto == schemeBad {
				return schemeBad
			}
		}
	}
	ssl := schemeNone
	for _, line := range h.PeekAll("X-Forwarded-Ssl") {
		for item := range listItems(line) {
			s := schemeBad
			if asciiEqualFold(item, "on") {
				s = schemeHTTPS
			} else if asciiEqualFold(item, "off") {
				s = schemeHTTP
			}
			if ssl = sameScheme(ssl, s); ssl == schemeBad {
				return schemeBad
			}
		}
	}
	return sameScheme(proto, ssl)
}

// sameScheme merges two scheme readings: none gives way, a difference is bad.
func sameScheme(a, b int) int {
	switch {
	case a == schemeNone:
		return b
	case b == schemeNone || a == b:
		return a
	}
	return schemeBad
}

func protoScheme(v []byte) int {
	if asciiEqualFold(v, "https") {
		return schemeHTTPS
	}
	if asciiEqualFold(v, "http") {
		return schemeHTTP
	}
	return schemeBad
}

// listItems yields the non-empty, OWS-trimmed elements of a comma list.
func listItems(v []byte) func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(v) > 0 {
			var item []byte
			if i := bytes.IndexByte(v, ','); i >= 0 {
				item, v = v[:i], v[i+1:]
			} else {
				item, v = v, nil
			}
			if item = trimOWS(item); len(item) > 0 && !yield(item) {
				return
			}
		}
	}
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// parseNode reads one hop's address: an IPv4 or IPv6 address, optionally
// with a port ("192.0.2.1:8080", "[2001:db8::1]:8080", as Azure's and RFC
// 7239's nodes carry), IPv6 optionally bracketed. Zones are refused (a zone
// names an interface of the sender, not a client). An IPv4-mapped IPv6
// address is the IPv4 address.
func parseNode(b []byte) (netip.Addr, bool) {
	if len(b) == 0 || len(b) > 64 || bytes.IndexByte(b, '%') >= 0 {
		return netip.Addr{}, false
	}
	host := b
	if b[0] == '[' {
		end := bytes.IndexByte(b, ']')
		if end < 0 || (end+1 < len(b) && (b[end+1] != ':' || !validPort(b[end+2:]))) {
			return netip.Addr{}, false
		}
		host = b[1:end]
		if bytes.IndexByte(host, ':') < 0 {
			return netip.Addr{}, false // brackets are for IPv6 only
		}
	} else if i := bytes.IndexByte(b, ':'); i >= 0 && bytes.IndexByte(b[i+1:], ':') < 0 {
		// One colon: IPv4 and a port.
		if !validPort(b[i+1:]) {
			return netip.Addr{}, false
		}
		host = b[:i]
		if bytes.IndexByte(host, '.') < 0 {
			return netip.Addr{}, false
		}
	}
	// ParseAddr does not keep its argument (zones, the only part it would
	// keep, are refused above), so it may look at the header's bytes
	// without a copy: the hot path allocates nothing.
	a, err := netip.ParseAddr(unsafe.String(unsafe.SliceData(host), len(host)))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// validPort accepts a decimal port or RFC 7239's obfuscated port ("_abc").
func validPort(p []byte) bool {
	if len(p) == 0 || len(p) > 16 {
		return false
	}
	if p[0] == '_' {
		for _, c := range p[1:] {
			if !isAlnum(c) && c != '.' && c != '_' && c != '-' {
				return false
			}
		}
		return len(p) > 1
	}
	if len(p) > 5 {
		return false
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// maxForwardedHops bounds the Forwarded elements the walk looks at: the
// rightmost ones (written by the trusted hops); a client can send any number
// on the left, so a longer header keeps only its last maxForwardedHops.
const maxForwardedHops = 32

// forwardedElem is one element of a Forwarded header (RFC 7239 §4).
type forwardedElem struct {
	node  []byte // the for= value, unquoted; nil when absent
	proto []byte // the proto= value, unquoted
	bad   bool   // proto given twice with different values
	addr  netip.Addr
	ok    bool // node parsed as addr (parsed once, for the chain and the walk)
}

// forwardedParse holds the last maxForwardedHops elements of a Forwarded
// header, in a ring, so a request parses it without allocating.
type forwardedParse struct {
	ring [maxForwardedHops]forwardedElem
	n    int // elements seen
}

// add parses one Forwarded field line (RFC 7239 §4: a comma list of
// elements, each pairs token=value separated by ";", value a token or a
// quoted string), appending each element's address to xff. It reports false
// on a syntax error or a for= given twice in one element.
func (p *forwardedParse) add(line, xff []byte) ([]byte, bool) {
	i := 0
	for {
		var e forwardedElem
		hasFor := false
		// One element: [pair] *( ";" [pair] ), with OWS tolerated around
		// the separators.
		for {
			i = skipOWS(line, i)
			if i < len(line) && line[i] != ';' && line[i] != ',' {
				start := i
				for i < len(line) && isTokenChar(line[i]) {
					i++
				}
				name := line[start:i]
				if len(name) == 0 || i >= len(line) || line[i] != '=' {
					return xff, false
				}
				i++
				var val []byte
				if i < len(line) && line[i] == '"' {
					end := i + 1
					for end < len(line) && line[end] != '"' {
						if line[end] == '\\' {
							end++ // a quoted pair; the value keeps the backslash and so names no address
						}
						end++
					}
					if end >= len(line) {
						return xff, false
					}
					val, i = line[i+1:end], end+1
				} else {
					start := i
					for i < len(line) && isTokenChar(line[i]) {
						i++
					}
					val = line[start:i]
				}
				switch {
				case asciiEqualFold(name, "for"):
					if hasFor {
						return xff, false // RFC 7239 §4: at most once per element
					}
					hasFor, e.node = true, val
				case asciiEqualFold(name, "proto"):
					if e.proto != nil && !bytes.EqualFold(e.proto, val) {
						e.bad = true
					}
					e.proto = val
				}
				i = skipOWS(line, i)
			}
			if i >= len(line) || line[i] == ',' {
				break
			}
			if line[i] != ';' {
				return xff, false
			}
			i++
		}
		if hasFor || e.proto != nil {
			e.addr, e.ok = parseNode(e.node)
			p.ring[p.n%maxForwardedHops] = e
			p.n++
			if len(xff) > 0 {
				xff = append(xff, ", "...)
			}
			if e.ok {
				xff = e.addr.AppendTo(xff)
			} else {
				xff = append(xff, "unknown"...)
			}
		}
		if i >= len(line) {
			return xff, true
		}
		i++ // the comma
	}
}

// resolve walks the elements from the right (see walkXFF); the scheme is the
// proto of the element that named the client (the hop the client used), or
// of the rightmost element when none did.
func (p *forwardedParse) resolve(f *forwardTrust) (client netip.Addr, scheme int, invalid bool) {
	if p.n == 0 {
		return client, schemeNone, false
	}
	last := p.n - 1
	chosen := &p.ring[last%maxForwardedHops]
	for k := last; k >= 0 && k > last-maxForwardedHops; k-- {
		e := &p.ring[k%maxForwardedHops]
		a, ok := e.addr, e.ok
		if !ok {
			invalid = e.node != nil && !asciiEqualFold(e.node, "unknown") && e.node[0] != '_'
			break
		}
		client, chosen = a, e
		if !f.recursive || !f.trusts(a) {
			break
		}
	}
	scheme = schemeNone
	if chosen.bad {
		scheme = schemeBad
	} else if chosen.proto != nil {
		scheme = protoScheme(chosen.proto)
	}
	return client, scheme, invalid
}

func skipOWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i
}

// isTokenChar reports RFC 9110 tchar, plus ':', '[', ']' and '.', which
// unquoted node values ("192.0.2.1") and careless senders use.
func isTokenChar(c byte) bool {
	if isAlnum(c) {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~', ':', '[', ']':
		return true
	}
	return false
}

// clientIP is the address the edge uses for the request's client (rate
// limits, hash balancing, the access log): the one a trusted forwarding
// header named, else the peer's (after the PROXY protocol).
func (ex *exchange) clientIP() net.IP {
	if ex.clientLen > 0 {
		return ex.clientBuf[:ex.clientLen]
	}
	return ex.ctx.RemoteIP()
}

// setClient stores a resolved client address in ex's own buffer (IPv4 in
// four bytes, as the listeners give it), so no request allocates for it.
func (ex *exchange) setClient(a netip.Addr) {
	if a.Is4() {
		b := a.As4()
		ex.clientLen = copy(ex.clientBuf[:], b[:])
		return
	}
	b := a.As16()
	ex.clientLen = copy(ex.clientBuf[:], b[:])
}

// resolveClient reads a trusted peer's forwarding headers into ex (the
// client, the X-Forwarded-For chain to send on) and returns their scheme.
func (s *Server) resolveClient(ctx *fasthttp.RequestCtx, ex *exchange) int {
	f := ex.rt.fwd
	peer, ok := netip.AddrFromSlice(ctx.RemoteIP())
	if !ok || !f.trusts(peer.Unmap()) {
		return schemeNone
	}
	var v forwardedView
	v, ex.fwd = f.resolveForwarded(&ctx.Request.Header, ex.fwd[:0])
	if v.client.IsValid() {
		ex.setClient(v.client)
	}
	if v.invalid {
		s.metrics.fwdInvalidAddr.Inc()
	}
	if v.scheme == schemeBad {
		s.metrics.fwdBadScheme.Inc()
	}
	return v.scheme
}
