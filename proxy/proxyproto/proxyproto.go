// Package proxyproto reads the PROXY protocol header (HAProxy's
// proxy-protocol.txt, version 1 text and version 2 binary) that an L4 load
// balancer (AWS NLB, HAProxy send-proxy, nginx proxy_protocol on) puts in front
// of a TCP connection to pass on the client's address.
//
// Parse is a prefix parser: it is given every byte received so far and says
// "need more", "invalid" or "done, n bytes". The event-loop core cannot block
// on a bufio.Reader, so it calls Parse on what each read brought; the goroutine
// core's Conn does the same from its own small buffer, so both cores accept
// exactly the same headers. A header is never longer than MaxV1 (107) or
// MaxV2 bytes, so parsing again from the start on each read is bounded.
//
// github.com/pires/go-proxyproto (the usual Go library) was tried first: its
// current release needs a newer Go toolchain than the module's, and it reads
// through a blocking bufio.Reader that the event loop cannot use.
package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net"
	"net/netip"
)

const (
	// MaxV1 is the longest version 1 header, CRLF included (the spec's 107).
	MaxV1 = 107
	// MaxV2 bounds a version 2 header: 16 bytes plus addresses and TLVs. The
	// length field allows 65535; 4 KiB holds the addresses (at most 216
	// bytes) and the TLVs real balancers send (AWS VPC endpoint id, TLS
	// details, Azure link id) many times over.
	MaxV2 = 4096
)

// sigV2 is the version 2 signature.
var sigV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")

var v1Prefix = []byte("PROXY ")

var (
	// ErrInvalid is a header that breaks the spec (or bytes that are no header).
	ErrInvalid = errors.New("proxyproto: invalid PROXY protocol header")
	// ErrTooLong is a version 1 line with no CRLF within MaxV1 bytes, or a
	// version 2 header longer than MaxV2.
	ErrTooLong = errors.New("proxyproto: PROXY protocol header too long")
)

// Header is a parsed PROXY header.
type Header struct {
	// Version is 1 or 2.
	Version int
	// Local is true when the header carries no client address to use: v1
	// "PROXY UNKNOWN", the v2 LOCAL command (a balancer's own health check),
	// or a v2 family other than TCP over IPv4/IPv6. The connection keeps its
	// socket's address then.
	Local bool
	// Src and Dst are the client's and the balancer's addresses when !Local.
	Src, Dst netip.AddrPort
}

// SrcAddr is Src as the *net.TCPAddr fasthttp's RemoteIP reads.
func (h Header) SrcAddr() *net.TCPAddr {
	return net.TCPAddrFromAddrPort(h.Src)
}

// Parse reads a PROXY header from the start of b, which holds every byte
// received on the connection so far. It returns n > 0 and the header when b
// starts with a complete valid one (the request follows at b[n:]); n == 0 and
// a nil error when b is a prefix of a header that may still be valid (read
// more); ErrInvalid or ErrTooLong otherwise. It allocates nothing, except to
// parse a version 1 address.
func Parse(b []byte) (h Header, n int, err error) {
	if len(b) == 0 {
		return h, 0, nil
	}
	if b[0] == 'P' {
		h, n, err = parseV1(b)
	} else {
		h, n, err = parseV2(b)
	}
	if err != nil || n == 0 {
		return Header{}, 0, err
	}
	return h, n, nil
}

// parseV1 reads "PROXY TCP4|TCP6 src dst sport dport\r\n" or "PROXY UNKNOWN...\r\n".
func parseV1(b []byte) (h Header, n int, err error) {
	if m := min(len(b), len(v1Prefix)); !bytes.Equal(b[:m], v1Prefix[:m]) {
		return h, 0, ErrInvalid
	}
	end := bytes.IndexByte(b[:min(len(b), MaxV1)], '\n')
	if end < 0 {
		if len(b) >= MaxV1 {
			return h, 0, ErrTooLong
		}
		if bytes.IndexByte(b, '\r') >= 0 && b[len(b)-1] != '\r' {
			return h, 0, ErrInvalid // a CR not followed by LF
		}
		return h, 0, nil
	}
	if end < len(v1Prefix)+1 || b[end-1] != '\r' {
		return h, 0, ErrInvalid
	}
	line := b[len(v1Prefix) : end-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return h, 0, ErrInvalid
	}
	h.Version = 1
	proto, rest, _ := bytes.Cut(line, []byte(" "))
	switch string(proto) {
	case "UNKNOWN":
		// The spec: the receiver must ignore anything up to the CRLF.
		h.Local = true
		return h, end + 1, nil
	case "TCP4", "TCP6":
	default:
		return h, 0, ErrInvalid
	}
	var f [4][]byte
	for i := range f {
		var ok bool
		f[i], rest, ok = bytes.Cut(rest, []byte(" "))
		if ok != (i < 3) {
			return h, 0, ErrInvalid // too few or too many fields
		}
	}
	src, err1 := parseAddr(f[0], proto[3] == '4')
	dst, err2 := parseAddr(f[1], proto[3] == '4')
	sp, ok1 := parsePort(f[2])
	dp, ok2 := parsePort(f[3])
	if err1 != nil || err2 != nil || !ok1 || !ok2 {
		return h, 0, ErrInvalid
	}
	h.Src, h.Dst = netip.AddrPortFrom(src, sp), netip.AddrPortFrom(dst, dp)
	return h, end + 1, nil
}

// parseAddr reads a v1 address of the family TCP4 or TCP6 names.
func parseAddr(b []byte, v4 bool) (netip.Addr, error) {
	if len(b) == 0 || len(b) > 45 {
		return netip.Addr{}, ErrInvalid
	}
	a, err := netip.ParseAddr(string(b))
	if err != nil || a.Zone() != "" || a.Is4() != v4 {
		return netip.Addr{}, ErrInvalid
	}
	return a, nil
}

// parsePort reads a decimal port, 0 to 65535, without sign or leading zeros.
func parsePort(b []byte) (uint16, bool) {
	if len(b) == 0 || len(b) > 5 || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return uint16(v), v <= 65535
}

// parseV2 reads the binary header: signature, version and command, family,
// length, addresses, TLVs.
func parseV2(b []byte) (h Header, n int, err error) {
	if m := min(len(b), len(sigV2)); !bytes.Equal(b[:m], sigV2[:m]) {
		return h, 0, ErrInvalid
	}
	if len(b) >= 13 {
		if b[12]>>4 != 2 || b[12]&0xf > 1 {
			return h, 0, ErrInvalid // version 2; command LOCAL (0) or PROXY (1)
		}
	}
	if len(b) >= 14 {
		switch b[13] {
		case 0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32:
		default:
			return h, 0, ErrInvalid
		}
	}
	if len(b) < 16 {
		return h, 0, nil
	}
	total := 16 + int(binary.BigEndian.Uint16(b[14:16]))
	if total > MaxV2 {
		return h, 0, ErrTooLong
	}
	if len(b) < total {
		return h, 0, nil
	}
	h.Version = 2
	body := b[16:total]
	var alen int
	switch b[13] >> 4 {
	case 1:
		alen = 12
	case 2:
		alen = 36
	case 3:
		alen = 216
	}
	if len(body) < alen {
		return h, 0, ErrInvalid
	}
	if !validTLVs(b[:total], 16+alen) {
		return h, 0, ErrInvalid
	}
	// LOCAL: the balancer's own connection (its health check); UNSPEC, UNIX
	// and DGRAM: no TCP client address. The socket's address stays.
	if b[12]&0xf == 0 || (b[13] != 0x11 && b[13] != 0x21) {
		h.Local = true
		return h, total, nil
	}
	if alen == 12 {
		src, dst := netip.AddrFrom4([4]byte(body[0:4])), netip.AddrFrom4([4]byte(body[4:8]))
		h.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[8:10]))
		h.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[10:12]))
	} else {
		src, dst := netip.AddrFrom16([16]byte(body[0:16])), netip.AddrFrom16([16]byte(body[16:32]))
		h.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[32:34]))
		h.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[34:36]))
	}
	return h, total, nil
}

// validTLVs reports whether hdr[off:] (hdr is the whole header) is a whole
// number of type-length-value records and, when one of them is a CRC32c
// (PP2_TYPE_CRC32C), whether it is the checksum of the header with its own
// value read as zeros. The spec makes checking optional, but says a receiver
// that supports it MUST treat a header that fails it as invalid: a balancer
// that sends one asks for the check, and a corrupted or hand-made header
// that carries a wrong one is better refused than trusted for its address.
// The other records' contents are not used: the edge needs only the
// addresses.
func validTLVs(hdr []byte, off int) bool {
	crcAt := -1
	for b := hdr[off:]; len(b) > 0; {
		if len(b) < 3 {
			return false
		}
		vlen := int(binary.BigEndian.Uint16(b[1:3]))
		if 3+vlen > len(b) {
			return false
		}
		if b[0] == typeCRC32C {
			if vlen != 4 || crcAt >= 0 {
				return false
			}
			crcAt = len(hdr) - len(b) + 3
		}
		b = b[3+vlen:]
	}
	if crcAt < 0 {
		return true
	}
	var zero [4]byte
	sum := crc32.Update(0, castagnoli, hdr[:crcAt])
	sum = crc32.Update(sum, castagnoli, zero[:])
	sum = crc32.Update(sum, castagnoli, hdr[crcAt+4:])
	return sum == binary.BigEndian.Uint32(hdr[crcAt:crcAt+4])
}

// typeCRC32C is PP2_TYPE_CRC32C, the header checksum's record type.
const typeCRC32C = 0x03

var castagnoli = crc32.MakeTable(crc32.Castagnoli)
