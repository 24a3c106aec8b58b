package stack

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
)

// ErrMissingBinary means a server binary is not installed and could not be
// installed (not root, or apt-get failed). Install the named Debian package.
var ErrMissingBinary = errors.New("stack: missing binary")

// Debian package that provides each binary the stack starts.
var debianPackage = map[string]string{
	"initdb":       "postgresql",
	"postgres":     "postgresql",
	"redis-server": "redis-server",
	"nginx":        "nginx",
	"chromium":     "chromium",
	"wrk":          "wrk",
	"promtool":     "prometheus",
	"pebble":       "pebble",
	"haproxy":      "haproxy",
	"node":         "nodejs",
	"npm":          "npm",
	"varnishd":     "varnish",
	// busybox runs the Kubernetes preStop hook's script with the same wget
	// the Alpine image has (configs/k8s_strict_test.go).
	"busybox": "busybox",
	"h2load":  "nghttp2-client",
}

var aptMu sync.Mutex

// lookPostgres finds a PostgreSQL server binary: on PATH first, then in
// Debian's versioned directory (/usr/lib/postgresql/NN/bin), newest first,
// because Debian does not put initdb and postgres on PATH.
func lookPostgres(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, true
		}
	}
	return "", false
}

func look(name string) (string, bool) {
	switch name {
	case "initdb", "postgres", "pg_ctl":
		return lookPostgres(name)
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	for _, d := range []string{"/usr/sbin", "/usr/bin", "/sbin"} {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
	}
	return "", false
}

// Ensure returns the path of each named binary, installing the Debian
// packages of the missing ones with apt-get (once, under a machine-wide file
// lock so parallel test binaries do not race). It says what it installs on
// one line of w.
func Ensure(w io.Writer, names ...string) (map[string]string, error) {
	paths := map[string]string{}
	var missing []string
	for _, n := range names {
		if p, ok := look(n); ok {
			paths[n] = p
		} else {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return paths, nil
	}
	if err := install(w, missing); err != nil {
		return nil, err
	}
	for _, n := range missing {
		p, ok := look(n)
		if !ok {
			return nil, fmt.Errorf("%w: %s still missing after installing %s", ErrMissingBinary, n, debianPackage[n])
		}
		paths[n] = p
	}
	return paths, nil
}

func install(w io.Writer, names []string) error {
	aptMu.Lock()
	defer aptMu.Unlock()
	seen := map[string]bool{}
	var pkgs []string
	for _, n := range names {
		p := debianPackage[n]
		if p == "" {
			p = n
		}
		if !seen[p] {
			seen[p] = true
			pkgs = append(pkgs, p)
		}
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: %v; install with: sudo apt-get install -y %v", ErrMissingBinary, names, pkgs)
	}
	// A file lock serialises apt-get across the test binaries that go test
	// runs in parallel; the second one finds the packages installed.
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "novashop-apt.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("stack: apt lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("stack: apt lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck
	still := pkgs[:0:0]
	for _, n := range names {
		if _, ok := look(n); !ok {
			p := debianPackage[n]
			if p == "" {
				p = n
			}
			still = append(still, p)
		}
	}
	if len(still) == 0 {
		return nil
	}
	fmt.Fprintf(w, "stack: installing Debian packages %v (apt-get)\n", still)
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	up := exec.Command("apt-get", "update", "-qq")
	up.Env = env
	if out, err := up.CombinedOutput(); err != nil {
		return fmt.Errorf("stack: apt-get update: %w: %s", err, tail(out))
	}
	args := append([]string{"install", "-y", "-qq"}, still...)
	in := exec.Command("apt-get", args...)
	in.Env = env
	if out, err := in.CombinedOutput(); err != nil {
		return fmt.Errorf("stack: apt-get install %v: %w: %s", still, err, tail(out))
	}
	return nil
}

func tail(b []byte) string {
	if len(b) > 600 {
		b = b[len(b)-600:]
	}
	return string(b)
}
