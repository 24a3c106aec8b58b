package proxyproto

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// v2 builds a version 2 header: command (0 LOCAL, 1 PROXY), family byte,
// then the address block and TLVs as given.
func v2(cmd, fam byte, body ...[]byte) []byte {
	b := append([]byte(nil), sigV2...)
	b = append(b, 0x20|cmd, fam, 0, 0)
	for _, p := range body {
		b = append(b, p...)
	}
	binary.BigEndian.PutUint16(b[14:16], uint16(len(b)-16))
	return b
}

// withCRC appends a PP2_TYPE_CRC32C record to header h (built by v2) and
// fills it with the checksum of the whole header, computed in one pass over
// a copy whose record value is zero, as the spec says a sender does.
func withCRC(h []byte) []byte {
	h = append(append([]byte(nil), h...), 0x03, 0x00, 0x04, 0, 0, 0, 0)
	binary.BigEndian.PutUint16(h[14:16], uint16(len(h)-16))
	binary.BigEndian.PutUint32(h[len(h)-4:], crc32.Checksum(h, crc32.MakeTable(crc32.Castagnoli)))
	return h
}

// flip returns a copy of b with bit 0 of b[i] flipped.
func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 1
	return c
}

var (
	addr4 = []byte{192, 168, 0, 1, 10, 0, 0, 1, 0x30, 0x39, 0x01, 0xbb} // 192.168.0.1:12345 -> 10.0.0.1:443
	addr6 = append(append(netip.MustParseAddr("2001:db8::1").AsSlice(), netip.MustParseAddr("2001:db8::2").AsSlice()...), 0xa6, 0x52, 0x00, 0x50)
	// tlvs: an ALPN TLV and an AWS VPC endpoint TLV.
	tlvs = []byte{0x01, 0x00, 0x02, 'h', '2', 0xea, 0x00, 0x05, 0x01, 'v', 'p', 'c', 'e'}
)

func TestParse(t *testing.T) {
	ap := netip.MustParseAddrPort
	tests := []struct {
		name    string
		in      string
		want    Header
		n       int // 0: incomplete
		wantErr error
	}{
		{"v1 TCP4", "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET", Header{Version: 1, Src: ap("192.168.0.1:56324"), Dst: ap("192.168.0.11:443")}, 47, nil},
		{"v1 TCP6", "PROXY TCP6 2001:db8::1 ::1 65535 0\r\n", Header{Version: 1, Src: ap("[2001:db8::1]:65535"), Dst: ap("[::1]:0")}, 36, nil},
		{"v1 UNKNOWN", "PROXY UNKNOWN\r\n", Header{Version: 1, Local: true}, 15, nil},
		{"v1 UNKNOWN with addresses", "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\nX", Header{Version: 1, Local: true}, 59, nil},
		{"v1 longest", "PROXY UNKNOWN " + strings.Repeat("x", MaxV1-16) + "\r\n", Header{Version: 1, Local: true}, MaxV1, nil},
		{"v1 incomplete", "PROXY TCP4 192.168.0.1 192.1", Header{}, 0, nil},
		{"v1 incomplete at CR", "PROXY TCP4 1.2.3.4 1.2.3.5 1 2\r", Header{}, 0, nil},
		{"v1 prefix only", "PRO", Header{}, 0, nil},
		{"v1 too long", "PROXY UNKNOWN " + strings.Repeat("x", MaxV1), Header{}, 0, ErrTooLong},
		{"v1 truncated by gunicorn", "PROXY TCP4 192.168.0.1 192.16...\r\n", Header{}, 0, ErrInvalid},
		{"v1 TCP4 with IPv6", "PROXY TCP4 ::1 ::1 1 2\r\n", Header{}, 0, ErrInvalid},
		{"v1 TCP6 with IPv4", "PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n", Header{}, 0, ErrInvalid},
		{"v1 port too big", "PROXY TCP4 1.2.3.4 1.2.3.5 65536 2\r\n", Header{}, 0, ErrInvalid},
		{"v1 port leading zero", "PROXY TCP4 1.2.3.4 1.2.3.5 01 2\r\n", Header{}, 0, ErrInvalid},
		{"v1 port sign", "PROXY TCP4 1.2.3.4 1.2.3.5 +1 2\r\n", Header{}, 0, ErrInvalid},
		{"v1 missing field", "PROXY TCP4 1.2.3.4 1.2.3.5 1\r\n", Header{}, 0, ErrInvalid},
		{"v1 extra field", "PROXY TCP4 1.2.3.4 1.2.3.5 1 2 3\r\n", Header{}, 0, ErrInvalid},
		{"v1 double space", "PROXY TCP4  1.2.3.4 1.2.3.5 1 2\r\n", Header{}, 0, ErrInvalid},
		{"v1 bare LF", "PROXY TCP4 1.2.3.4 1.2.3.5 1 2\n", Header{}, 0, ErrInvalid},
		{"v1 CR inside", "PROXY TCP4 1.2.3.4\r1.2.3.5 1 2", Header{}, 0, ErrInvalid},
		{"v1 zone", "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", Header{}, 0, ErrInvalid},
		{"v1 lower case", "proxy TCP4 1.2.3.4 1.2.3.5 1 2\r\n", Header{}, 0, ErrInvalid},
		{"v1 unknown protocol", "PROXY UDP4 1.2.3.4 1.2.3.5 1 2\r\n", Header{}, 0, ErrInvalid},
		{"HTTP request", "GET / HTTP/1.1\r\n\r\n", Header{}, 0, ErrInvalid},
		{"PROXY method", "PROXYX / HTTP/1.1\r\n", Header{}, 0, ErrInvalid},

		{"v2 PROXY TCP4", string(v2(1, 0x11, addr4)) + "GET", Header{Version: 2, Src: ap("192.168.0.1:12345"), Dst: ap("10.0.0.1:443")}, 28, nil},
		{"v2 PROXY TCP6 with TLVs", string(v2(1, 0x21, addr6, tlvs)), Header{Version: 2, Src: ap("[2001:db8::1]:42578"), Dst: ap("[2001:db8::2]:80")}, 16 + 36 + len(tlvs), nil},
		{"v2 LOCAL", string(v2(0, 0x00)), Header{Version: 2, Local: true}, 16, nil},
		{"v2 LOCAL with TCP4 and TLVs", string(v2(0, 0x11, addr4, tlvs)), Header{Version: 2, Local: true}, 16 + 12 + len(tlvs), nil},
		{"v2 PROXY UNSPEC", string(v2(1, 0x00)), Header{Version: 2, Local: true}, 16, nil},
		{"v2 PROXY UDP4", string(v2(1, 0x12, addr4)), Header{Version: 2, Local: true}, 28, nil},
		{"v2 PROXY UNIX", string(v2(1, 0x31, make([]byte, 216))), Header{Version: 2, Local: true}, 16 + 216, nil},
		{"v2 signature only", string(sigV2), Header{}, 0, nil},
		{"v2 incomplete addresses", string(v2(1, 0x11, addr4)[:20]), Header{}, 0, nil},
		{"v2 bad signature", "\r\n\r\n\x00\r\nQUIX\n", Header{}, 0, ErrInvalid},
		{"v2 version 1", string(append(append([]byte(nil), sigV2...), 0x11)), Header{}, 0, ErrInvalid},
		{"v2 command 2", string(append(append([]byte(nil), sigV2...), 0x22)), Header{}, 0, ErrInvalid},
		{"v2 family 0x41", string(append(append([]byte(nil), sigV2...), 0x21, 0x41)), Header{}, 0, ErrInvalid},
		{"v2 transport 3", string(append(append([]byte(nil), sigV2...), 0x21, 0x13)), Header{}, 0, ErrInvalid},
		{"v2 short TCP4 block", string(v2(1, 0x11, addr4[:8])), Header{}, 0, ErrInvalid},
		{"v2 short TCP6 block", string(v2(1, 0x21, addr4)), Header{}, 0, ErrInvalid},
		{"v2 broken TLV", string(v2(1, 0x11, addr4, tlvs[:4])), Header{}, 0, ErrInvalid},
		{"v2 TLV stub", string(v2(1, 0x11, addr4, []byte{1, 0})), Header{}, 0, ErrInvalid},
		{"v2 TCP4 with a good CRC32c", string(withCRC(v2(1, 0x11, addr4, tlvs))), Header{Version: 2, Src: ap("192.168.0.1:12345"), Dst: ap("10.0.0.1:443")}, 16 + 12 + len(tlvs) + 7, nil},
		{"v2 TCP6 with a good CRC32c first", string(withCRC(v2(1, 0x21, addr6))) + "GET", Header{Version: 2, Src: ap("[2001:db8::1]:42578"), Dst: ap("[2001:db8::2]:80")}, 16 + 36 + 7, nil},
		{"v2 LOCAL with a good CRC32c", string(withCRC(v2(0, 0x00))), Header{Version: 2, Local: true}, 16 + 7, nil},
		{"v2 CRC32c of another address", string(flip(withCRC(v2(1, 0x11, addr4)), 16)), Header{}, 0, ErrInvalid},
		{"v2 CRC32c with a flipped bit", string(flip(withCRC(v2(1, 0x11, addr4)), 16+12+6)), Header{}, 0, ErrInvalid},
		{"v2 LOCAL with a wrong CRC32c", string(flip(withCRC(v2(0, 0x00)), 16+6)), Header{}, 0, ErrInvalid},
		{"v2 CRC32c of 3 bytes", string(v2(1, 0x11, addr4, []byte{0x03, 0x00, 0x03, 1, 2, 3})), Header{}, 0, ErrInvalid},
		{"v2 two CRC32c records", string(withCRC(withCRC(v2(1, 0x11, addr4)))), Header{}, 0, ErrInvalid},
		{"v2 too long", string(append(append([]byte(nil), sigV2...), 0x21, 0x11, 0x10, 0x00)), Header{}, 0, ErrTooLong},
		{"v2 longest", string(v2(1, 0x11, addr4, []byte{0x04, 0x0f, 0xe1}, make([]byte, MaxV2-16-12-3))), Header{Version: 2, Src: ap("192.168.0.1:12345"), Dst: ap("10.0.0.1:443")}, MaxV2, nil},
		{"empty", "", Header{}, 0, nil},
		{"TLS ClientHello", "\x16\x03\x01\x02\x00", Header{}, 0, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, n, err := Parse([]byte(tt.in))
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if n != tt.n || h != tt.want {
				t.Fatalf("got %+v, %d; want %+v, %d", h, n, tt.want, tt.n)
			}
			if n > 0 {
				// Every shorter prefix is "need more", never an error or a
				// header: the event loop parses whatever each read brought.
				for i := 0; i < n; i++ {
					if _, m, err := Parse([]byte(tt.in[:i])); m != 0 || err != nil {
						t.Fatalf("prefix of %d bytes: %d, %v", i, m, err)
					}
				}
			}
		})
	}
}

// TestParseGunicornFixtures parses the headers of gunicorn's valid/pp_04 and
// pp_05 fixtures (proxy/testdata/gunicorn-requests).
func TestParseGunicornFixtures(t *testing.T) {
	pp04 := "\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A\x21\x11\x00\x0C\xC0\xA8\x01\x0A\xC0\xA8\x01\x01\x30\x39\x01\xBBGET /"
	h, n, err := Parse([]byte(pp04))
	if err != nil || n != 28 || h.Src != netip.MustParseAddrPort("192.168.1.10:12345") {
		t.Fatalf("pp_04: %+v %d %v", h, n, err)
	}
	pp05 := "\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a\x21!\x00\x24\xff\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00Vx\x00\x01\xff\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00Vx\x00\x02\xa6\x52\x00\x50GET /"
	h, n, err = Parse([]byte(pp05))
	if err != nil || n != 52 || h.Src != netip.MustParseAddrPort("[ff02::5678:1]:42578") {
		t.Fatalf("pp_05: %+v %d %v", h, n, err)
	}
}

func TestParseAllocs(t *testing.T) {
	in := v2(1, 0x21, addr6, tlvs)
	if a := testing.AllocsPerRun(100, func() { _, _, _ = Parse(in) }); a != 0 {
		t.Fatalf("v2: %v allocations", a)
	}
}

// pipe is a loopback TCP pair: the client end and the server end as a
// Listener gives it.
func pipe(t *testing.T, p *Policy) (client net.Conn, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	l := &Listener{Listener: ln, Policy: p}
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

func TestConn(t *testing.T) {
	loop := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	tests := []struct {
		name     string
		send     []string // written in pieces
		wantAddr string   // "" : the socket's
		wantData string
		reason   Reason // "" : accepted
	}{
		{"v1 in one piece", []string{"PROXY TCP4 203.0.113.7 10.0.0.1 4000 80\r\nhello"}, "203.0.113.7:4000", "hello", ""},
		{"v1 byte by byte", strings.Split("PROXY TCP6 2001:db8::7 ::1 4000 80\r\nhi", ""), "[2001:db8::7]:4000", "hi", ""},
		{"v2 with TLVs in pieces", []string{string(v2(1, 0x11, addr4, tlvs)[:10]), string(v2(1, 0x11, addr4, tlvs)[10:]) + "body"}, "192.168.0.1:12345", "body", ""},
		{"v1 UNKNOWN", []string{"PROXY UNKNOWN\r\nx"}, "", "x", ""},
		{"v2 LOCAL", []string{string(v2(0, 0)) + "y"}, "", "y", ""},
		{"no header", []string{"GET / HTTP/1.1\r\n\r\n"}, "", "", Invalid},
		{"malformed", []string{"PROXY TCP4 1.2.3.4\r\n"}, "", "", Invalid},
		{"too long", []string{"PROXY UNKNOWN " + strings.Repeat("a", 200)}, "", "", Invalid},
		{"closed early", []string{"PROXY TCP4 1.2"}, "", "", Invalid},
		{"slow", []string{"PROXY TCP4 1.2"}, "", "", Timeout},
		{"closed at once", nil, "", "", "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []Reason
			p := &Policy{Trusted: loop, Timeout: 5 * time.Second, Rejected: func(r Reason) { got = append(got, r) }}
			if tt.reason == Timeout {
				p.Timeout = 100 * time.Millisecond
			}
			client, server := pipe(t, p)
			go func() {
				for _, s := range tt.send {
					_, _ = client.Write([]byte(s))
					time.Sleep(time.Millisecond)
				}
				if tt.reason == Invalid || tt.reason == "-" {
					_ = client.(*net.TCPConn).CloseWrite()
				}
			}()
			// A server's own read deadline, as fasthttp sets it, must survive.
			_ = server.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 64)
			n, err := io.ReadAtLeast(server, buf, 1)
			if tt.reason == "-" {
				if err != io.EOF || len(got) != 0 {
					t.Fatalf("read %q, %v; rejections %v, want none counted", buf[:n], err, got)
				}
				return
			}
			if tt.reason != "" {
				if err != io.EOF || len(got) != 1 || got[0] != tt.reason {
					t.Fatalf("read %q, %v; rejections %v, want %s", buf[:n], err, got, tt.reason)
				}
				return
			}
			for n < len(tt.wantData) && err == nil {
				var m int
				m, err = server.Read(buf[n:])
				n += m
			}
			if err != nil || string(buf[:n]) != tt.wantData {
				t.Fatalf("read %q, %v; want %q", buf[:n], err, tt.wantData)
			}
			want := tt.wantAddr
			if want == "" {
				want = client.LocalAddr().String()
			}
			if a := server.RemoteAddr().String(); a != want {
				t.Fatalf("RemoteAddr %s, want %s", a, want)
			}
			if len(got) != 0 {
				t.Fatalf("rejections %v", got)
			}
		})
	}
}

func TestListenerUntrusted(t *testing.T) {
	// Rejected runs on Accept's goroutine: the channel hands its reasons
	// over (a slice appended there raced with the check below).
	got := make(chan Reason, 4)
	p := &Policy{Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Timeout: time.Second, Rejected: func(r Reason) { got <- r }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	l := &Listener{Listener: ln, Policy: p}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("PROXY TCP4 1.2.3.4 1.2.3.5 1 2\r\n"))
	accepted := make(chan net.Conn, 1)
	go func() {
		if s, err := l.Accept(); err == nil {
			accepted <- s
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("read %d, %v: the untrusted connection was not closed", n, err)
	}
	ln.Close()
	select {
	case s := <-accepted:
		s.Close()
		t.Fatal("Accept returned the untrusted connection")
	case <-time.After(50 * time.Millisecond):
	}
	select {
	case r := <-got:
		if r != Untrusted {
			t.Fatalf("rejected as %v, want %v", r, Untrusted)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the untrusted connection was not counted as rejected")
	}
	select {
	case r := <-got:
		t.Fatalf("a second rejection (%v) for one connection", r)
	default:
	}
	if !p.Trusts(&net.TCPAddr{IP: net.ParseIP("10.1.2.3")}) || p.Trusts(&net.TCPAddr{IP: net.ParseIP("11.1.2.3")}) {
		t.Fatal("Trusts")
	}
	// An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d.
	if !p.Trusts(&net.TCPAddr{IP: net.ParseIP("::ffff:10.1.2.3")}) {
		t.Fatal("Trusts on a v4-mapped address")
	}
}

// BenchmarkParse is the per-connection cost of reading a header (once per
// connection; nothing per request).
func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct {
		name string
		in   []byte
	}{
		{"v1 TCP4", []byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n")},
		{"v1 TCP6", []byte("PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n")},
		{"v2 TCP4 TLVs", v2(1, 0x11, addr4, tlvs)},
		{"v2 TCP6", v2(1, 0x21, addr6)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, n, err := Parse(bc.in); n == 0 || err != nil {
					b.Fatal(n, err)
				}
			}
		})
	}
}
