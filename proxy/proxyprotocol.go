package proxy

import (
	"net"

	"github.com/VictoriaMetrics/metrics"
	"github.com/novashop/edge/proxy/config"
	"github.com/novashop/edge/proxy/proxyproto"
)

// The PROXY protocol on the public listeners (proxy_protocol.enabled): the
// client address of each connection is the one its header names, so
// everything that reads ctx.RemoteIP() (per-IP rate limits, X-Forwarded-For,
// the access log, hash-by-IP balancing, the cache's fetches) keys on the
// shopper, not on the load balancer. The goroutine core, h2c and the TLS
// listener (before the ClientHello) wrap their listener (proxyproto.Listener:
// the header is read on the connection's first Read, in its own goroutine);
// the event loops parse it from the first bytes they read
// (evloop.Config.ProxyProtocol).

// setupProxyProtocol builds the policy and its rejection counters.
func (s *Server) setupProxyProtocol(cfg config.ProxyProtocol) {
	if !cfg.Enabled {
		return
	}
	counters := map[proxyproto.Reason]*metrics.Counter{}
	for _, r := range []proxyproto.Reason{proxyproto.Untrusted, proxyproto.Invalid, proxyproto.Timeout} {
		counters[r] = s.metrics.set.NewCounter(`edge_proxy_protocol_rejected_total{reason="` + string(r) + `"}`)
	}
	s.pp = &proxyproto.Policy{
		Trusted: cfg.Prefixes(),
		Timeout: cfg.Timeout,
		// The map is read-only once built: safe from every connection.
		Rejected: func(r proxyproto.Reason) { counters[r].Inc() },
	}
}

// proxyListener wraps ln when the PROXY protocol is on.
func (s *Server) proxyListener(ln net.Listener) net.Listener {
	if s.pp == nil {
		return ln
	}
	return &proxyproto.Listener{Listener: ln, Policy: s.pp}
}
