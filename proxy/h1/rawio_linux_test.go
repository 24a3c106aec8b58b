//go:build linux

package h1

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// tcpPair is a connected loopback TCP pair: the server side wrapped in a Conn.
func tcpPair(t testing.TB) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv := <-accepted
	if srv == nil {
		t.Fatal("accept failed")
	}
	c := NewConn(srv, Limits{})
	t.Cleanup(func() { c.Close(); client.Close() })
	return c, client
}

// TestRawIOOnlyForTCP: plain TCP connections take the raw path; anything
// else (TLS, pipes, test doubles) keeps its own Read and Write.
func TestRawIOOnlyForTCP(t *testing.T) {
	c, _ := tcpPair(t)
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	tests := []struct {
		name string
		conn *Conn
		raw  bool
	}{
		{"tcp", c, true},
		{"pipe", NewConn(p1, Limits{}), false},
		{"memConn", NewConn(&memConn{}, Limits{}), false},
	}
	for _, tt := range tests {
		if got := tt.conn.raw != nil; got != tt.raw {
			t.Errorf("%s: raw I/O %v, want %v", tt.name, got, tt.raw)
		}
	}
}

// TestRawIOReadsRequestsThenEOF: framed requests arrive as sent, and the
// client's close reads as io.EOF, as net.Conn's Read reports it.
func TestRawIOReadsRequestsThenEOF(t *testing.T) {
	c, client := tcpPair(t)
	want := "\r\n" + benchGet + post
	if _, err := client.Write([]byte(want)); err != nil {
		t.Fatal(err)
	}
	client.(*net.TCPConn).CloseWrite()
	got, err := readAll(c, 64)
	if err != io.EOF {
		t.Fatalf("read ended with %v, want io.EOF", err)
	}
	if got != benchGet+post {
		t.Fatalf("read %q", got)
	}
	if n, err := c.Read(nil); n != 0 || err != nil {
		t.Fatalf("empty read: %d, %v", n, err)
	}
}

// TestRawIOWriteWaitsForRoom: a write larger than the socket buffers waits
// in the poller (EAGAIN) until the slow reader makes room, and every byte
// arrives in order.
func TestRawIOWriteWaitsForRoom(t *testing.T) {
	c, client := tcpPair(t)
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	got := make(chan []byte, 1)
	go func() {
		time.Sleep(50 * time.Millisecond) // let the write fill the buffers first
		b, _ := io.ReadAll(io.LimitReader(client, int64(len(payload))))
		got <- b
	}()
	n, err := c.Write(payload)
	if err != nil || n != len(payload) {
		t.Fatalf("wrote %d, %v", n, err)
	}
	if b := <-got; !bytes.Equal(b, payload) {
		t.Fatalf("read %d bytes back, not the payload", len(b))
	}
}

// TestRawIODeadlines: read and write deadlines end a waiting call with a
// timeout error, as net.Conn's do (fasthttp's read, write and idle timeouts
// rely on it).
func TestRawIODeadlines(t *testing.T) {
	tests := []struct {
		name string
		do   func(c *Conn) (int, error)
	}{
		{"read", func(c *Conn) (int, error) {
			c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			return c.Read(make([]byte, 512))
		}},
		{"write", func(c *Conn) (int, error) {
			c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
			return c.Write(make([]byte, 64<<20)) // the client never reads
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := tcpPair(t)
			start := time.Now()
			_, err := tt.do(c)
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("err %v, want a deadline timeout", err)
			}
			if time.Since(start) > 30*time.Second {
				t.Fatalf("the deadline was not kept: %s", time.Since(start))
			}
		})
	}
}

// TestRawIOClosedPeer: writing to a connection the peer has reset fails.
func TestRawIOClosedPeer(t *testing.T) {
	c, client := tcpPair(t)
	client.(*net.TCPConn).SetLinger(0)
	client.Close()
	var err error
	for range 100 {
		if _, err = c.Write([]byte(strings.Repeat("x", 4096))); err != nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err == nil {
		t.Fatal("writes to a reset connection kept succeeding")
	}
}

// TestRawIOConcurrentReadWrite: a read waiting for the next request and a
// write of the previous answer run at once without sharing state (-race).
func TestRawIOConcurrentReadWrite(t *testing.T) {
	c, client := tcpPair(t)
	readDone := make(chan string, 1)
	go func() {
		s, _ := readAll(c, 32)
		readDone <- s
	}()
	answer := bytes.Repeat([]byte("y"), 1<<20)
	echoed := make(chan int, 1)
	go func() {
		n, _ := io.Copy(io.Discard, io.LimitReader(client, int64(len(answer))))
		echoed <- int(n)
	}()
	if n, err := c.Write(answer); err != nil || n != len(answer) {
		t.Fatalf("wrote %d, %v", n, err)
	}
	if n := <-echoed; n != len(answer) {
		t.Fatalf("client read %d", n)
	}
	client.Write([]byte(benchGet))
	client.(*net.TCPConn).CloseWrite()
	if s := <-readDone; s != benchGet {
		t.Fatalf("read %q", s)
	}
}

// TestRawIOAllocs pins the hit path's socket I/O: a request read and a 13 KB
// answer written over real TCP allocate nothing.
func TestRawIOAllocs(t *testing.T) {
	c, client := tcpPair(t)
	req := []byte(benchGet)
	p := make([]byte, 4096)
	answer := bytes.Repeat([]byte("z"), 13000)
	back := make([]byte, len(answer))
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := client.Write(req); err != nil {
			t.Fatal(err)
		}
		if n, err := c.Read(p); err != nil || n != len(req) {
			t.Fatalf("read %d, %v", n, err)
		}
		if _, err := c.Write(answer); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(client, back); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per request", allocs)
	}
}
