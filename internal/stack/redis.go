package stack

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// Redis is a throwaway redis-server on 127.0.0.1 with persistence off.
type Redis struct {
	URL  string // redis://127.0.0.1:PORT/0
	Addr string // 127.0.0.1:PORT
	Port int
	Dir  string
	bin  string
	proc *Proc
}

// StartRedis installs redis-server when missing and starts one on a free port.
func StartRedis(ctx context.Context, log io.Writer) (*Redis, error) {
	bins, err := Ensure(log, "redis-server")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "novashop-redis-")
	if err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	port, err := FreePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	r := &Redis{Port: port, Addr: fmt.Sprintf("127.0.0.1:%d", port), Dir: dir, bin: bins["redis-server"]}
	r.URL = "redis://" + r.Addr + "/0"
	if err := r.Start(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return r, nil
}

// Start (re)starts the server on its port, e.g. after Kill in a failure test.
func (r *Redis) Start(ctx context.Context) error {
	args := []string{"--port", itoa(r.Port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.Dir, "--protected-mode", "no", "--daemonize", "no", "--loglevel", "warning"}
	proc, err := startProc("redis-server", r.bin, args, nil, r.Dir)
	if err != nil {
		return err
	}
	r.proc = proc
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return waitFor(wctx, proc, "redis-server", func() error { return ping(r.Addr) })
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 16)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if string(buf[:n]) != "+PONG\r\n" {
		return fmt.Errorf("unexpected reply %q", buf[:n])
	}
	return nil
}

// Kill ends the server at once (failure tests); Start brings it back.
func (r *Redis) Kill() { r.proc.Kill() }

// Stall freezes the server (SIGSTOP) for d and then lets it go on
// (SIGCONT): connections stay open and commands wait, as when Redis is
// slow rather than gone.
func (r *Redis) Stall(d time.Duration) error {
	p, err := os.FindProcess(r.proc.Pid())
	if err != nil {
		return err
	}
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	time.Sleep(d)
	return p.Signal(syscall.SIGCONT)
}

// Stop ends the server and removes its directory.
func (r *Redis) Stop() {
	if r == nil {
		return
	}
	if r.proc != nil {
		_ = r.proc.Stop(5 * time.Second)
	}
	os.RemoveAll(r.Dir)
}

// Pid is the server's process id.
func (r *Redis) Pid() int { return r.proc.Pid() }
