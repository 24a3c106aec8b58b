//go:build linux

package h1

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// rawIO reads and writes a TCP connection's non-blocking socket with raw
// system calls, waiting for readiness in the runtime's network poller as
// net.Conn does (deadlines included), but without the entersyscall and
// exitsyscall that net.Conn's reads and writes make around every call.
//
// Why: at a low request rate every request finds the Go runtime asleep, and
// entersyscall wakes the sysmon thread whenever it sleeps waiting for work;
// sysmon then polls every 20 µs until all Ps are idle again. Measured at 500
// cache hits/s of a 13 KB page (perf stat, goroutine core, docs/benchmarks.md
// "Where the edge's CPU goes at 500 req/s"): 1.7 sysmon nanosleeps and 1.9 futex
// calls per request, five context switches per request where nginx makes one.
// A read or write of a non-blocking socket cannot block, so holding the P
// through it costs nothing; the event-loop core (evloop/rawsys.go) does the same.
type rawIO struct {
	rc syscall.RawConn
	// readFn and writevFn are r.doRead and r.doWritev, bound once per
	// connection so a read or write allocates nothing.
	readFn, writevFn func(fd uintptr) bool
	// The read's and the write's state are apart: a server may write an
	// answer while another goroutine waits to read the next request.
	rbuf, wbuf []byte
	rn, wn     int
	rerr, werr error
	// whead goes out before wbuf in one writev (Conn's held full buffer);
	// iov is the writev's vector, here so that it does not escape per call.
	whead []byte
	iov   [2]syscall.Iovec
	// writes counts write system calls (tests pin the one-write answer).
	writes int
}

// newRawIO returns c's raw I/O, or nil when c is not a plain TCP connection
// (TLS, an in-memory pipe, a test double): those keep their own Read and Write.
func newRawIO(c net.Conn) *rawIO {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	r := &rawIO{rc: rc}
	r.readFn, r.writevFn = r.doRead, r.doWritev
	return r
}

func bufPtr(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

// doRead is one non-blocking read; false asks the poller to wait for input.
func (r *rawIO) doRead(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, bufPtr(r.rbuf), uintptr(len(r.rbuf)))
		switch e {
		case 0:
			r.rn = int(n)
			if n == 0 {
				r.rerr = io.EOF
			}
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			r.rerr = os.NewSyscallError("read", e)
			return true
		}
	}
}

// doWritev writes what is left of r.whead then r.wbuf, both in one system call
// while both have bytes left (a plain write is one with no head: writev of one
// vector costs what write does); false asks the poller to wait for room.
func (r *rawIO) doWritev(fd uintptr) bool {
	h := len(r.whead)
	for total := h + len(r.wbuf); r.wn < total; {
		k := 0
		if r.wn < h {
			r.iov[0].Base = &r.whead[r.wn]
			r.iov[0].SetLen(h - r.wn)
			k = 1
			if len(r.wbuf) > 0 {
				r.iov[1].Base = &r.wbuf[0]
				r.iov[1].SetLen(len(r.wbuf))
				k = 2
			}
		} else {
			r.iov[0].Base = &r.wbuf[r.wn-h]
			r.iov[0].SetLen(total - r.wn)
			k = 1
		}
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&r.iov[0])), uintptr(k))
		r.writes++
		switch e {
		case 0:
			r.wn += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			r.werr = os.NewSyscallError("writev", e)
			return true
		}
	}
	return true
}

// writev writes head then p, as one write where the socket has room for both:
// the count returned is of p's bytes, with an error when not all of head and p
// went out.
func (r *rawIO) writev(head, p []byte) (int, error) {
	r.whead, r.wbuf, r.wn, r.werr = head, p, 0, nil
	err := r.rc.Write(r.writevFn)
	n, werr := r.wn-len(head), r.werr
	r.whead, r.wbuf, r.werr = nil, nil, nil
	r.iov = [2]syscall.Iovec{}
	if err == nil {
		err = werr
	}
	if n < 0 {
		n = 0
	}
	return n, err
}

// read is net.Conn.Read: (0, io.EOF) once the peer has closed its side.
func (r *rawIO) read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.rbuf, r.rn, r.rerr = p, 0, nil
	err := r.rc.Read(r.readFn)
	n, rerr := r.rn, r.rerr
	r.rbuf, r.rerr = nil, nil
	if err != nil {
		return 0, err
	}
	return n, rerr
}

// write is net.Conn.Write: all of p, or the count written and an error.
func (r *rawIO) write(p []byte) (int, error) { return r.writev(nil, p) }
