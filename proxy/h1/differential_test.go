package h1

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// genRequest builds a request from pieces that parsers are known to treat
// differently (RFC 9112 §6 framing fields with odd spellings, chunk
// extensions, trailers, leading zeros, empty list elements), then, with some
// probability, mutates one byte into one of the delimiters.
func genRequest(r *rand.Rand) string {
	var b strings.Builder
	pick := func(s ...string) string { return s[r.IntN(len(s))] }
	for range r.IntN(3) / 2 {
		b.WriteString("\r\n")
	}
	method := pick("GET", "POST", "PUT", "BREW", "M-SEARCH", "OPTIONS", "DELETE")
	fmt.Fprintf(&b, "%s %s %s\r\n", method, pick("/", "/a?b=c", "*", "http://h/x", "/%41/b", "/a#f"), pick("HTTP/1.1", "HTTP/1.1", "HTTP/1.0"))
	var fields []string
	if r.IntN(8) > 0 {
		fields = append(fields, pick("Host: h", "Host:  h:80 ", "host: [::1]", "HOST:"))
	}
	body := strings.Repeat("b", r.IntN(20))
	framing := r.IntN(3)
	switch framing {
	case 1:
		fields = append(fields, fmt.Sprintf("%s:%s%s%d%s", pick("Content-Length", "content-length", "CONTENT-LENGTH"), pick("", " ", "\t"), strings.Repeat("0", r.IntN(3)), len(body), pick("", " ", "\t ")))
	case 2:
		fields = append(fields, pick("Transfer-Encoding", "transfer-encoding")+": "+pick("chunked", "Chunked", "chunked ", ", chunked", "chunked,", "gzip, chunked", "chunked, chunked",
			"identity, chunked", "Identity,chunked", "identity , identity,\tchunked ", "chunked, identity", "identity;q=1, chunked"))
		if r.IntN(4) == 0 {
			// identity on a line of its own (dropped), before or after.
			fields = append(fields, pick("Transfer-Encoding: identity", "transfer-encoding:identity , IDENTITY", "Transfer-Encoding: identity,"))
		}
	}
	for range r.IntN(3) {
		fields = append(fields, pick("X-A: v", "Cookie: a=b; c=d", "Empty:", "Tab:\tv\t", "Accept: */*", "Content-Type: text/plain"))
	}
	r.Shuffle(len(fields), func(i, j int) { fields[i], fields[j] = fields[j], fields[i] })
	for _, f := range fields {
		b.WriteString(f + "\r\n")
	}
	b.WriteString("\r\n")
	switch framing {
	case 1:
		b.WriteString(body)
	case 2:
		for rest := body; rest != ""; {
			k := min(len(rest), 1+r.IntN(8))
			size := fmt.Sprintf(pick("%x", "%X", "0%x"), k)
			fmt.Fprintf(&b, "%s%s\r\n%s\r\n", size, pick("", "", ";a", ";a=b", `;a="b c"`, ";a;b=c"), rest[:k])
			rest = rest[k:]
		}
		b.WriteString(pick("0", "000") + "\r\n" + pick("", "", "X-T: 1\r\n", "Vary: *\r\n") + "\r\n")
	}
	s := b.String()
	if r.IntN(3) == 0 {
		i := r.IntN(len(s))
		c := pick(" ", "\t", "\r", "\n", ":", ";", "0", "a", "\x00", "\x80", ",", "")
		if r.IntN(2) == 0 {
			s = s[:i] + c + s[i:]
		} else {
			s = s[:i] + c + s[i+1:]
		}
	}
	return s
}

// TestFasthttpAgreesOnGenerated frames generated requests (valid ones and
// one-byte mutations) and checks every message the framer accepts against
// fasthttp's parser: fasthttp either refuses it or ends it at the same byte.
func TestFasthttpAgreesOnGenerated(t *testing.T) {
	r := rand.New(rand.NewPCG(9112, 14))
	var f RequestFramer
	accepted, rejected, parsed, identity := 0, 0, 0, 0
	for range 20000 {
		in := genRequest(r)
		res := frameAll(&f, in, nil)
		if res.err != nil {
			rejected++
		}
		for i, m := range res.out {
			accepted++
			if checkFasthttpAgrees(t, m, res.framing[i]) {
				parsed++
				if teIdentity(res.msgs[i]) {
					identity++
				}
			} else if teIdentity(res.msgs[i]) {
				t.Fatalf("fasthttp refuses %q, passed on for %q (identity left out)", m, res.msgs[i])
			}
			if teIdentity(m) {
				t.Fatalf("identity passed on in %q", m)
			}
		}
	}
	t.Logf("%d messages accepted (%d of them parsed by fasthttp too, %d with identity left out), %d inputs rejected", accepted, parsed, identity, rejected)
	if parsed < 5000 || rejected < 2000 || identity < 50 {
		t.Fatalf("generator skewed: %d accepted, %d parsed by fasthttp (%d with identity), %d rejected", accepted, parsed, identity, rejected)
	}
}

// teIdentity reports whether a message's header section has a
// Transfer-Encoding line naming identity.
func teIdentity(msg string) bool {
	head, _, _ := strings.Cut(strings.ToLower(msg), "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n") {
		if name, v, ok := strings.Cut(line, ":"); ok && name == "transfer-encoding" && strings.Contains(v, "identity") {
			return true
		}
	}
	return false
}
