//go:build linux

package h1

import (
	"bufio"
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

// answerThrough writes an answer of a header and a body as fasthttp does:
// through a bufio.Writer of the connection's write buffer size, then Flush.
func answerThrough(bw *bufio.Writer, header, body []byte) error {
	if _, err := bw.Write(header); err != nil {
		return err
	}
	if _, err := bw.Write(body); err != nil {
		return err
	}
	return bw.Flush()
}

// TestConnWriteBufferOneWrite: with SetWriteBuffer, an answer that bufio
// sends as a full buffer and the rest goes out in one write system call, every
// byte in order; an answer filling the buffer exactly is held only until the
// server reads the next request (which the client sends once it has the
// answer) or closes.
func TestConnWriteBufferOneWrite(t *testing.T) {
	const size = 4096
	header := []byte("HTTP/1.1 200 OK\r\nContent-Length: NNNNN\r\nCache-Status: novashop-edge; hit\r\n\r\n")
	tests := []struct {
		name   string
		body   int
		writes int // write system calls for the answer
		close  bool
	}{
		{"small", 200, 1, false},
		{"fits", size - len(header) - 1, 1, false},
		{"exactly full, sent before the next read", size - len(header), 1, false},
		{"exactly full, sent on close", size - len(header), 1, true},
		{"one byte over", size - len(header) + 1, 1, false},
		{"product list page", 5287, 1, false},
		{"HTML page", 27554, 1, false},
		{"larger than the socket takes at once", 8 << 20, -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, client := tcpPair(t)
			c.SetWriteBuffer(size)
			body := bytes.Repeat([]byte("0123456789"), tt.body/10+1)[:tt.body]
			want := append(append([]byte(nil), header...), body...)
			bw := bufio.NewWriterSize(c, size)
			done := make(chan error, 1)
			before := c.raw.writes
			go func() {
				if err := answerThrough(bw, header, body); err != nil {
					done <- err
					return
				}
				if tt.close {
					done <- c.Close()
					return
				}
				p := make([]byte, 4096)
				n := 0
				for n < len(benchGet) {
					k, err := c.Read(p[n:])
					if err != nil {
						done <- err
						return
					}
					n += k
				}
				if string(p[:n]) != benchGet {
					done <- errors.New("read " + string(p[:n]))
					return
				}
				done <- nil
			}()
			got := make([]byte, len(want))
			if _, err := io.ReadFull(client, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("the answer arrived changed")
			}
			if !tt.close {
				if _, err := client.Write([]byte(benchGet)); err != nil {
					t.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if w := c.raw.writes - before; tt.writes > 0 && w != tt.writes {
				t.Fatalf("%d write system calls, want %d", w, tt.writes)
			}
			if c.pending != nil {
				t.Fatal("a full buffer is still held")
			}
		})
	}
}

// TestConnWriteBufferOff: without SetWriteBuffer (and on connections without
// raw I/O) a full buffer goes out at once, as before: two writes for an
// answer over the buffer.
func TestConnWriteBufferOff(t *testing.T) {
	c, client := tcpPair(t)
	body := bytes.Repeat([]byte("x"), 10000)
	bw := bufio.NewWriterSize(c, 4096)
	before := c.raw.writes
	done := make(chan error, 1)
	go func() { done <- answerThrough(bw, []byte("HTTP/1.1 200 OK\r\n\r\n"), body) }()
	got := make([]byte, 19+len(body))
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if w := c.raw.writes - before; w != 2 {
		t.Fatalf("%d write system calls, want bufio's 2", w)
	}
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	pc := NewConn(p1, Limits{})
	pc.SetWriteBuffer(4096)
	if pc.fullWrite != 0 {
		t.Fatal("a pipe took SetWriteBuffer")
	}
}

// TestConnWriteBufferAllocs pins the hit path with SetWriteBuffer: a request
// read and a 13 KB answer written through bufio (held full buffer, writev)
// allocate nothing once the held buffer's pool is warm.
func TestConnWriteBufferAllocs(t *testing.T) {
	c, client := tcpPair(t)
	c.SetWriteBuffer(4096)
	bw := bufio.NewWriterSize(c, 4096)
	req := []byte(benchGet)
	p := make([]byte, 4096)
	header := []byte("HTTP/1.1 200 OK\r\nContent-Length: 13000\r\n\r\n")
	body := bytes.Repeat([]byte("z"), 13000)
	back := make([]byte, len(header)+len(body))
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := client.Write(req); err != nil {
			t.Fatal(err)
		}
		if n, err := c.Read(p); err != nil || n != len(req) {
			t.Fatalf("read %d, %v", n, err)
		}
		if err := answerThrough(bw, header, body); err != nil {
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
