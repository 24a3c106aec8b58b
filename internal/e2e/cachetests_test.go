package e2e

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/novashop/edge/internal/stack"
	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/proxy/config"
)

// The independent HTTP cache conformance suite (github.com/http-tests/
// cache-tests, the suite behind cache-tests.fyi), as published on npm. The
// version is pinned and the tarball checked against the registry's sha512
// integrity for that version, so a changed package cannot move the figures.
const (
	cacheTestsVersion   = "0.4.5"
	cacheTestsIntegrity = "sha512-DjuwN9nUZXLTW+wav1LRESCZNVxl8SshwOy4z1pxuWbWt5/ay6sM9QQ1lebBaDO6P1IMBoK6mdf+PuVP/QNL8A=="
)

// cacheTestsFloor is the least number of the suite's required tests the edge
// must pass (of 165 in this version; docs/cache-rfc.md lists the ones it
// fails and why). 146 measured on both I/O cores after the fixes of issue
// 14, 149 on the goroutine core after the Age change (the target:
// 145).
const cacheTestsFloor = 145

var (
	cacheTestsOnce sync.Once
	cacheTestsPkg  string
	cacheTestsErr  error
)

// cacheTestsPackage returns the directory of the installed http-cache-tests
// package, installing it once per user cache (~/.cache/novashop-edge) with
// its own generous deadline, before any timed part of a test.
func cacheTestsPackage(t *testing.T) string {
	t.Helper()
	cacheTestsOnce.Do(func() { cacheTestsPkg, cacheTestsErr = installCacheTests() })
	if cacheTestsErr != nil {
		t.Fatalf("http-cache-tests %s could not be installed: %v", cacheTestsVersion, cacheTestsErr)
	}
	return cacheTestsPkg
}

func installCacheTests() (string, error) {
	bins, err := stack.Ensure(os.Stderr, "node", "npm")
	if err != nil {
		return "", err
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	root := filepath.Join(base, "novashop-edge", "http-cache-tests-"+cacheTestsVersion)
	pkg := filepath.Join(root, "node_modules", "http-cache-tests")
	if b, err := os.ReadFile(filepath.Join(pkg, "package.json")); err == nil &&
		bytes.Contains(b, []byte(`"version": "`+cacheTestsVersion+`"`)) {
		return pkg, nil
	}
	if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(root), ".http-cache-tests-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	npm := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, bins["npm"], args...)
		cmd.Dir = tmp
		out, err := cmd.Output()
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				return nil, fmt.Errorf("npm %s: %w\n%s", strings.Join(args, " "), err, ee.Stderr)
			}
			return nil, fmt.Errorf("npm %s: %w", strings.Join(args, " "), err)
		}
		return out, nil
	}
	out, err := npm("pack", "--silent", "http-cache-tests@"+cacheTestsVersion)
	if err != nil {
		return "", err
	}
	tgz := filepath.Join(tmp, strings.TrimSpace(string(out)))
	b, err := os.ReadFile(tgz)
	if err != nil {
		return "", err
	}
	sum := sha512.Sum512(b)
	if got := "sha512-" + base64.StdEncoding.EncodeToString(sum[:]); got != cacheTestsIntegrity {
		return "", fmt.Errorf("%s has integrity %s, want %s", filepath.Base(tgz), got, cacheTestsIntegrity)
	}
	// Its dependencies (liquidjs, node-fetch) come from the registry with
	// npm's own integrity checks; no install scripts run.
	if _, err := npm("install", "--silent", "--no-save", "--no-audit", "--no-fund", "--ignore-scripts",
		"--omit=dev", "--prefix", filepath.Join(tmp, "root"), tgz); err != nil {
		return "", err
	}
	// Rename into place: a concurrent test binary sees all of it or none.
	_ = os.RemoveAll(root)
	if err := os.Rename(filepath.Join(tmp, "root"), root); err != nil {
		if _, serr := os.Stat(filepath.Join(pkg, "package.json")); serr == nil {
			return pkg, nil // another binary won the race
		}
		return "", err
	}
	return pkg, nil
}

// cacheTest is one test of the suite as cachetests-list.mjs prints it.
type cacheTest struct {
	ID          string   `json:"id"`
	Suite       string   `json:"suite"`
	Name        string   `json:"name"`
	Kind        string   `json:"kind"`
	DependsOn   []string `json:"depends_on"`
	BrowserOnly bool     `json:"browser_only"`
}

// cacheTestsRun is a graded run: the grade of every test the CLI runs.
type cacheTestsRun struct {
	tests  []cacheTest
	grade  map[string]string
	detail map[string]string
}

// Grades, as the suite's lib/display.mjs determineTestResult names them.
const (
	gradePass       = "pass"
	gradeFail       = "fail"
	gradeOptFail    = "optional-fail"
	gradeYes        = "yes"
	gradeNo         = "no"
	gradeSetup      = "setup-fail"
	gradeRetry      = "retry"
	gradeDependency = "dependency-fail"
	gradeUntested   = "untested"
)

// counts returns how many tests of kind there are and how many passed
// (pass or yes).
func (r *cacheTestsRun) counts(kind string) (passed, total int) {
	for _, c := range r.tests {
		if c.Kind != kind || c.BrowserOnly {
			continue
		}
		total++
		if g := r.grade[c.ID]; g == gradePass || g == gradeYes {
			passed++
		}
	}
	return passed, total
}

// table is the per-test results, one line each, grouped by suite.
func (r *cacheTestsRun) table() string {
	var b strings.Builder
	suite := ""
	for _, c := range r.tests {
		if c.BrowserOnly {
			continue
		}
		if c.Suite != suite {
			suite = c.Suite
			fmt.Fprintf(&b, "\n## %s\n", suite)
		}
		fmt.Fprintf(&b, "%-15s %-8s %s", r.grade[c.ID], c.Kind, c.ID)
		if d := r.detail[c.ID]; d != "" && r.grade[c.ID] != gradePass && r.grade[c.ID] != gradeYes {
			fmt.Fprintf(&b, "  (%s)", d)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// summary is the one-line figure the docs quote.
func (r *cacheTestsRun) summary() string {
	rp, rt := r.counts("required")
	op, ot := r.counts("optimal")
	cp, ct := r.counts("check")
	return fmt.Sprintf("required %d/%d passed, optimal %d/%d, checks yes %d/%d", rp, rt, op, ot, cp, ct)
}

// runCacheTests runs the suite's client (cli.mjs: every test, 100 at a time)
// against base and grades the results as the suite's own display does: a
// test whose dependencies did not pass is a dependency failure, a "Setup"
// result a setup failure (or a retry the client saw), and otherwise pass or
// fail by the test's kind.
func runCacheTests(t *testing.T, pkg, base string) *cacheTestsRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	list := exec.CommandContext(ctx, "node", filepath.Join(moduleRoot(t), "internal", "e2e", "testdata", "cachetests-list.mjs"), pkg)
	out, err := list.Output()
	if err != nil {
		t.Fatalf("list the suite's tests: %v", err)
	}
	var r cacheTestsRun
	if err := json.Unmarshal(out, &r.tests); err != nil {
		t.Fatalf("the suite's test list: %v", err)
	}
	cli := exec.CommandContext(ctx, "node", "--no-warnings", "cli.mjs")
	cli.Dir = pkg
	// cli.mjs reads npm's config variables; an empty id runs every test.
	cli.Env = append(os.Environ(), "npm_config_base="+base, "npm_config_id=", "npm_package_config_id=")
	var stderr bytes.Buffer
	cli.Stderr = &stderr
	out, err = cli.Output()
	if err != nil {
		t.Fatalf("cache-tests client: %v\n%s", err, tailString(stderr.String(), 2000))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatalf("cache-tests results (%v): %s\n%s", err, tailString(string(out), 500), tailString(stderr.String(), 2000))
	}
	byID := map[string]cacheTest{}
	for _, c := range r.tests {
		byID[c.ID] = c
	}
	r.grade, r.detail = map[string]string{}, map[string]string{}
	var grade func(id string, depth int) string
	grade = func(id string, depth int) string {
		if g, ok := r.grade[id]; ok {
			return g
		}
		c := byID[id]
		res, ok := raw[id]
		g := gradeUntested
		switch {
		case !ok || depth > 10:
		default:
			var passed bool
			_ = json.Unmarshal(res, &passed)
			var arr []string
			_ = json.Unmarshal(res, &arr)
			if len(arr) == 2 {
				r.detail[id] = arr[1]
			}
			for _, d := range c.DependsOn {
				if dg := grade(d, depth+1); dg != gradePass && dg != gradeYes {
					g = gradeDependency
				}
			}
			switch {
			case g == gradeDependency:
			case len(arr) == 2 && arr[0] == "Setup" && arr[1] == "retry":
				g = gradeRetry
			case len(arr) == 2 && arr[0] == "Setup":
				g = gradeSetup
			case c.Kind == "required":
				g = map[bool]string{true: gradePass, false: gradeFail}[passed]
			case c.Kind == "optimal":
				g = map[bool]string{true: gradePass, false: gradeOptFail}[passed]
			default:
				g = map[bool]string{true: gradeYes, false: gradeNo}[passed]
			}
		}
		r.grade[id] = g
		return g
	}
	for _, c := range r.tests {
		grade(c.ID, 0)
	}
	// The run must have run: every test that is not browser-only has a result.
	missing := 0
	for _, c := range r.tests {
		if !c.BrowserOnly && r.grade[c.ID] == gradeUntested {
			missing++
		}
	}
	if missing > 0 || len(r.tests) == 0 {
		t.Fatalf("cache-tests: %d of %d tests have no result\n%s", missing, len(r.tests), tailString(stderr.String(), 2000))
	}
	return &r
}

// startCacheTestsServer runs the suite's own origin server (server/
// server.mjs, what `npm run server` starts) from its package directory,
// which it serves files from, on a free port.
func startCacheTestsServer(t *testing.T, pkg string) string {
	t.Helper()
	addr := freeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	env := []string{"npm_config_protocol=http", "npm_config_port=" + port,
		"npm_config_pidfile=" + filepath.Join(t.TempDir(), "server.pid")}
	// node has no flag for its working directory; exec keeps the pid.
	p := &proc{name: "cache-tests-server", bin: "/bin/sh", addr: addr, env: env,
		args: []string{"-c", `cd "$1" && exec node --no-warnings server/server.mjs`, "sh", pkg}}
	p.restart(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- %s output (tail) ---\n%s", p.name, tailString(p.output(), 3000))
		}
		p.stop()
	})
	return addr
}

// logCacheTests logs the figures, and the whole table when CONFORMANCE_TABLE
// is set (make conformance).
func logCacheTests(t *testing.T, who string, r *cacheTestsRun) {
	t.Helper()
	if os.Getenv("CONFORMANCE_TABLE") != "" {
		t.Logf("http-cache-tests %s, %s:\n%s", cacheTestsVersion, who, r.table())
	}
	t.Logf("http-cache-tests %s against %s: %s", cacheTestsVersion, who, r.summary())
}

// TestCacheTestsSuite runs the independent HTTP cache conformance suite
// against the edge with its default settings (cache on, a Redis of its own),
// the suite's server as its only origin, and asserts a floor on the required
// tests it passes. The same run against nginx's proxy_cache (the demo's peer
// configuration) is TestCacheTestsSuiteNginx.
func TestCacheTestsSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("installs and runs the http-cache-tests suite")
	}
	pkg := cacheTestsPackage(t)
	redis := testenv.FreshRedis(t)
	origin := startCacheTestsServer(t, pkg)
	addr, admin := freeAddr(t), freeAddr(t)
	// Defaults but for the addresses, the active health check's path (the
	// suite's server has no /healthz; a file it serves stands in) and
	// cache.redis_timeout. The client starts 100 tests at once; on the shared
	// two-core machine (load 12-15 with other test binaries) the default
	// 50 ms Redis deadline was missed now and then, and a lone timeout passes
	// its request to the origin by design (docs/configuration.md), which the
	// suite reads as "not from cache": 135-138 of 165 with 50 ms against 146
	// with 1 s on the same build. The suite is about HTTP semantics, not
	// about the machine's scheduling, so the deadline is generous here.
	conf := filepath.Join(t.TempDir(), "edge.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("listen: %q\nadmin_listen: %q\nhealth: {path: /index.html}\ncache: {redis_timeout: 1s}\n"+
		"upstreams:\n  - {name: cache-tests, url: \"http://%s\"}\n", addr, admin, origin)), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &shop{t: t}
	s.start("edge", "edge", addr, []string{"--config", conf, "--redis-url", redis.URL})
	r := runCacheTests(t, pkg, "http://"+addr)
	logCacheTests(t, "the edge (io "+ioCore()+")", r)
	if passed, total := r.counts("required"); passed < cacheTestsFloor {
		var failed []string
		for _, c := range r.tests {
			if c.Kind == "required" && !c.BrowserOnly && r.grade[c.ID] != gradePass {
				failed = append(failed, c.ID+" ("+r.grade[c.ID]+": "+r.detail[c.ID]+")")
			}
		}
		sort.Strings(failed)
		t.Errorf("the edge passes %d of %d required cache tests, want at least %d; not passed:\n%s",
			passed, total, cacheTestsFloor, strings.Join(failed, "\n"))
	}
}

// TestCacheTestsSuiteNginx runs the suite against nginx's proxy_cache with
// the demo's peer configuration and logs its figures (docs/cache-rfc.md)
// without a floor: it is the comparison, not the product. It fails only when
// the run itself fails. nginx does not depend on the edge's I/O core, so it
// runs once, on the default core's pass of make test.
func TestCacheTestsSuiteNginx(t *testing.T) {
	if testing.Short() {
		t.Skip("installs and runs the http-cache-tests suite")
	}
	if ioCore() != config.Default().IO {
		t.Skip("nginx's figure does not depend on EDGE_TEST_IO; measured on the default core's pass")
	}
	pkg := cacheTestsPackage(t)
	origin := startCacheTestsServer(t, pkg)
	_, p := startNginxPeer(t, []string{origin})
	r := runCacheTests(t, pkg, "http://"+p.CacheListen)
	logCacheTests(t, "nginx proxy_cache", r)
}

// ioCore is the edge's I/O core in this run (EDGE_TEST_IO, make test runs both;
// unset means the edge's default).
func ioCore() string {
	if v := os.Getenv("EDGE_TEST_IO"); v != "" {
		return v
	}
	return config.Default().IO
}
