package nginxconf

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
)

// Template is the nginx.conf template, identical to configs/nginx.conf.
//
//go:embed nginx.conf.tmpl
var Template string

var nameRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]*$`)

var tmpl = template.Must(template.New("nginx.conf").Parse(Template))

// ErrInvalidParams is returned by Render when Params cannot produce a
// working nginx.conf; the wrapped message names every bad field.
var ErrInvalidParams = errors.New("nginxconf: invalid params")

// Params are the values the template needs. Every path must be absolute so
// the file works whatever nginx's -p prefix is.
type Params struct {
	// Listen is the host:port of the plain round-robin reverse proxy.
	Listen string
	// CacheListen is the host:port of the proxy_cache variant; empty leaves
	// that server (and the cache zone) out of the file.
	CacheListen string
	// Upstreams are the origins as host:port, balanced round-robin.
	Upstreams []string
	// CacheDir holds proxy_cache entries; required when CacheListen is set.
	CacheDir string
	// PidFile is where nginx writes its pid.
	PidFile string
	// ErrorLog is the error log file, or "stderr".
	ErrorLog string
	// TempDir holds every nginx temp directory (client bodies, proxy
	// buffers), so nothing is written under root-owned defaults.
	TempDir string
	// User is the worker's user. nginx started as root otherwise drops its
	// worker to "nobody", which cannot write CacheDir and TempDir when the
	// launcher made them; empty means "root" when this process runs as
	// root (nginx is normally started by the same process), else nothing.
	User string
}

// Validate reports every problem with p at once.
func (p Params) Validate() error {
	var probs []string
	hostPort := func(field, v string) {
		if strings.ContainsAny(v, " \t\n;{}\"'") {
			probs = append(probs, fmt.Sprintf("%s %q contains a character nginx would misread", field, v))
			return
		}
		_, port, err := net.SplitHostPort(v)
		switch {
		case err != nil || port == "":
			probs = append(probs, fmt.Sprintf("%s %q is not host:port", field, v))
		case port == "0":
			// nginx cannot pick a free port itself; the launcher must.
			probs = append(probs, fmt.Sprintf("%s %q needs an explicit port, nginx refuses port 0", field, v))
		}
	}
	path := func(field, v string) {
		switch {
		case v == "":
			probs = append(probs, field+" is empty")
		case strings.ContainsAny(v, " \t\n;{}\"'"):
			probs = append(probs, fmt.Sprintf("%s %q contains a character nginx would misread", field, v))
		case !filepath.IsAbs(v):
			probs = append(probs, fmt.Sprintf("%s %q is not an absolute path", field, v))
		}
	}
	hostPort("Listen", p.Listen)
	if p.CacheListen != "" {
		hostPort("CacheListen", p.CacheListen)
		path("CacheDir", p.CacheDir)
	}
	if len(p.Upstreams) == 0 {
		probs = append(probs, "Upstreams is empty")
	}
	for i, u := range p.Upstreams {
		hostPort(fmt.Sprintf("Upstreams[%d]", i), u)
	}
	path("PidFile", p.PidFile)
	if p.ErrorLog != "stderr" {
		path("ErrorLog", p.ErrorLog)
	}
	path("TempDir", p.TempDir)
	if p.User != "" && !nameRE.MatchString(p.User) {
		probs = append(probs, fmt.Sprintf("User %q is not a user name", p.User))
	}
	if len(probs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidParams, strings.Join(probs, "; "))
	}
	return nil
}

// Render writes a complete nginx.conf for p to w. It validates p first so a
// bad value fails here with a clear message rather than in nginx at start-up.
func Render(w io.Writer, p Params) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if p.User == "" && os.Geteuid() == 0 {
		p.User = "root"
	}
	if err := tmpl.Execute(w, p); err != nil {
		return fmt.Errorf("nginxconf: render: %w", err)
	}
	return nil
}
