package config

import (
	"fmt"
	"net/netip"
	"time"
)

// ProxyProtocol makes the public listeners (listen, and tls.listen before
// the ClientHello) take the PROXY protocol (HAProxy's spec, v1 and v2) from
// an L4 load balancer in front of them (AWS NLB with proxy protocol v2,
// HAProxy send-proxy, nginx stream proxy_protocol on), as nginx's listen ...
// proxy_protocol and HAProxy's accept-proxy do: every connection must start
// with a header, and its client address is the one the edge uses (rate
// limits, X-Forwarded-For, the access log, hash balancing). Fixed at start.
type ProxyProtocol struct {
	// Enabled requires a PROXY header at the start of every connection;
	// a missing, malformed or late one closes the connection unanswered. The
	// spec forbids guessing whether a header is there, so a listener takes
	// either PROXY connections only or none.
	Enabled bool `yaml:"enabled"`
	// Trusted lists the balancers' networks (CIDR, or one address): a
	// connection from anywhere else is closed, since its header could claim
	// any address (nginx's set_real_ip_from). Required when Enabled: there is
	// no default, because balancers rarely sit on loopback, and a guessed one
	// would either refuse every connection or trust too much.
	Trusted []string `yaml:"trusted"`
	// Timeout bounds receiving the header from the connection's start.
	Timeout time.Duration `yaml:"timeout"`
}

func proxyProtocolDefaults() ProxyProtocol {
	return ProxyProtocol{Timeout: 5 * time.Second}
}

// Prefixes returns Trusted as networks (a single address as /32 or /128);
// entries that do not parse are left out (Validate reports them).
func (p ProxyProtocol) Prefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(p.Trusted))
	for _, s := range p.Trusted {
		if n, ok := parsePrefix(s); ok {
			out = append(out, n)
		}
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, bool) {
	if n, err := netip.ParsePrefix(s); err == nil {
		return n.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

func (c Config) proxyProtocolProblems() []string {
	var p []string
	pp := c.ProxyProtocol
	for i, s := range pp.Trusted {
		if _, ok := parsePrefix(s); !ok {
			p = append(p, fmt.Sprintf("proxy_protocol.trusted[%d] %q is not a CIDR or an IP address", i, s))
		}
	}
	if pp.Enabled && len(pp.Trusted) == 0 {
		p = append(p, "proxy_protocol.enabled needs proxy_protocol.trusted (the load balancers' networks, e.g. 10.0.0.0/16)")
	}
	if pp.Timeout < time.Millisecond || pp.Timeout > time.Minute {
		p = append(p, fmt.Sprintf("proxy_protocol.timeout %v must be 1ms..1m", pp.Timeout))
	}
	return p
}
