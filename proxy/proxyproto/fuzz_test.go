package proxyproto

import (
	"errors"
	"testing"
)

// FuzzParse checks what the event loop relies on when it parses again after
// each read: a result never changes as more bytes arrive (an error stays an
// error, a header stays the same header of the same length), a header never
// passes the bounds, and "need more" is only said within them.
func FuzzParse(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::1 ::1 1 2\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(v2(1, 0x11, addr4, tlvs))
	f.Add(v2(1, 0x21, addr6))
	f.Add(v2(0, 0x00))
	f.Add(withCRC(v2(1, 0x11, addr4, tlvs)))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := Parse(b)
		if n < 0 || n > len(b) || n > MaxV2 {
			t.Fatalf("n %d of %d bytes", n, len(b))
		}
		if err != nil && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLong) {
			t.Fatalf("unexpected error %v", err)
		}
		if err == nil && n == 0 && len(b) >= MaxV2 {
			t.Fatalf("need more after %d bytes", len(b))
		}
		if n > 0 && h.Version == 1 && n > MaxV1 {
			t.Fatalf("v1 header of %d bytes", n)
		}
		more := append(append([]byte(nil), b...), 'x', '\r', '\n')
		h2, n2, err2 := Parse(more)
		switch {
		case err != nil && err2 == nil:
			t.Fatalf("error %v became %d, nil with more bytes", err, n2)
		case n > 0 && (n2 != n || h2 != h || err2 != nil):
			t.Fatalf("header %+v/%d became %+v/%d/%v with more bytes", h, n, h2, n2, err2)
		}
		if n > 0 {
			if h3, n3, err3 := Parse(b[:n]); h3 != h || n3 != n || err3 != nil {
				t.Fatalf("the header alone: %+v %d %v", h3, n3, err3)
			}
			if _, m, err := Parse(b[:n-1]); m != 0 || err != nil {
				t.Fatalf("one byte short: %d %v", m, err)
			}
		}
	})
}
