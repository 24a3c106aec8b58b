//go:build linux

package evloop

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The loop's reads and writes go to non-blocking sockets and its polls for
// ready events do not wait, so they cannot block the thread: they are made as
// raw system calls, without the runtime's entersyscall/exitsyscall around each
// (unix.Read and unix.Write pay that bookkeeping, about a tenth of a loopback
// read's cost, on every call; the loop makes four or five of them per
// forwarded request). An errno goes back as the syscall.Errno value itself,
// which compares equal to unix.EAGAIN and friends and, being small, boxes
// without allocating. A poll that may wait uses unix.EpollWait, so the runtime
// can hand the loop's P to other goroutines meanwhile.

var zeroBuf uintptr

func bufPtr(b []byte) uintptr {
	if len(b) == 0 {
		return uintptr(unsafe.Pointer(&zeroBuf))
	}
	return uintptr(unsafe.Pointer(&b[0]))
}

// rawRead is unix.Read on a non-blocking fd.
func rawRead(fd int, b []byte) (int, error) {
	n, _, e := syscall.RawSyscall(unix.SYS_READ, uintptr(fd), bufPtr(b), uintptr(len(b)))
	if e != 0 {
		return int(n), e // n is -1, as unix.Read and unix.Write return
	}
	return int(n), nil
}

// rawWrite is unix.Write on a non-blocking fd.
func rawWrite(fd int, b []byte) (int, error) {
	n, _, e := syscall.RawSyscall(unix.SYS_WRITE, uintptr(fd), bufPtr(b), uintptr(len(b)))
	if e != 0 {
		return int(n), e // n is -1, as unix.Read and unix.Write return
	}
	return int(n), nil
}

// pollReady is epoll_wait with a zero timeout: the events ready now.
func pollReady(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
