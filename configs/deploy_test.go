// Package configs_test checks the deployment files against the project:
// docker-compose.yml, the Dockerfile, configs/nginx.compose.conf and the
// Kubernetes manifests in configs/k8s must name only binaries, subcommands,
// flags, environment variables, files and ports that exist, and the compose
// services must match the "Compose services" table in docs/operations.md. No Docker
// engine is needed: the binaries are built and asked for their --help.
package configs_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/novashop/edge/internal/stack"
	"github.com/novashop/edge/proxy/config"
)

// root is the repository root (this package lives in configs/).
const root = ".."

// projectImage is the image docker-compose.yml builds from the Dockerfile.
const projectImage = "novashop-edge:local"

// The services issue #6 asks for.
var requiredServices = []string{"postgres", "redis", "origin-1", "origin-2", "worker", "edge", "nginx", "loadgen"}

// The project's binaries (cmd/NAME) and their subcommands.
var subcommands = map[string][]string{
	"origin":  {"migrate", "seed", "serve", "worker"},
	"edge":    nil,
	"loadgen": {"compare", "capacity", "tune", "coherence", "attack", "report"},
}

type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Profiles []string `yaml:"profiles"`
	Restart  string   `yaml:"restart"`
}

func (s composeService) oneShot() bool { return s.Restart == "no" }

func readCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	b = interpolate(b)
	var c composeFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(false) // compose has many keys this test does not check
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(c.Services) == 0 {
		t.Fatal("docker-compose.yml: no services")
	}
	return c
}

// interpolate does what compose does with an empty environment:
// ${NAME:-default} and ${NAME-default} become the default, ${NAME} becomes
// empty, and $$ (an escaped dollar) becomes $.
func interpolate(b []byte) []byte {
	b = regexp.MustCompile(`\$\{\w+(?::?-([^}]*))?\}`).ReplaceAll(b, []byte("$1"))
	return bytes.ReplaceAll(b, []byte("$$"), []byte("$"))
}

func TestComposeNamesTheServices(t *testing.T) {
	c := readCompose(t)
	for _, name := range requiredServices {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("service %q missing", name)
		}
	}
	if lg := c.Services["loadgen"]; len(lg.Profiles) == 0 || !lg.oneShot() {
		t.Errorf("loadgen must be a one-shot (restart: \"no\") under a profile, got profiles %v restart %q", lg.Profiles, lg.Restart)
	}
	for name, s := range c.Services {
		switch {
		case s.Image == projectImage:
			if s.Build == nil {
				t.Errorf("%s: uses %s without a build section", name, projectImage)
				continue
			}
			if _, err := os.Stat(filepath.Join(root, s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("%s: build: %v", name, err)
			}
		case s.Build != nil:
			t.Errorf("%s: builds an image other than %s", name, projectImage)
		default:
			repo, tag, ok := strings.Cut(s.Image, ":")
			if !ok || tag == "" || tag == "latest" || repo == "" {
				t.Errorf("%s: third-party image %q must be pinned to a version tag", name, s.Image)
			}
		}
	}
}

// TestComposeHealthAndOrder: every long-running service has a health check
// and each dependency waits for the right condition.
func TestComposeHealthAndOrder(t *testing.T) {
	c := readCompose(t)
	for name, s := range c.Services {
		if !s.oneShot() && (s.Healthcheck == nil || len(s.Healthcheck.Test) < 2) {
			t.Errorf("%s: long-running service without a health check", name)
		}
		if s.Healthcheck != nil && len(s.Healthcheck.Test) > 1 && s.Image == projectImage {
			// The project image has busybox wget, not curl.
			if tool := s.Healthcheck.Test[1]; tool != "wget" {
				t.Errorf("%s: health check uses %q, which the image lacks", name, tool)
			}
		}
		for dep, d := range s.DependsOn {
			target, ok := c.Services[dep]
			if !ok {
				t.Errorf("%s: depends on unknown service %q", name, dep)
				continue
			}
			switch d.Condition {
			case "service_healthy":
				if target.Healthcheck == nil {
					t.Errorf("%s: waits for %s to be healthy, but it has no health check", name, dep)
				}
			case "service_completed_successfully":
				if !target.oneShot() {
					t.Errorf("%s: waits for %s to complete, but it restarts", name, dep)
				}
			default:
				t.Errorf("%s: depends on %s with condition %q; want service_healthy or service_completed_successfully", name, dep, d.Condition)
			}
		}
	}
	for _, app := range []string{"origin-1", "origin-2", "worker"} {
		if c.Services[app].DependsOn["migrate"].Condition != "service_completed_successfully" {
			t.Errorf("%s must start after migrate completed", app)
		}
	}
}

// TestComposeFilesExist: bind mounts name files in the repository, paths
// under /app/configs/ exist in configs/ (the Dockerfile copies it there),
// and named volumes are declared.
func TestComposeFilesExist(t *testing.T) {
	c := readCompose(t)
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, "./") || strings.HasPrefix(src, "../") {
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("%s: volume %q: %v", name, v, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("%s: named volume %q not declared", name, src)
			}
		}
		for _, arg := range append(append([]string(nil), s.Entrypoint...), s.Command...) {
			for _, f := range regexp.MustCompile(`/app/configs/[\w./-]+`).FindAllString(arg, -1) {
				if _, err := os.Stat(filepath.Join(root, strings.TrimPrefix(f, "/app/"))); err != nil {
					t.Errorf("%s: %s is not in the image: %v", name, f, err)
				}
			}
		}
	}
}

// invocation is one run of a project binary named in a deploy file.
type invocation struct {
	where, prog, sub string
	flags            []string
	env              []string
}

// invocations finds the project binaries a command line runs, including
// inside an `sh -c` script.
func invocations(where string, argv []string, env []string) []invocation {
	var words []string
	if len(argv) >= 3 && strings.HasSuffix(argv[0], "sh") && argv[1] == "-c" {
		for _, a := range argv[2:] {
			words = append(words, strings.FieldsFunc(a, func(r rune) bool {
				return r == ' ' || r == '\n' || r == '\t' || r == ';' || r == '(' || r == ')' || r == '$' || r == '&' || r == '|'
			})...)
		}
	} else {
		words = argv
	}
	var out []invocation
	var cur *invocation
	for i, w := range words {
		if _, ok := subcommands[w]; ok && (i == 0 || !strings.HasPrefix(words[i-1], "-")) {
			out = append(out, invocation{where: where, prog: w, env: env})
			cur = &out[len(out)-1]
			if len(subcommands[w]) > 0 && i+1 < len(words) {
				cur.sub = words[i+1]
			}
			continue
		}
		if cur != nil && strings.HasPrefix(w, "--") {
			name, _, _ := strings.Cut(strings.TrimPrefix(w, "--"), "=")
			cur.flags = append(cur.flags, name)
		}
	}
	return out
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// buildTimeout bounds the one build of the binaries. It is generous on
// purpose: from a clean clone with empty GOCACHE and GOMODCACHE the build
// downloads every module and compiles the whole tree while `go test` builds
// the race-instrumented packages beside it on the same two cores. It is the
// build's own deadline; no check's deadline may include it (see
// docs/testing.md).
const buildTimeout = 15 * time.Minute

// binaries builds cmd/origin, cmd/edge and cmd/loadgen once per test run.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "novashop-deploy-test-")
		if err != nil {
			buildErr = err
			return
		}
		binDir = dir
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator), "./cmd/origin", "./cmd/edge", "./cmd/loadgen")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as the Dockerfile builds them
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// helpText runs `prog [sub] --help` and returns what it printed.
func helpText(t *testing.T, inv invocation) (string, error) {
	t.Helper()
	args := []string{"--help"}
	if inv.sub != "" {
		args = []string{inv.sub, "--help"}
	}
	// Build first: the 20 s below is for one --help, and must not start
	// while a cold build is still running (issue 10).
	bin := filepath.Join(binaries(t), inv.prog)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s --help: %v: %s", inv.prog, inv.sub, err, firstLine(out))
	}
	return string(out), nil
}

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(string(b), "\n")
	return line
}

// checkInvocation: the binary exists, answers --help for the subcommand,
// and lists every flag and environment variable the deploy file gives it.
func checkInvocation(t *testing.T, inv invocation) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(root, "cmd", inv.prog, "main.go")); err != nil {
		t.Errorf("%s: binary %s: %v", inv.where, inv.prog, err)
		return
	}
	if subs := subcommands[inv.prog]; len(subs) > 0 && !slices.Contains(subs, inv.sub) {
		t.Errorf("%s: %s has no subcommand %q", inv.where, inv.prog, inv.sub)
		return
	}
	help, err := helpText(t, inv)
	if err != nil {
		t.Errorf("%s: %v", inv.where, err)
		return
	}
	for _, f := range inv.flags {
		if f == "help" {
			continue
		}
		if !regexp.MustCompile(`(^|\s)--?` + regexp.QuoteMeta(f) + `\b`).MatchString(help) {
			t.Errorf("%s: %s %s has no flag --%s", inv.where, inv.prog, inv.sub, f)
		}
	}
	for _, e := range inv.env {
		if !strings.Contains(help, e) && !envInSource(t, inv.prog, e) {
			t.Errorf("%s: %s %s reads no environment variable %s", inv.where, inv.prog, inv.sub, e)
		}
	}
}

// envInSource reports whether a command's sources (or the configuration it
// loads) read the environment variable name.
func envInSource(t *testing.T, prog, name string) bool {
	t.Helper()
	dirs := map[string][]string{
		"origin":  {"cmd/origin", "origin/pipeline/workercmd"},
		"edge":    {"cmd/edge", "proxy/config"},
		"loadgen": {"cmd/loadgen"},
	}[prog]
	for _, d := range dirs {
		files, _ := filepath.Glob(filepath.Join(root, d, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err == nil && bytes.Contains(b, []byte(`"`+name+`"`)) {
				return true
			}
		}
	}
	return false
}

func TestComposeCommandsExist(t *testing.T) {
	c := readCompose(t)
	seen := 0
	for name, s := range c.Services {
		if s.Image != projectImage {
			continue
		}
		var env []string
		for k := range s.Environment {
			env = append(env, k)
		}
		invs := invocations("compose "+name, append(append([]string(nil), s.Entrypoint...), s.Command...), env)
		if len(invs) == 0 {
			t.Errorf("%s: runs no project binary (command %q)", name, s.Command)
		}
		for _, inv := range invs {
			checkInvocation(t, inv)
			seen++
		}
	}
	if seen < 7 {
		t.Errorf("checked %d invocations, want at least 7 (migrate, seed, 2 origins, worker, edge, loadgen)", seen)
	}
}

// TestComposeWiring: the edge's upstreams are the origin services on their
// listen port, URLs name the compose services, secrets agree.
func TestComposeWiring(t *testing.T) {
	c := readCompose(t)
	edge := c.Services["edge"]
	var ups []string
	for _, spec := range strings.Split(edge.Environment["EDGE_UPSTREAMS"], ",") {
		name, raw, ok := strings.Cut(spec, "=")
		u, err := url.Parse(raw)
		if !ok || err != nil {
			t.Errorf("EDGE_UPSTREAMS entry %q is not NAME=URL", spec)
			continue
		}
		o, ok := c.Services[u.Hostname()]
		if !ok || name != u.Hostname() {
			t.Errorf("upstream %q does not name an origin service", spec)
			continue
		}
		if want := strings.TrimPrefix(o.Environment["ORIGIN_LISTEN"], ":"); u.Port() != want {
			t.Errorf("upstream %q: origin listens on port %s", spec, want)
		}
		if o.Environment["ORIGIN_NAME"] != name {
			t.Errorf("upstream %q: origin calls itself %q", spec, o.Environment["ORIGIN_NAME"])
		}
		ups = append(ups, name)
	}
	if !slices.Equal(ups, []string{"origin-1", "origin-2"}) {
		t.Errorf("edge upstreams %v, want origin-1 and origin-2", ups)
	}
	secret := edge.Environment["JWT_SECRET"]
	for name, s := range c.Services {
		for k, v := range s.Environment {
			switch k {
			case "DATABASE_URL", "REDIS_URL":
				u, err := url.Parse(v)
				if err != nil {
					t.Errorf("%s: %s is not a URL", name, k)
					continue
				}
				if _, ok := c.Services[u.Hostname()]; !ok {
					t.Errorf("%s: %s names host %q, not a service", name, k, u.Hostname())
				}
			case "JWT_SECRET":
				if v != secret {
					t.Errorf("%s: JWT_SECRET differs from the edge's (tokens would not verify)", name)
				}
			}
		}
	}
}

// readmeTable parses the "Compose services" table of docs/operations.md.
func readmeTable(t *testing.T) map[string][2][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := map[string][2][]string{}
	in := false
	sc := bufio.NewScanner(f)
	cell := regexp.MustCompile("`([^`]+)`")
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "### Compose services") {
			in = true
			continue
		}
		if in && strings.HasPrefix(line, "#") {
			break
		}
		if !in || !strings.HasPrefix(line, "| `") {
			continue
		}
		cols := strings.Split(strings.Trim(line, "|"), "|")
		if len(cols) != 3 {
			t.Fatalf("docs/operations.md row %q: want 3 columns", line)
		}
		var parsed [3][]string
		for i, col := range cols {
			for _, m := range cell.FindAllStringSubmatch(col, -1) {
				parsed[i] = append(parsed[i], m[1])
			}
		}
		if len(parsed[0]) != 1 {
			t.Fatalf("docs/operations.md row %q: no service name", line)
		}
		rows[parsed[0][0]] = [2][]string{parsed[1], parsed[2]}
	}
	if len(rows) == 0 {
		t.Fatal("docs/operations.md has no Compose services table")
	}
	return rows
}

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}

func TestComposeMatchesReadme(t *testing.T) {
	c := readCompose(t)
	rows := readmeTable(t)
	for name, s := range c.Services {
		row, ok := rows[name]
		if !ok {
			t.Errorf("service %s is not in the Compose services table of docs/operations.md", name)
			continue
		}
		if got, want := sorted(s.Ports), sorted(row[0]); !slices.Equal(got, want) {
			t.Errorf("%s: ports %v, docs/operations.md says %v", name, got, want)
		}
		var env []string
		for k := range s.Environment {
			env = append(env, k)
		}
		if got, want := sorted(env), sorted(row[1]); !slices.Equal(got, want) {
			t.Errorf("%s: environment %v, docs/operations.md says %v", name, got, want)
		}
	}
	for name := range rows {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("docs/operations.md lists service %s, which the compose file lacks", name)
		}
	}
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)(?:\s+AS\s+(\S+))?`).FindAllStringSubmatch(df, -1)
	if len(froms) < 2 || froms[0][2] == "" {
		t.Fatalf("want a multi-stage build with a named build stage, got %v", froms)
	}
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/origin", "./cmd/edge", "./cmd/loadgen", "COPY --from=" + froms[0][2]} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	users := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindAllStringSubmatch(df, -1)
	if len(users) == 0 {
		t.Fatal("Dockerfile sets no USER: the image would run as root")
	}
	if u := users[len(users)-1][1]; strings.HasPrefix(u, "0") || strings.HasPrefix(u, "root") {
		t.Errorf("final USER %s is root", u)
	}
	// The builder's Go must be the go directive's major.minor.
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goDirective := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	argGo := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\S+)`).FindStringSubmatch(df)
	if goDirective == nil || argGo == nil || !strings.HasPrefix(argGo[1], string(goDirective[1])) {
		t.Errorf("Dockerfile GO_VERSION %v does not match go.mod's go %s", argGo, goDirective)
	}
	for _, m := range regexp.MustCompile(`(?m)^COPY\s+([^-\s]\S*)(?:\s+(\S+))?\s+\S+$`).FindAllStringSubmatch(df, -1) {
		for _, src := range m[1:3] {
			if src == "" || src == "." {
				continue
			}
			if _, err := os.Stat(filepath.Join(root, src)); err != nil {
				t.Errorf("Dockerfile copies %s: %v", src, err)
			}
		}
	}
	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(ignore), "\n")
	for _, want := range []string{".git", "bin"} {
		if !slices.Contains(lines, want) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
	for _, keep := range []string{"configs", "origin", "go.mod", "go.sum", "cmd", "*.html", "*.tmpl", "*.sql"} {
		if slices.Contains(lines, keep) || slices.Contains(lines, "**/"+keep) {
			t.Errorf(".dockerignore excludes %s, which the build needs", keep)
		}
	}
}

// TestNginxComposeConf: the upstreams are the origin services, the listen
// ports are the ones compose publishes, and nginx itself accepts the file.
func TestNginxComposeConf(t *testing.T) {
	c := readCompose(t)
	b, err := os.ReadFile(filepath.Join(root, "configs", "nginx.compose.conf"))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	var servers []string
	for _, m := range regexp.MustCompile(`(?m)^\s*server\s+([\w.-]+:\d+)`).FindAllStringSubmatch(conf, -1) {
		servers = append(servers, m[1])
	}
	if !slices.Equal(servers, []string{"origin-1:8000", "origin-2:8000"}) {
		t.Errorf("nginx upstream servers %v, want origin-1:8000 and origin-2:8000", servers)
	}
	var listens []string
	for _, m := range regexp.MustCompile(`(?m)^\s*listen\s+(\d+)[\s;]`).FindAllStringSubmatch(conf, -1) {
		listens = append(listens, m[1])
	}
	var published []string
	for _, p := range c.Services["nginx"].Ports {
		published = append(published, p[strings.LastIndex(p, ":")+1:])
	}
	if !slices.Equal(sorted(listens), sorted(published)) {
		t.Errorf("nginx listens on %v, compose publishes %v", listens, published)
	}
	mounted := false
	for _, v := range c.Services["nginx"].Volumes {
		if strings.HasPrefix(v, "./configs/nginx.compose.conf:") {
			mounted = true
		}
	}
	if !mounted {
		t.Error("compose does not mount configs/nginx.compose.conf into nginx")
	}

	// `nginx -t` on a copy whose names and paths exist on this machine.
	bins, err := stack.Ensure(os.Stderr, "nginx")
	if err != nil {
		t.Fatalf("nginx: %v", err)
	}
	dir := t.TempDir()
	local := strings.NewReplacer("origin-1:", "127.0.0.1:", "origin-2:", "127.0.0.1:", "/tmp/", dir+"/").Replace(conf)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bins["nginx"], "-t", "-q", "-p", dir, "-c", path).CombinedOutput()
	if err != nil {
		t.Errorf("nginx -t rejects configs/nginx.compose.conf: %v\n%s", err, out)
	}
}

// k8sObject is the part of a manifest the checks read.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Selector map[string]any `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
		Template struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	Containers []struct {
		Name    string   `yaml:"name"`
		Image   string   `yaml:"image"`
		Command []string `yaml:"command"`
		Args    []string `yaml:"args"`
		Env     []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom *struct {
				SecretKeyRef *struct {
					Name string `yaml:"name"`
					Key  string `yaml:"key"`
				} `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		ReadinessProbe *struct {
			HTTPGet *struct {
				Path string `yaml:"path"`
				Port any    `yaml:"port"`
			} `yaml:"httpGet"`
		} `yaml:"readinessProbe"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	} `yaml:"containers"`
	Volumes []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
	} `yaml:"volumes"`
}

// readManifests parses every document of the kustomization's resources.
func readManifests(t *testing.T) map[string]k8sObject {
	t.Helper()
	dir := filepath.Join(root, "configs", "k8s")
	kb, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var kust struct {
		Kind      string   `yaml:"kind"`
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal(kb, &kust); err != nil || kust.Kind != "Kustomization" {
		t.Fatalf("kustomization.yaml: kind %q, %v", kust.Kind, err)
	}
	objs := map[string]k8sObject{}
	for _, res := range append(kust.Resources, "secret.example.yaml", "loadgen-job.yaml") {
		b, err := os.ReadFile(filepath.Join(dir, res))
		if err != nil {
			t.Errorf("kustomization resource: %v", err)
			continue
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var o k8sObject
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", res, err)
			}
			if o.Kind == "" {
				continue // a document of comments only
			}
			if o.APIVersion == "" || o.Metadata.Name == "" {
				t.Errorf("%s: %s without apiVersion or name", res, o.Kind)
			}
			key := o.Kind + "/" + o.Metadata.Name
			if _, dup := objs[key]; dup {
				t.Errorf("%s: %s defined twice", res, key)
			}
			objs[key] = o
		}
	}
	return objs
}

// Every HorizontalPodAutoscaler scales a Deployment the manifests define,
// within sane bounds.
func TestKubernetesAutoscalers(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "configs", "k8s", "scaling.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs := readManifests(t)
	dec := yaml.NewDecoder(bytes.NewReader(b))
	n := 0
	for {
		var o struct {
			Kind string `yaml:"kind"`
			Spec struct {
				ScaleTargetRef struct{ Kind, Name string } `yaml:"scaleTargetRef"`
				MinReplicas    int                         `yaml:"minReplicas"`
				MaxReplicas    int                         `yaml:"maxReplicas"`
			} `yaml:"spec"`
		}
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if o.Kind != "HorizontalPodAutoscaler" {
			continue
		}
		n++
		ref := o.Spec.ScaleTargetRef
		if _, ok := objs[ref.Kind+"/"+ref.Name]; !ok || ref.Kind != "Deployment" {
			t.Errorf("autoscaler targets %s/%s, which the manifests do not define", ref.Kind, ref.Name)
		}
		if o.Spec.MinReplicas < 1 || o.Spec.MaxReplicas < o.Spec.MinReplicas {
			t.Errorf("autoscaler %s: replicas %d..%d", ref.Name, o.Spec.MinReplicas, o.Spec.MaxReplicas)
		}
	}
	if n == 0 {
		t.Fatal("scaling.yaml holds no autoscaler")
	}
}

func TestKubernetesManifests(t *testing.T) {
	objs := readManifests(t)
	for _, want := range []string{"Namespace/novashop", "ConfigMap/edge-config", "Secret/novashop-secrets", "Job/migrate", "Job/loadgen-shards", "Job/loadgen-merge", "NetworkPolicy/edge-admin", "HorizontalPodAutoscaler/edge", "PodDisruptionBudget/edge",
		"Deployment/edge", "Service/edge", "Deployment/origin-1", "Service/origin-1", "Deployment/origin-2",
		"Service/origin-2", "Deployment/worker"} {
		if _, ok := objs[want]; !ok {
			t.Errorf("manifests lack %s", want)
		}
	}
	secretKeys := map[string]bool{}
	for k := range objs["Secret/novashop-secrets"].Data {
		secretKeys[k] = true
	}
	for key, o := range objs {
		if o.Kind != "Deployment" && o.Kind != "Job" {
			continue
		}
		for _, ctr := range o.Spec.Template.Spec.Containers {
			if ctr.Image != "novashop-edge" {
				// A third-party image (Redis) is pinned, as in compose.
				if repo, tag, ok := strings.Cut(ctr.Image, ":"); !ok || repo == "" || tag == "" || tag == "latest" || strings.Contains(ctr.Image, "novashop") {
					t.Errorf("%s: image %q: the project's image is novashop-edge (set by kustomization images), a third-party one is pinned to a version tag", key, ctr.Image)
				}
			}
			var env []string
			for _, e := range ctr.Env {
				env = append(env, e.Name)
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name != "novashop-secrets" {
					t.Errorf("%s: %s from unknown secret %q", key, e.Name, e.ValueFrom.SecretKeyRef.Name)
				}
				if e.Name == "JWT_SECRET" && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Key != "jwt-secret") {
					t.Errorf("%s: JWT_SECRET must come from the novashop-secrets key jwt-secret", key)
				}
			}
			env = slices.DeleteFunc(env, func(s string) bool { return s == "WORKER_CONSUMER" && key != "Deployment/worker" })
			for _, inv := range invocations("k8s "+key, append(append([]string(nil), ctr.Command...), ctr.Args...), env) {
				checkInvocation(t, inv)
			}
		}
	}
	// The edge: readiness on the admin /readyz, at the port its
	// configuration listens on; config from the ConfigMap it mounts.
	edge := objs["Deployment/edge"].Spec.Template.Spec
	if len(edge.Containers) != 1 {
		t.Fatalf("edge pod has %d containers", len(edge.Containers))
	}
	ec := edge.Containers[0]
	ports := map[string]int{}
	for _, p := range ec.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ec.ReadinessProbe == nil || ec.ReadinessProbe.HTTPGet == nil || ec.ReadinessProbe.HTTPGet.Path != "/readyz" || ec.ReadinessProbe.HTTPGet.Port != "admin" {
		t.Errorf("edge readiness probe must GET /readyz on the admin port (it turns 503 while draining)")
	}
	cm := objs["ConfigMap/edge-config"].Data["edge.yaml"]
	cfg, err := config.Decode([]byte(cm))
	if err != nil {
		t.Fatalf("edge-config edge.yaml: %v", err)
	}
	cfg.Cache.RedisURL = "redis://redis:6379/0" // REDIS_URL from the Secret
	if err := cfg.Validate(); err != nil {
		t.Errorf("edge-config edge.yaml is invalid: %v", err)
	}
	// The admin port is off loopback: the edge starts only with its token,
	// which comes from the Secret.
	hasToken := false
	for _, e := range ec.Env {
		if e.Name == cfg.Admin.TokenEnv && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Key == "admin-token" {
			hasToken = true
		}
	}
	if !hasToken && !cfg.Admin.Insecure {
		t.Errorf("edge: admin_listen %s needs %s from the novashop-secrets key admin-token", cfg.AdminListen, cfg.Admin.TokenEnv)
	}
	if want := fmt.Sprintf(":%d", ports["admin"]); cfg.AdminListen != want {
		t.Errorf("edge admin listens on %q, the pod's admin port is %s", cfg.AdminListen, want)
	}
	if want := fmt.Sprintf(":%d", ports["http"]); cfg.Listen != want {
		t.Errorf("edge listens on %q, the pod's http port is %s", cfg.Listen, want)
	}
	if !slices.Contains(ec.Args, "/etc/novashop/edge.yaml") || len(ec.VolumeMounts) == 0 || ec.VolumeMounts[0].MountPath != "/etc/novashop" ||
		len(edge.Volumes) == 0 || edge.Volumes[0].ConfigMap == nil || edge.Volumes[0].ConfigMap.Name != "edge-config" {
		t.Errorf("edge must read /etc/novashop/edge.yaml from the edge-config ConfigMap")
	}
	// Every upstream is an origin Service on the port its pods listen on.
	for _, u := range cfg.Upstreams {
		pu, err := url.Parse(u.URL)
		if err != nil {
			t.Errorf("upstream %q: %v", u.URL, err)
			continue
		}
		svc, ok := objs["Service/"+pu.Hostname()]
		if !ok {
			t.Errorf("upstream %s names no Service", u.URL)
			continue
		}
		if len(svc.Spec.Ports) == 0 || fmt.Sprint(svc.Spec.Ports[0].Port) != pu.Port() {
			t.Errorf("upstream %s: Service %s ports %v", u.URL, pu.Hostname(), svc.Spec.Ports)
		}
	}
	for _, key := range []string{"database-url", "redis-url", "jwt-secret", "admin-token"} {
		if !secretKeys[key] {
			// stringData is what the example uses; Data is empty then.
			b, _ := os.ReadFile(filepath.Join(root, "configs", "k8s", "secret.example.yaml"))
			if !bytes.Contains(b, []byte(key+":")) {
				t.Errorf("secret.example.yaml lacks %s", key)
			}
		}
	}
}
