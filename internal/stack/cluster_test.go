package stack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

func TestParseClusterInfo(t *testing.T) {
	ok := "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_known_nodes:3\r\n"
	cases := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr bool
	}{
		{"bulk string", fmt.Sprintf("$%d\r\n%s\r\n", len(ok), ok),
			map[string]string{"cluster_state": "ok", "cluster_slots_assigned": "16384", "cluster_known_nodes": "3"}, false},
		{"RESP3 verbatim length", fmt.Sprintf("=%d\r\n%s\r\n", len(ok), ok),
			map[string]string{"cluster_state": "ok", "cluster_slots_assigned": "16384", "cluster_known_nodes": "3"}, false},
		{"cluster disabled", "-ERR This instance has cluster support disabled\r\n", nil, true},
		{"simple string", "+OK\r\n", nil, true},
		{"bad length", "$x\r\n", nil, true},
		{"negative length", "$-1\r\n", nil, true},
		{"huge length", "$99999999\r\n", nil, true},
		{"short body", "$100\r\ncluster_state:ok\r\n", nil, true},
		{"empty", "", nil, true},
		{"lines without colon are skipped", "$14\r\nnocolon\r\na:b\r\n", map[string]string{"a": "b"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseClusterInfo(bufio.NewReader(strings.NewReader(c.in)))
			if c.wantErr {
				if err == nil || !errors.Is(err, ErrCluster) {
					t.Fatalf("parseClusterInfo(%q) = %v, %v; want an ErrCluster error", c.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseClusterInfo(%q): %v", c.in, err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("parseClusterInfo(%q) = %v, want %v", c.in, got, c.want)
			}
			for k, v := range c.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func FuzzParseClusterInfo(f *testing.F) {
	f.Add("$18\r\ncluster_state:ok\r\n\r\n")
	f.Add("-ERR nope\r\n")
	f.Add("$-1\r\n")
	f.Add("=5\r\na:b:c\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		info, err := parseClusterInfo(bufio.NewReader(strings.NewReader(in)))
		if err != nil && info != nil {
			t.Fatalf("error %v with a non-nil map", err)
		}
		if err != nil && !errors.Is(err, ErrCluster) {
			t.Fatalf("error %v does not wrap ErrCluster", err)
		}
	})
}

func TestStartRedisClusterNeedsThreeNodes(t *testing.T) {
	if _, err := StartRedisCluster(context.Background(), nil, 2); !errors.Is(err, ErrCluster) {
		t.Fatalf("StartRedisCluster(n=2) = %v, want ErrCluster", err)
	}
}

// TestStartRedisCluster forms a real three-master cluster and checks that
// every node serves all slots and that a key written through one node is
// redirected (MOVED) by the nodes that do not own its slot.
func TestStartRedisCluster(t *testing.T) {
	// Installing redis-server is not part of the 60 s start.
	if _, err := Ensure(&testWriter{t}, "redis-server"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := StartRedisCluster(ctx, &testWriter{t}, 3)
	if err != nil {
		t.Fatalf("StartRedisCluster: %v", err)
	}
	defer c.Stop()
	if len(c.Nodes) != 3 || len(c.Addrs) != 3 || c.URL != c.Nodes[0].URL {
		t.Fatalf("cluster = %+v", c)
	}
	for _, a := range c.Addrs {
		info, err := clusterInfo(a)
		if err != nil {
			t.Fatalf("CLUSTER INFO %s: %v", a, err)
		}
		if info["cluster_state"] != "ok" || info["cluster_slots_assigned"] != "16384" || info["cluster_known_nodes"] != "3" {
			t.Fatalf("CLUSTER INFO %s = %v", a, info)
		}
	}
	// A key lives on exactly one master; the other two answer MOVED.
	moved, owned := 0, 0
	for _, a := range c.Addrs {
		reply := rawCommand(t, a, "SET e2e:probe 1\r\n")
		switch {
		case strings.HasPrefix(reply, "+OK"):
			owned++
		case strings.HasPrefix(reply, "-MOVED"):
			moved++
		default:
			t.Fatalf("SET on %s: %q", a, reply)
		}
	}
	if owned != 1 || moved != 2 {
		t.Fatalf("SET answered OK on %d nodes and MOVED on %d, want 1 and 2", owned, moved)
	}
	c.Stop()
	for _, r := range c.Nodes {
		if !r.proc.Exited() {
			t.Fatalf("node %s still running after Stop", r.Addr)
		}
	}
}

func rawCommand(t *testing.T, addr, cmd string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte(cmd)); err != nil {
		t.Fatalf("write %s: %v", addr, err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("read %s: %v", addr, err)
	}
	return line
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
