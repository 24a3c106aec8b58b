package cache

// directives holds the Cache-Control (or CDN-Cache-Control) directives this
// cache acts on. Delta-seconds fields are -1 when absent.
type directives struct {
	maxAge, sMaxAge, swr, sie, maxStale, minFresh int64

	noStore, noCache, private, public bool
	mustRevalidate, proxyRevalidate   bool
	onlyIfCached, maxStaleAny         bool
	// mustUnderstand (RFC 9111 section 5.2.2.3): store only when this cache
	// understands the status code, and then ignore no-store.
	mustUnderstand bool
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
		case eqFold(name, "must-understand"):
			d.mustUnderstand = true
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

// parseTargetedDirectives parses a CDN-Cache-Control value (all its field
// lines joined with ", ") into d, which the caller has reset. RFC 9213
// section 2.1 defines the field as a Structured Field Dictionary (RFC 8941
// section 3.2) whose delta-seconds arguments are Integers; it reports false
// when the value is not a valid Dictionary, is empty, or gives a directive
// this cache reads a value of the wrong type (max-age="60", a negative or
// fractional lifetime), and the caller then ignores the field entirely, as
// section 2.1 asks, falling back to Cache-Control. A key that repeats takes
// its last value (RFC 8941 section 4.2.2). Unknown keys are ignored,
// whatever their value. Parameters are ignored. The boolean directives
// count when true; ?0 means absent; a String or Inner List argument (the
// qualified no-cache and private forms) counts as the unqualified directive.
func parseTargetedDirectives(v []byte, d *directives) bool {
	p := sfParser{b: v}
	p.sp()
	if p.done() {
		return false
	}
	var bad bool
	for !p.done() && !bad {
		key, ok := p.key()
		if !ok {
			return false
		}
		var it sfItem
		if p.peek() == '=' {
			p.i++
			if it, ok = p.itemOrList(); !ok {
				return false
			}
		} else {
			it = sfItem{kind: sfBool, n: 1}
			if !p.params() {
				return false
			}
		}
		bad = !applyTargeted(key, it, d)
		p.ows()
		if p.done() {
			break
		}
		if p.b[p.i] != ',' {
			return false
		}
		p.i++
		p.ows()
		if p.done() {
			return false // trailing comma
		}
	}
	return !bad
}

// applyTargeted sets one Dictionary member; false means a wrong value type.
func applyTargeted(key []byte, it sfItem, d *directives) bool {
	delta := func(dst *int64) bool {
		if it.kind != sfInt || it.n < 0 {
			return false
		}
		*dst = min(it.n, maxDelta)
		return true
	}
	flag := func(dst *bool) bool {
		switch it.kind {
		case sfBool:
			*dst = it.n == 1
		case sfString, sfList:
			*dst = true
		default:
			return false
		}
		return true
	}
	d.present = true
	switch string(key) {
	case "max-age":
		return delta(&d.maxAge)
	case "s-maxage":
		return delta(&d.sMaxAge)
	case "stale-while-revalidate":
		return delta(&d.swr)
	case "stale-if-error":
		return delta(&d.sie)
	case "no-store":
		return flag(&d.noStore)
	case "no-cache":
		return flag(&d.noCache)
	case "private":
		return flag(&d.private)
	case "public":
		return flag(&d.public)
	case "must-revalidate":
		return flag(&d.mustRevalidate)
	case "proxy-revalidate":
		return flag(&d.proxyRevalidate)
	case "must-understand":
		return flag(&d.mustUnderstand)
	}
	return true
}

// sfItem is the part of a parsed Structured Field member this cache uses.
type sfItem struct {
	kind byte
	n    int64 // Integer value; 1 or 0 for a Boolean
}

const (
	sfInt = iota + 1
	sfDecimal
	sfString
	sfToken
	sfBytes
	sfBool
	sfList
)

// sfParser walks a Structured Field value (RFC 8941 section 4.2).
type sfParser struct {
	b []byte
	i int
}

func (p *sfParser) done() bool { return p.i >= len(p.b) }
func (p *sfParser) peek() byte {
	if p.done() {
		return 0
	}
	return p.b[p.i]
}
func (p *sfParser) sp() {
	for !p.done() && p.b[p.i] == ' ' {
		p.i++
	}
}
func (p *sfParser) ows() {
	for !p.done() && (p.b[p.i] == ' ' || p.b[p.i] == '\t') {
		p.i++
	}
}

func isLcalpha(c byte) bool { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool   { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool   { return isLcalpha(c) || (c >= 'A' && c <= 'Z') }

// key: ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" ).
func (p *sfParser) key() ([]byte, bool) {
	start := p.i
	if c := p.peek(); !isLcalpha(c) && c != '*' {
		return nil, false
	}
	p.i++
	for !p.done() {
		c := p.b[p.i]
		if !isLcalpha(c) && !isDigit(c) && c != '_' && c != '-' && c != '.' && c != '*' {
			break
		}
		p.i++
	}
	return p.b[start:p.i], true
}

func (p *sfParser) itemOrList() (sfItem, bool) {
	if p.peek() != '(' {
		it, ok := p.bareItem()
		return it, ok && p.params()
	}
	p.i++
	for {
		p.sp()
		if p.done() {
			return sfItem{}, false
		}
		if p.b[p.i] == ')' {
			p.i++
			return sfItem{kind: sfList}, p.params()
		}
		if _, ok := p.bareItem(); !ok || !p.params() {
			return sfItem{}, false
		}
		if c := p.peek(); c != ' ' && c != ')' {
			return sfItem{}, false
		}
	}
}

// params: *( ";" *SP key [ "=" bare-item ] ).
func (p *sfParser) params() bool {
	for p.peek() == ';' {
		p.i++
		p.sp()
		if _, ok := p.key(); !ok {
			return false
		}
		if p.peek() == '=' {
			p.i++
			if _, ok := p.bareItem(); !ok {
				return false
			}
		}
	}
	return true
}

func (p *sfParser) bareItem() (sfItem, bool) {
	c := p.peek()
	switch {
	case c == '-' || isDigit(c):
		return p.number()
	case c == '"':
		p.i++
		for !p.done() {
			c := p.b[p.i]
			p.i++
			switch {
			case c == '\\':
				if p.done() || (p.b[p.i] != '"' && p.b[p.i] != '\\') {
					return sfItem{}, false
				}
				p.i++
			case c == '"':
				return sfItem{kind: sfString}, true
			case c < 0x20 || c > 0x7e:
				return sfItem{}, false
			}
		}
		return sfItem{}, false
	case c == '*' || isAlpha(c):
		p.i++
		for !p.done() && (isTchar(p.b[p.i]) || p.b[p.i] == ':' || p.b[p.i] == '/') {
			p.i++
		}
		return sfItem{kind: sfToken}, true
	case c == ':':
		p.i++
		for !p.done() {
			c := p.b[p.i]
			p.i++
			if c == ':' {
				return sfItem{kind: sfBytes}, true
			}
			if !isAlpha(c) && !isDigit(c) && c != '+' && c != '/' && c != '=' {
				return sfItem{}, false
			}
		}
		return sfItem{}, false
	case c == '?':
		p.i++
		switch p.peek() {
		case '0':
			p.i++
			return sfItem{kind: sfBool, n: 0}, true
		case '1':
			p.i++
			return sfItem{kind: sfBool, n: 1}, true
		}
	}
	return sfItem{}, false
}

// number: Integer (at most 15 digits) or Decimal (at most 12 integer and 3
// fraction digits), RFC 8941 section 4.2.4.
func (p *sfParser) number() (sfItem, bool) {
	neg := false
	if p.peek() == '-' {
		neg = true
		p.i++
	}
	if !isDigit(p.peek()) {
		return sfItem{}, false
	}
	var n int64
	intDigits, fracDigits, dot := 0, 0, false
	for !p.done() {
		c := p.b[p.i]
		switch {
		case isDigit(c):
			if dot {
				fracDigits++
			} else {
				intDigits++
				n = n*10 + int64(c-'0')
			}
		case c == '.' && !dot:
			if intDigits > 12 {
				return sfItem{}, false
			}
			dot = true
		default:
			goto end
		}
		p.i++
		if !dot && intDigits > 15 {
			return sfItem{}, false
		}
	}
end:
	if dot {
		if fracDigits == 0 || fracDigits > 3 {
			return sfItem{}, false
		}
		return sfItem{kind: sfDecimal}, true
	}
	if neg {
		n = -n
	}
	return sfItem{kind: sfInt, n: n}, true
}

// isTchar is RFC 9110's tchar.
func isTchar(c byte) bool {
	if isAlpha(c) || isDigit(c) {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
