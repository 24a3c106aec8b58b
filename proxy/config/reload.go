package config

import (
	"reflect"
	"sort"
	"strings"
	"time"
)

// reloadable are the keys a reload (SIGHUP) applies in full: the balancing
// set-up and everything the per-request runtime reads. A section named here
// covers its keys.
var reloadable = map[string]bool{
	"upstreams":                      true,
	"balancer":                       true,
	"health":                         true,
	"retries":                        true,
	"rate_limits":                    true,
	"forwarded":                      true,
	"access_log.sample":              true,
	"timeouts.request":               true,
	"timeouts.shutdown":              true,
	"timeouts.drain":                 true,
	"limits.max_uri_bytes":           true,
	"limits.upstream_pipeline_depth": true,
	"tls.certificates":               true,
	"jwt.disabled":                   true,
	"jwt.cookie_name":                true,
}

// RestartOnly lists, as dotted YAML keys in order, the settings that differ
// between the running configuration old and a reloaded next but that a
// reload does not apply: listeners, the I/O core, TLS and HTTP/2 set-up,
// the token verifier, the cache, compression, the PROXY protocol, the
// listener's parsing limits and timeouts, and origin connection settings
// (which only origins added by the reload get). Raising
// limits.max_body_bytes is listed too: a reload can tighten it, not raise it
// past the listener's. Operators see the list in the reload's log line
// rather than finding out from behaviour that a change did not take.
//
// Keys are found by reflection over Config, so a key added later is listed
// (restart-only) until it is named in reloadable.
func RestartOnly(old, next Config) []string {
	var out []string
	diffKeys(reflect.ValueOf(old), reflect.ValueOf(next), "", &out)
	if next.Limits.MaxBodyBytes > old.Limits.MaxBodyBytes {
		out = append(out, "limits.max_body_bytes")
	}
	sort.Strings(out)
	return out
}

var durationType = reflect.TypeOf(time.Duration(0))

func diffKeys(a, b reflect.Value, prefix string, out *[]string) {
	t := a.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		if reloadable[key] || key == "limits.max_body_bytes" {
			continue
		}
		av, bv := a.Field(i), b.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type != durationType {
			diffKeys(av, bv, key, out)
			continue
		}
		if !reflect.DeepEqual(av.Interface(), bv.Interface()) {
			*out = append(*out, key)
		}
	}
}
