//go:build linux

package evloop

import (
	"testing"

	"golang.org/x/sys/unix"
)

// socketPair is a connected non-blocking Unix stream pair.
func socketPair(t testing.TB) (int, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

// The raw calls return what unix.Read and unix.Write return: the bytes, EAGAIN
// on an empty socket (comparable with ==), 0 at EOF, and errors for a bad fd.
func TestRawReadWrite(t *testing.T) {
	a, b := socketPair(t)
	buf := make([]byte, 16)
	if n, err := rawRead(a, buf); n != -1 || err != unix.EAGAIN {
		t.Fatalf("empty: %d %v, want -1 EAGAIN", n, err)
	}
	if n, err := rawWrite(b, []byte("hello")); n != 5 || err != nil {
		t.Fatalf("write: %d %v", n, err)
	}
	events := make([]unix.EpollEvent, 4)
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ep)
	if n, err := pollReady(ep, events); n != 0 || err != nil {
		t.Fatalf("poll with nothing registered: %d %v", n, err)
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, a, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(a)}); err != nil {
		t.Fatal(err)
	}
	if n, err := pollReady(ep, events); n != 1 || err != nil || events[0].Fd != int32(a) {
		t.Fatalf("poll: %d %v %+v", n, err, events[0])
	}
	if n, err := rawRead(a, buf); n != 5 || err != nil || string(buf[:5]) != "hello" {
		t.Fatalf("read: %d %v %q", n, err, buf[:n])
	}
	if n, err := rawWrite(b, nil); n != 0 || err != nil {
		t.Fatalf("empty write: %d %v", n, err)
	}
	unix.Close(b)
	if n, err := rawRead(a, buf); n != 0 || err != nil {
		t.Fatalf("EOF: %d %v", n, err)
	}
	if _, err := rawRead(-1, buf); err != unix.EBADF {
		t.Fatalf("bad fd: %v", err)
	}
	if testing.AllocsPerRun(100, func() { _, _ = rawRead(a, buf) }) != 0 {
		t.Fatal("rawRead allocates")
	}
}

// BenchmarkSyscall compares a raw read and a unix.Read of an empty
// non-blocking socket (the system call's own cost is the same; the difference
// is the runtime's bookkeeping around a blocking-capable call).
func BenchmarkSyscall(b *testing.B) {
	fd, _ := socketPair(b)
	buf := make([]byte, 64)
	b.Run("raw", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			_, _ = rawRead(fd, buf)
		}
	})
	b.Run("unix", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			_, _ = unix.Read(fd, buf)
		}
	})
}
