package stack

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a throwaway PostgreSQL server in a temporary directory,
// listening on 127.0.0.1 only. Durability is switched off (fsync=off):
// it exists for tests and demos, never for data anyone keeps.
type Postgres struct {
	// URL connects as the superuser "postgres" to database "postgres".
	URL  string
	Port int
	Dir  string
	proc *Proc
}

// StartPostgres installs PostgreSQL when missing, runs initdb in a new
// temporary directory and starts the server. As root the server runs as the
// "postgres" system user, because PostgreSQL refuses to run as root.
func StartPostgres(ctx context.Context, log io.Writer) (*Postgres, error) {
	bins, err := Ensure(log, "initdb", "postgres")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "novashop-pg-")
	if err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	var cred *syscall.Credential
	if isRoot() {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("stack: running as root needs the postgres system user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("stack: %w", err)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, bins["initdb"], "-D", data, "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("stack: initdb: %w: %s", err, tail(out))
	}
	port, err := FreePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	args := []string{"-D", data, "-p", itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=128MB",
		"-c", "logging_collector=off"}
	proc, err := startProc("postgres", bins["postgres"], args, cred, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	pg := &Postgres{
		URL:  fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port),
		Port: port, Dir: dir, proc: proc,
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := waitFor(wctx, proc, "postgres", func() error {
		c, err := pgx.Connect(wctx, pg.URL)
		if err != nil {
			return err
		}
		return c.Close(wctx)
	}); err != nil {
		pg.Stop()
		return nil, err
	}
	return pg, nil
}

// DatabaseURL returns the URL of database name on this server.
func (p *Postgres) DatabaseURL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, name)
}

// Stop ends the server and removes its directory.
func (p *Postgres) Stop() {
	if p == nil {
		return
	}
	// SIGTERM is PostgreSQL's "smart" shutdown, which waits for clients;
	// SIGINT is "fast" shutdown, which is what a throwaway server wants.
	if p.proc != nil && !p.proc.Exited() {
		_ = p.proc.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-p.proc.done:
		case <-time.After(10 * time.Second):
			p.proc.Kill()
		}
	}
	os.RemoveAll(p.Dir)
}

// Pid is the postmaster's process id (its backends are its children).
func (p *Postgres) Pid() int { return p.proc.Pid() }
