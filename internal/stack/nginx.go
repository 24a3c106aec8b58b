package stack

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Nginx is an nginx master process running a configuration file in the
// foreground (the file must say `daemon off;`), the peer every benchmark
// compares the edge with.
type Nginx struct {
	Conf string
	proc *Proc
}

// NginxBinary returns the nginx binary, installing Debian's nginx when missing.
func NginxBinary(log io.Writer) (string, error) {
	bins, err := Ensure(log, "nginx")
	if err != nil {
		return "", err
	}
	return bins["nginx"], nil
}

// StartNginx checks conf with `nginx -t`, starts nginx on it and waits until
// every address in waitAddrs accepts connections.
func StartNginx(ctx context.Context, log io.Writer, conf string, waitAddrs ...string) (*Nginx, error) {
	bin, err := NginxBinary(log)
	if err != nil {
		return nil, err
	}
	prefix := filepath.Dir(conf)
	if out, err := exec.CommandContext(ctx, bin, "-t", "-q", "-p", prefix, "-c", conf).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("stack: nginx -t %s: %w: %s", conf, err, tail(out))
	}
	proc, err := startProc("nginx", bin, []string{"-p", prefix, "-c", conf}, nil, prefix)
	if err != nil {
		return nil, err
	}
	n := &Nginx{Conf: conf, proc: proc}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for _, a := range waitAddrs {
		if err := waitFor(wctx, proc, "nginx", dialCheck(a)); err != nil {
			n.Stop()
			return nil, err
		}
	}
	return n, nil
}

// Pid is the master process id (its one worker is a child of it).
func (n *Nginx) Pid() int { return n.proc.Pid() }

// Stop ends nginx (SIGTERM is its fast shutdown) and its workers.
func (n *Nginx) Stop() {
	if n == nil || n.proc == nil {
		return
	}
	_ = n.proc.Stop(5 * time.Second)
}

// Server is any of our own binaries (origin, edge, worker) run as a child.
type Server struct {
	Name string
	Addr string
	proc *Proc
}

// StartServer runs bin with args and extra environment, and waits until addr
// accepts connections (when addr is not empty).
func StartServer(ctx context.Context, name, bin string, args, env []string, addr string) (*Server, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	proc, err := startProcCmd(name, cmd)
	if err != nil {
		return nil, err
	}
	s := &Server{Name: name, Addr: addr, proc: proc}
	if addr == "" {
		return s, nil
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := waitFor(wctx, proc, name, dialCheck(addr)); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Pid is the server's process id.
func (s *Server) Pid() int { return s.proc.Pid() }

// Output is what the server printed so far (bounded).
func (s *Server) Output() string { return s.proc.Output() }

// Exited reports whether the server has ended.
func (s *Server) Exited() bool { return s.proc.Exited() }

// Stop sends SIGTERM (graceful shutdown) and kills after a grace period.
func (s *Server) Stop() {
	if s == nil || s.proc == nil {
		return
	}
	_ = s.proc.Stop(10 * time.Second)
}

// Kill ends the server with SIGKILL (failure tests and demos).
func (s *Server) Kill() { s.proc.Kill() }
