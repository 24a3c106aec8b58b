package config

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestForwardedConfig(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // problems; none: valid
	}{
		{"trust nothing by default", "", nil},
		{"x-forwarded-for", "forwarded: {trusted: ['10.0.0.0/8', '::1'], header: x-forwarded-for, recursive: true}", nil},
		{"rfc 7239", "forwarded: {trusted: ['192.168.1.7'], header: forwarded}", nil},
		{"bad network", "forwarded: {trusted: ['10.0.0.0/33', 'lb.internal']}", []string{`forwarded.trusted[0] "10.0.0.0/33"`, `forwarded.trusted[1] "lb.internal"`}},
		{"unknown header", "forwarded: {header: x-real-ip}", []string{`forwarded.header "x-real-ip" must be x-forwarded-for or forwarded`}},
		{"header must be lower case", "forwarded: {header: X-Forwarded-For}", []string{`forwarded.header "X-Forwarded-For"`}},
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
				t.Fatalf("err = %v, config %+v", err, c.Forwarded)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
		})
	}
	d := Default().Forwarded
	if len(d.Trusted) != 0 || d.Header != ForwardedXFF || d.Recursive {
		t.Fatalf("defaults %+v", d)
	}
	got := Forwarded{Trusted: []string{"10.1.2.3/16", "::1", "junk"}}.Prefixes()
	want := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("::1/128")}
	if !slices.Equal(got, want) {
		t.Fatalf("Prefixes %v, want %v", got, want)
	}
}
