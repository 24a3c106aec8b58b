package stack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ErrCluster means a throwaway Redis Cluster could not be formed; the
// message carries redis-cli's or the node's own words.
var ErrCluster = errors.New("stack: redis cluster")

// RedisCluster is a throwaway Redis Cluster of masters only (no replicas),
// every node on 127.0.0.1 with persistence off, for tests and demos of the
// cache and tag bumps on a sharded Redis. It is never for data anyone keeps.
type RedisCluster struct {
	// Nodes are the masters; each one's URL works as a seed address, since
	// cluster clients discover the other nodes with CLUSTER SLOTS. Kill on a
	// node works for failure tests, but Redis.Start would bring it back
	// without cluster mode, so a killed node stays dead.
	Nodes []*Redis
	// URL is the first node's URL, the one seed a cluster client needs.
	URL string
	// Addrs are the nodes' host:port addresses, in start order.
	Addrs []string
}

// StartRedisCluster starts n cluster-enabled redis-server processes on free
// ports, joins them with `redis-cli --cluster create` (all 16384 slots spread
// over n masters) and waits until every node reports cluster_state:ok. It
// needs at least three nodes, Redis's own minimum for a cluster. On any
// failure it stops what it started.
func StartRedisCluster(ctx context.Context, log io.Writer, n int) (c *RedisCluster, err error) {
	if n < 3 {
		return nil, fmt.Errorf("%w: needs at least 3 masters, got %d", ErrCluster, n)
	}
	if log == nil {
		log = io.Discard
	}
	bins, err := Ensure(log, "redis-server")
	if err != nil {
		return nil, err
	}
	// redis-cli ships in redis-tools, a dependency of Debian's redis-server.
	cli, ok := look("redis-cli")
	if !ok {
		return nil, fmt.Errorf("%w: redis-cli not found; install with: apt-get install -y redis-tools", ErrMissingBinary)
	}
	c = &RedisCluster{}
	defer func() {
		if err != nil {
			c.Stop()
			c = nil
		}
	}()
	for range n {
		r, err := startClusterNode(ctx, bins["redis-server"])
		if err != nil {
			return c, err
		}
		c.Nodes = append(c.Nodes, r)
		c.Addrs = append(c.Addrs, r.Addr)
	}
	c.URL = c.Nodes[0].URL
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		return c, fmt.Errorf("%w: redis-cli --cluster create: %v: %s", ErrCluster, err, tail(out))
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, r := range c.Nodes {
		if err := waitFor(wctx, r.proc, "redis cluster node "+r.Addr, func() error { return clusterOK(r.Addr) }); err != nil {
			return c, fmt.Errorf("%w: %v", ErrCluster, err)
		}
	}
	return c, nil
}

// startClusterNode starts one cluster-enabled node on a free port. Its
// nodes.conf lives in the node's own directory, so nodes never share state.
func startClusterNode(ctx context.Context, bin string) (*Redis, error) {
	dir, err := os.MkdirTemp("", "novashop-redis-cluster-")
	if err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	port, err := FreePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	r := &Redis{Port: port, Addr: fmt.Sprintf("127.0.0.1:%d", port), Dir: dir, bin: bin}
	r.URL = "redis://" + r.Addr + "/0"
	args := []string{"--port", itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--protected-mode", "no", "--daemonize", "no", "--loglevel", "warning",
		"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"}
	proc, err := startProc("redis-server", bin, args, nil, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	r.proc = proc
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := waitFor(wctx, proc, "redis-server "+r.Addr, func() error { return ping(r.Addr) }); err != nil {
		r.Stop()
		return nil, err
	}
	return r, nil
}

// clusterOK asks one node for CLUSTER INFO and succeeds once it reports
// cluster_state:ok, i.e. every slot is served.
func clusterOK(addr string) error {
	info, err := clusterInfo(addr)
	if err != nil {
		return err
	}
	if info["cluster_state"] != "ok" {
		return fmt.Errorf("cluster_state %q", info["cluster_state"])
	}
	return nil
}

// clusterInfo reads CLUSTER INFO over a raw RESP connection (a bulk string
// of "name:value" lines), so the launcher needs no Redis client library.
func clusterInfo(addr string) (map[string]string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("CLUSTER INFO\r\n")); err != nil {
		return nil, err
	}
	return parseClusterInfo(bufio.NewReader(c))
}

// parseClusterInfo decodes the RESP bulk-string reply of CLUSTER INFO. An
// error reply ("-ERR ...") or a malformed frame is an error, never a panic.
func parseClusterInfo(r *bufio.Reader) (map[string]string, error) {
	head, err := r.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("%w: reading CLUSTER INFO: %v", ErrCluster, err)
	}
	head = strings.TrimRight(head, "\r\n")
	if strings.HasPrefix(head, "-") {
		return nil, fmt.Errorf("%w: %s", ErrCluster, head[1:])
	}
	if !strings.HasPrefix(head, "$") && !strings.HasPrefix(head, "=") {
		return nil, fmt.Errorf("%w: unexpected CLUSTER INFO reply %q", ErrCluster, head)
	}
	size, err := strconv.Atoi(head[1:])
	if err != nil || size < 0 || size > 1<<20 {
		return nil, fmt.Errorf("%w: bad CLUSTER INFO length %q", ErrCluster, head)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("%w: short CLUSTER INFO reply: %v", ErrCluster, err)
	}
	info := map[string]string{}
	for _, line := range strings.Split(string(body), "\n") {
		k, v, ok := strings.Cut(strings.TrimRight(line, "\r"), ":")
		if ok && k != "" {
			info[k] = v
		}
	}
	return info, nil
}

// Stop ends every node and removes their directories.
func (c *RedisCluster) Stop() {
	if c == nil {
		return
	}
	for _, r := range c.Nodes {
		r.Stop()
	}
}
