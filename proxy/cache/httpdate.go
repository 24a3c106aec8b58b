package cache

import "time"

// parseHTTPDate parses an HTTP-date (RFC 9110 section 5.6.7) exactly as the
// grammar spells it: IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), which
// senders must use, and the two obsolete forms recipients must still accept,
// rfc850-date ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime-date ("Sun Nov
// 6 08:49:37 1994"). Names are case-sensitive, every space is one SP and
// every number has its fixed width: Go's time.Parse, which fasthttp's
// ParseHTTPDate uses, accepts runs of spaces and one-digit hours, and RFC
// 9111 section 5.3 makes an Expires that is not a valid HTTP-date mean
// "already expired", so such values must be refused here. The weekday is
// checked for being a day name, not for matching the date (no recipient
// rule asks for that). It returns unix seconds.
func parseHTTPDate(v []byte) (int64, bool) {
	switch {
	case len(v) == 29 && v[3] == ',':
		return parseIMFFixdate(v)
	case len(v) == 24 && v[3] == ' ':
		return parseAsctime(v)
	default:
		return parseRFC850(v)
	}
}

var (
	dayNames  = [...]string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}
	longDays  = [...]string{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}
	monthName = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
)

func oneOf(b []byte, names []string) bool {
	for _, n := range names {
		if string(b) == n {
			return true
		}
	}
	return false
}

func month(b []byte) (time.Month, bool) {
	for i, n := range monthName {
		if string(b) == n {
			return time.Month(i + 1), true
		}
	}
	return 0, false
}

// digits reads a fixed-width decimal number.
func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, len(b) > 0
}

// clock reads "HH:MM:SS" (time-of-day, RFC 9110 section 5.6.7).
func clockOfDay(b []byte) (h, m, s int, ok bool) {
	if len(b) != 8 || b[2] != ':' || b[5] != ':' {
		return 0, 0, 0, false
	}
	h, ok1 := digits(b[0:2])
	m, ok2 := digits(b[3:5])
	s, ok3 := digits(b[6:8])
	// second may be 60 for a leap second.
	return h, m, s, ok1 && ok2 && ok3 && h <= 23 && m <= 59 && s <= 60
}

// mkDate builds the time and checks that the day exists in that month.
func mkDate(y int, mo time.Month, d, h, mi, s int) (int64, bool) {
	if d < 1 || d > 31 {
		return 0, false
	}
	t := time.Date(y, mo, d, h, mi, 0, 0, time.UTC)
	if t.Day() != d {
		return 0, false
	}
	return t.Unix() + int64(s), true
}

// parseIMFFixdate: day-name "," SP 2DIGIT SP month SP 4DIGIT SP time SP "GMT".
func parseIMFFixdate(v []byte) (int64, bool) {
	if !oneOf(v[0:3], dayNames[:]) || v[4] != ' ' || v[7] != ' ' || v[11] != ' ' || v[16] != ' ' || v[25] != ' ' || string(v[26:]) != "GMT" {
		return 0, false
	}
	d, ok1 := digits(v[5:7])
	mo, ok2 := month(v[8:11])
	y, ok3 := digits(v[12:16])
	h, mi, s, ok4 := clockOfDay(v[17:25])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return 0, false
	}
	return mkDate(y, mo, d, h, mi, s)
}

// parseRFC850: day-name-l "," SP 2DIGIT "-" month "-" 2DIGIT SP time SP "GMT".
// A two-digit year more than 50 years in the future is taken as the past
// century's (RFC 9110 section 5.6.7).
func parseRFC850(v []byte) (int64, bool) {
	comma := -1
	for i := 0; i < len(v) && i < 10; i++ {
		if v[i] == ',' {
			comma = i
			break
		}
	}
	if comma < 0 || !oneOf(v[:comma], longDays[:]) {
		return 0, false
	}
	r := v[comma+1:]
	if len(r) != 23 || r[0] != ' ' || r[3] != '-' || r[7] != '-' || r[10] != ' ' || r[19] != ' ' || string(r[20:]) != "GMT" {
		return 0, false
	}
	d, ok1 := digits(r[1:3])
	mo, ok2 := month(r[4:7])
	yy, ok3 := digits(r[8:10])
	h, mi, s, ok4 := clockOfDay(r[11:19])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return 0, false
	}
	now := time.Now().UTC().Year()
	y := now - now%100 + yy
	if y > now+50 {
		y -= 100
	}
	return mkDate(y, mo, d, h, mi, s)
}

// parseAsctime: day-name SP month SP ( 2DIGIT / SP 1DIGIT ) SP time SP 4DIGIT.
func parseAsctime(v []byte) (int64, bool) {
	if !oneOf(v[0:3], dayNames[:]) || v[7] != ' ' || v[10] != ' ' || v[19] != ' ' {
		return 0, false
	}
	mo, ok1 := month(v[4:7])
	dd := v[8:10]
	if dd[0] == ' ' {
		dd = dd[1:]
	}
	d, ok2 := digits(dd)
	h, mi, s, ok3 := clockOfDay(v[11:19])
	y, ok4 := digits(v[20:24])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return 0, false
	}
	return mkDate(y, mo, d, h, mi, s)
}
