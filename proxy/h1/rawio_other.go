//go:build !linux

package h1

import "net"

// rawIO is Linux-only (rawio_linux.go); elsewhere connections keep net.Conn's
// Read and Write.
type rawIO struct{}

func newRawIO(net.Conn) *rawIO { return nil }

func (*rawIO) read([]byte) (int, error)  { panic("h1: no raw I/O") }
func (*rawIO) write([]byte) (int, error) { panic("h1: no raw I/O") }

func (*rawIO) writev(_, _ []byte) (int, error) { panic("h1: no raw I/O") }
