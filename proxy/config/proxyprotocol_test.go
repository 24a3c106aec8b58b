package config

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestProxyProtocolConfig(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // problems; none: valid
	}{
		{"off by default", "", nil},
		{"enabled with networks", "proxy_protocol: {enabled: true, trusted: ['10.0.0.0/16', '::1', '192.168.1.7'], timeout: 2s}", nil},
		{"enabled without trusted", "proxy_protocol: {enabled: true}", []string{"proxy_protocol.enabled needs proxy_protocol.trusted"}},
		{"bad network", "proxy_protocol: {enabled: true, trusted: ['10.0.0.0/33', 'lb.internal']}", []string{`proxy_protocol.trusted[0] "10.0.0.0/33"`, `proxy_protocol.trusted[1] "lb.internal"`}},
		{"bad network while off", "proxy_protocol: {trusted: ['x']}", []string{`proxy_protocol.trusted[0] "x"`}},
		{"no timeout", "proxy_protocol: {timeout: 0s}", []string{"proxy_protocol.timeout 0s must be 1ms..1m"}},
		{"timeout too long", "proxy_protocol: {timeout: 2m}", []string{"proxy_protocol.timeout 2m0s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte("upstreams: [{url: 'http://a:1'}]\n" + tt.yaml))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, config %+v", err, c.ProxyProtocol)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
		})
	}
	d := Default().ProxyProtocol
	if d.Enabled || d.Timeout != 5*time.Second || len(d.Trusted) != 0 {
		t.Fatalf("defaults %+v", d)
	}
	got := ProxyProtocol{Trusted: []string{"10.1.2.3/16", "::1", "192.168.1.7", "junk"}}.Prefixes()
	want := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("192.168.1.7/32")}
	if !slices.Equal(got, want) {
		t.Fatalf("Prefixes %v, want %v", got, want)
	}
}
