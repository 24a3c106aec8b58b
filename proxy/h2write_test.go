package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair is a connected loopback TCP pair (a real socket, so a peer that
// stops reading fills real kernel buffers).
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-acc
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// TestH2WriteConnOrderAndClose: bytes written in pieces of every size arrive
// whole and in order, and Close sends what is still pending (a GOAWAY, in
// x/net's use) before it closes.
func TestH2WriteConnOrderAndClose(t *testing.T) {
	cases := []struct {
		name   string
		pieces []int
	}{
		{"one small", []int{9}},
		{"frames", []int{9, 120, 9, 13000, 9, 0, 4096}},
		{"past the high mark", []int{16393, 16393, 16393, 16393, 16393, 16393, 16393}},
		{"one huge", []int{300 << 10}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, c := tcpPair(t)
			wc := newH2WriteConn(s, 5*time.Second)
			var want bytes.Buffer
			got := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(c)
				got <- b
			}()
			for i, n := range tc.pieces {
				p := bytes.Repeat([]byte{byte('a' + i)}, n)
				want.Write(p)
				if k, err := wc.Write(p); err != nil || k != n {
					t.Fatalf("Write(%d) = %d, %v", n, k, err)
				}
			}
			if err := wc.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case b := <-got:
				if !bytes.Equal(b, want.Bytes()) {
					t.Fatalf("peer read %d bytes, want %d in order", len(b), want.Len())
				}
			case <-time.After(5 * time.Second):
				t.Fatal("peer never saw EOF")
			}
			if _, err := wc.Write([]byte("x")); err == nil {
				t.Fatal("Write after Close succeeded")
			}
		})
	}
}

// TestH2WriteConnStalledPeer: a peer that stops reading fills the buffer, and
// then x/net's write fails at its deadline (its WriteByteTimeout) instead of
// buffering without bound; Close then returns within h2CloseFlush.
func TestH2WriteConnStalledPeer(t *testing.T) {
	s, _ := tcpPair(t) // the client never reads
	wc := newH2WriteConn(s, 10*time.Second)
	frame := make([]byte, 16<<10)
	start := time.Now()
	var err error
	for i := 0; i < 10000 && err == nil; i++ {
		_ = wc.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		_, err = wc.Write(frame)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("writes to a stalled peer: %v, want a deadline error", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("took %v to notice the stall", el)
	}
	w := wc.(*h2WriteConn)
	w.mu.Lock()
	pending := 0
	if w.buf != nil {
		pending = len(*w.buf)
	}
	w.mu.Unlock()
	if pending > h2WriteHigh+len(frame) {
		t.Fatalf("%d bytes pending, bound %d", pending, h2WriteHigh+len(frame))
	}
	start = time.Now()
	_ = wc.Close()
	if el := time.Since(start); el > h2CloseFlush+2*time.Second {
		t.Fatalf("Close took %v", el)
	}
	select {
	case <-w.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the writer goroutine outlived Close")
	}
}

// TestH2WriteConnPeerGone: once the peer has gone, writes fail (the error is
// the writer's, reported on a later write) and the writer ends.
func TestH2WriteConnPeerGone(t *testing.T) {
	s, c := tcpPair(t)
	wc := newH2WriteConn(s, 5*time.Second)
	c.(*net.TCPConn).SetLinger(0) // RST, so the server's writes fail at once
	c.Close()
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for err == nil && time.Now().Before(deadline) {
		_, err = wc.Write(make([]byte, 4096))
		time.Sleep(time.Millisecond)
	}
	if err == nil {
		t.Fatal("writes to a closed peer kept succeeding")
	}
	select {
	case <-wc.(*h2WriteConn).done:
	case <-time.After(5 * time.Second):
		t.Fatal("the writer goroutine kept running after a write error")
	}
	_ = wc.Close()
}

// TestH2WriteConnReadDeadline: read deadlines pass through, and clearing one
// that is already clear (x/net does it for every stream) keeps it clear.
func TestH2WriteConnReadDeadline(t *testing.T) {
	s, c := tcpPair(t)
	wc := newH2WriteConn(s, 5*time.Second)
	defer wc.Close()
	buf := make([]byte, 1)
	steps := []struct {
		name    string
		dl      time.Time
		send    bool
		timeout bool
	}{
		{"past deadline", time.Now().Add(-time.Second), false, true},
		{"cleared", time.Time{}, true, false},
		{"cleared again", time.Time{}, true, false},
		{"set again", time.Now().Add(50 * time.Millisecond), false, true},
		{"cleared after a set", time.Time{}, true, false},
	}
	for _, st := range steps {
		if err := wc.SetReadDeadline(st.dl); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if st.send {
			if _, err := c.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		_, err := wc.Read(buf)
		if got := errors.Is(err, os.ErrDeadlineExceeded); got != st.timeout {
			t.Fatalf("%s: read error %v, want timeout %v", st.name, err, st.timeout)
		}
	}
}
