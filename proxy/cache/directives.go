package cache

// directives holds the Cache-Control (or CDN-Cache-Control) directives this
// cache acts on. Delta-seconds fields are -1 when absent.
type directives struct {
	maxAge, sMaxAge, swr, sie, maxStale, minFresh int64

	noStore, noCache, private, public bool
	mustRevalidate, proxyRevalidate   bool
	onlyIfCached, maxStaleAny         bool
	// present is true when at least one directive was parsed.
	present bool
}

// maxDelta is the value RFC 9111 section 1.2.2 tells caches to use for a
// delta-seconds they cannot represent (2^31).
const maxDelta = 1 << 31

func (d *directives) reset() {
	*d = directives{maxAge: -1, sMaxAge: -1, swr: -1, sie: -1, maxStale: -1, minFresh: -1}
}

// parseDirectives parses one Cache-Control field value (RFC 9111 section
// 5.2) into d, which the caller has reset. Directive names are
// case-insensitive; unknown directives are ignored (section 5.2.3). When a
// directive repeats, the first occurrence wins (section 4.2.1). An invalid
// delta-seconds value makes max-age and s-maxage 0, so the response is
// treated as stale rather than fresh (section 4.2.1), and the stale-*
// extensions 0, so it is never served stale. Qualified no-cache and private
// ("no-cache=field") are treated as unqualified, which sections 5.2.2.4 and
// 5.2.2.7 allow. It never fails: a malformed field yields what could be
// read.
func parseDirectives(v []byte, d *directives) {
	i := 0
	for i < len(v) {
		for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == ',') {
			i++
		}
		start := i
		for i < len(v) && v[i] != '=' && v[i] != ',' && v[i] != ' ' && v[i] != '\t' {
			i++
		}
		name := v[start:i]
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
		var arg []byte
		hasArg := false
		if i < len(v) && v[i] == '=' {
			hasArg = true
			i++
			for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
				i++
			}
			if i < len(v) && v[i] == '"' {
				i++
				as := i
				for i < len(v) && v[i] != '"' {
					if v[i] == '\\' && i+1 < len(v) {
						i++
					}
					i++
				}
				arg = v[as:i]
				if i < len(v) {
					i++
				}
			} else {
				as := i
				for i < len(v) && v[i] != ',' && v[i] != ' ' && v[i] != '\t' {
					i++
				}
				arg = v[as:i]
			}
		}
		// Skip anything up to the next comma (garbage after a value).
		for i < len(v) && v[i] != ',' {
			i++
		}
		if len(name) == 0 {
			continue
		}
		d.present = true
		switch {
		case eqFold(name, "max-age"):
			setDelta(&d.maxAge, arg, hasArg, 0)
		case eqFold(name, "s-maxage"):
			setDelta(&d.sMaxAge, arg, hasArg, 0)
		case eqFold(name, "stale-while-revalidate"):
			setDelta(&d.swr, arg, hasArg, 0)
		case eqFold(name, "stale-if-error"):
			setDelta(&d.sie, arg, hasArg, 0)
		case eqFold(name, "min-fresh"):
			setDelta(&d.minFresh, arg, hasArg, 0)
		case eqFold(name, "max-stale"):
			if !hasArg {
				d.maxStaleAny = true
			} else {
				setDelta(&d.maxStale, arg, hasArg, 0)
			}
		case eqFold(name, "no-store"):
			d.noStore = true
		case eqFold(name, "no-cache"):
			d.noCache = true
		case eqFold(name, "private"):
			d.private = true
		case eqFold(name, "public"):
			d.public = true
		case eqFold(name, "must-revalidate"):
			d.mustRevalidate = true
		case eqFold(name, "proxy-revalidate"):
			d.proxyRevalidate = true
		case eqFold(name, "only-if-cached"):
			d.onlyIfCached = true
		}
	}
}

// setDelta stores a delta-seconds argument unless the directive was seen
// before; a missing or invalid argument stores invalid.
func setDelta(dst *int64, arg []byte, hasArg bool, invalid int64) {
	if *dst >= 0 {
		return
	}
	if !hasArg || len(arg) == 0 {
		*dst = invalid
		return
	}
	var n int64
	for _, c := range arg {
		if c < '0' || c > '9' {
			*dst = invalid
			return
		}
		if n < maxDelta {
			n = n*10 + int64(c-'0')
		}
	}
	if n > maxDelta {
		n = maxDelta
	}
	*dst = n
}

// eqFold compares b with a lower-case ASCII string, ignoring case.
func eqFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
