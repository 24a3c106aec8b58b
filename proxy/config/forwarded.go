package config

import (
	"fmt"
	"net/netip"
)

// Forwarding header names Forwarded.Header takes.
const (
	ForwardedXFF     = "x-forwarded-for" // X-Forwarded-For, with X-Forwarded-Proto and X-Forwarded-Ssl
	ForwardedRFC7239 = "forwarded"       // Forwarded (RFC 7239): for= and proto=
)

// Forwarded lets the edge sit behind an L7 load balancer or a CDN, which
// passes the client's address and scheme in a header (nginx's
// set_real_ip_from, real_ip_header and real_ip_recursive; gunicorn's
// forwarded_allow_ips). Only requests whose direct peer (after the PROXY
// protocol, when on) is in Trusted are read: a header from anyone else could
// claim any address, so by default (Trusted empty) nothing is trusted and the
// edge keeps writing X-Forwarded-For and X-Forwarded-Proto itself.
type Forwarded struct {
	// Trusted lists the balancers' networks (CIDR, or one address).
	Trusted []string `yaml:"trusted"`
	// Header is x-forwarded-for (X-Forwarded-For, the scheme from
	// X-Forwarded-Proto and X-Forwarded-Ssl) or forwarded (RFC 7239's
	// Forwarded: for= and proto=).
	Header string `yaml:"header"`
	// Recursive takes as the client the rightmost address that is not in
	// Trusted (a chain of trusted proxies, a CDN in front of a balancer);
	// off, the rightmost address, whatever it is (nginx's real_ip_recursive,
	// off by default there too).
	Recursive bool `yaml:"recursive"`
}

func forwardedDefaults() Forwarded {
	return Forwarded{Header: ForwardedXFF}
}

// Prefixes returns Trusted as networks (a single address as /32 or /128);
// entries that do not parse are left out (Validate reports them).
func (f Forwarded) Prefixes() []netip.Prefix {
	return ProxyProtocol{Trusted: f.Trusted}.Prefixes()
}

func (c Config) forwardedProblems() []string {
	var p []string
	f := c.Forwarded
	for i, s := range f.Trusted {
		if _, ok := parsePrefix(s); !ok {
			p = append(p, fmt.Sprintf("forwarded.trusted[%d] %q is not a CIDR or an IP address", i, s))
		}
	}
	if f.Header != ForwardedXFF && f.Header != ForwardedRFC7239 {
		p = append(p, fmt.Sprintf("forwarded.header %q must be %s or %s", f.Header, ForwardedXFF, ForwardedRFC7239))
	}
	return p
}
