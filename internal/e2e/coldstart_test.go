package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/novashop/edge/internal/stack"
	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/loadgen/attack"
	"github.com/novashop/edge/loadgen/campaign"
	"github.com/novashop/edge/loadgen/nginxconf"
)

// Cold-start comparison sizes: a catalog large enough that the first second
// through the edge is almost all misses (as in `make demo`), a rate the
// two shared cores sustain with room to spare, and one second of load on
// each path: the figure under test is that first second.
const (
	coldCategories = 10
	coldProducts   = 5000
	coldRate       = 300
	coldDuration   = time.Second
)

// A pair is one cold edge path and one cold nginx path loaded at the same
// moment. The edge loses a pair when its first-second p99 exceeds nginx's by
// more than coldSlackRatio × nginx's + coldSlackFixed; the test fails when
// it loses coldMaxLost or more of coldPairs pairs. Why these numbers: on the two shared
// cores, with other test binaries running, paired cold starts of equal
// paths differ by a median of a few milliseconds but by up to ±130 ms
// (single pairs at 250–890 ms p99) when the machine is busy, because the
// figure is ruled by the cold origins (a new PostgreSQL backend and
// prepared statements per concurrent request) and by scheduling; measured
// in 21 pairs, the edge exceeded nginx by more than 25% + 10 ms in 4 (p ≈
// 0.19). Four or more such losses of five by chance have a probability of
// about 0.005, while an edge made 100 ms slower on its first requests lost 4
// of 5 pairs when tried, and the 600 ms first second of issue 10 would lose
// every one.
const (
	coldPairs      = 5
	coldMaxLost    = 4
	coldSlackRatio = 1.25
	coldSlackFixed = 10 * time.Millisecond
)

// TestColdEdgeNoSlowerThanColdNginx (issue 10): a fresh edge with an empty
// cache in front of two fresh origins answers its first second no slower at
// p99 than a fresh nginx round-robin in front of two other fresh origins on
// the same PostgreSQL and Redis. Every path is cold exactly once, so none
// warms another's origins or connections, and the two paths of a pair take
// their load at the same moment (see coldPairs for the verdict).
func TestColdEdgeNoSlowerThanColdNginx(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, Redis, origins, edges and nginx")
	}
	if _, err := stack.NginxBinary(os.Stderr); err != nil {
		t.Fatal(err)
	}
	redis := testenv.FreshRedis(t)
	s := newColdShop(t)
	c := coldCampaign(t)

	var edges, nginxes []time.Duration
	for i := range coldPairs {
		eo := []*proc{s.startOrigin(fmt.Sprintf("edge%d-o1", i), redis.URL), s.startOrigin(fmt.Sprintf("edge%d-o2", i), redis.URL)}
		no := []*proc{s.startOrigin(fmt.Sprintf("nginx%d-o1", i), redis.URL), s.startOrigin(fmt.Sprintf("nginx%d-o2", i), redis.URL)}
		edge := s.startDemoEdge(fmt.Sprintf("edge%d", i), redis.URL, eo)
		ng, nginxURL := startNginxRoundRobin(t, no)
		// Both paths take their load at the same time, so whatever else
		// the machine does at that moment (two cores, other test binaries)
		// falls on both alike.
		var wg sync.WaitGroup
		var e, n time.Duration
		var eerr, nerr error
		wg.Add(2)
		go func() { defer wg.Done(); e, eerr = firstSecondP99(c, "edge", edge.url) }()
		go func() { defer wg.Done(); n, nerr = firstSecondP99(c, "nginx", nginxURL) }()
		wg.Wait()
		if err := errors.Join(eerr, nerr); err != nil {
			t.Fatal(err)
		}
		edges, nginxes = append(edges, e), append(nginxes, n)
		// A pair's servers stop before the next pair starts: they would
		// hold PostgreSQL connections (16 per origin) and cores.
		ng.Stop()
		for _, p := range append(append(eo, no...), edge.proc) {
			p.stop()
		}
	}
	lost := 0
	for i := range edges {
		if float64(edges[i]) > float64(nginxes[i])*coldSlackRatio+float64(coldSlackFixed) {
			lost++
		}
	}
	t.Logf("first-second p99 per cold pair: edge %v, nginx round-robin %v; medians %s and %s; edge slower (beyond %.2fx + %s) in %d of %d",
		edges, nginxes, median(edges), median(nginxes), coldSlackRatio, coldSlackFixed, lost, coldPairs)
	if lost >= coldMaxLost {
		t.Errorf("a cold edge's first second is slower than a cold nginx's: p99 beyond %.2fx + %s in %d of %d pairs (edge %v, nginx %v)",
			coldSlackRatio, coldSlackFixed, lost, coldPairs, edges, nginxes)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// newColdShop is newShop with a catalog of coldProducts products.
func newColdShop(t *testing.T) *shop {
	t.Helper()
	dbURL := testenv.Postgres(t)
	origin := filepath.Join(binDir, "origin")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, args := range [][]string{
		{"migrate", "--database-url", dbURL},
		{"seed", "--database-url", dbURL, "--categories", strconv.Itoa(coldCategories),
			"--products", strconv.Itoa(coldProducts), "--users", strconv.Itoa(seedUsers)},
	} {
		if out, err := exec.CommandContext(ctx, origin, args...).CombinedOutput(); err != nil {
			t.Fatalf("origin %s: %v\n%s", args[0], err, out)
		}
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return &shop{t: t, dbURL: dbURL, secret: hex.EncodeToString(b)}
}

// startDemoEdge runs the edge as `make demo` does: configs/edge.yaml, the
// stack's p2c-ewma balancer and the Redis cache.
func (s *shop) startDemoEdge(name, redisURL string, origins []*proc) *edge {
	s.t.Helper()
	addr, admin := freeAddr(s.t), freeAddr(s.t)
	args := []string{"--config", filepath.Join(moduleRoot(s.t), "configs", "edge.yaml"),
		"--listen", addr, "--admin-listen", admin, "--balancer", "p2c-ewma", "--redis-url", redisURL}
	for _, o := range origins {
		args = append(args, "--upstream", o.name+"=http://"+o.addr)
	}
	return &edge{proc: s.start(name, "edge", addr, args), url: "http://" + addr, admin: "http://" + admin}
}

// startNginxRoundRobin runs Debian's nginx with the peer configuration the
// demo compares against, and returns it with its plain round-robin server's
// URL.
func startNginxRoundRobin(t *testing.T, origins []*proc) (*stack.Nginx, string) {
	t.Helper()
	var addrs []string
	for _, o := range origins {
		addrs = append(addrs, o.addr)
	}
	ng, p := startNginxPeer(t, addrs)
	return ng, "http://" + p.Listen
}

// startNginxPeer runs Debian's nginx with the demo's peer configuration
// (configs/nginx.conf: a plain round-robin server on p.Listen and the
// proxy_cache variant on p.CacheListen) in front of upstreams (host:port).
func startNginxPeer(t *testing.T, upstreams []string) (*stack.Nginx, nginxconf.Params) {
	t.Helper()
	dir := t.TempDir()
	openTempPath(dir)
	for _, d := range []string{"cache", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o777); err != nil {
			t.Fatal(err)
		}
	}
	p := nginxconf.Params{Listen: freeAddr(t), CacheListen: freeAddr(t),
		CacheDir: filepath.Join(dir, "cache"), PidFile: filepath.Join(dir, "nginx.pid"),
		ErrorLog: filepath.Join(dir, "error.log"), TempDir: filepath.Join(dir, "tmp"),
		Upstreams: upstreams}
	conf := filepath.Join(dir, "nginx.conf")
	f, err := os.Create(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := nginxconf.Render(f, p); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ng, err := stack.StartNginx(ctx, os.Stderr, conf, p.Listen, p.CacheListen)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ng.Stop)
	return ng, p
}

// openTempPath makes dir and its parents below the temporary directory
// traversable: nginx's worker runs as nobody when the test runs as root.
func openTempPath(dir string) {
	tmp := filepath.Clean(os.TempDir())
	for d := filepath.Clean(dir); strings.HasPrefix(d, tmp+"/"); d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o755)
	}
}

// coldCampaign is the demo's browse campaign sized to the cold catalog.
func coldCampaign(t *testing.T) *campaign.Campaign {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(moduleRoot(t), "configs", "campaigns", "browse.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := campaign.Parse(src, "browse")
	if err != nil {
		t.Fatal(err)
	}
	for name, hi := range map[string]int{"product": coldProducts, "category": coldCategories} {
		f := c.Feeders[name]
		f.Range = []int{1, hi}
		c.Feeders[name] = f
	}
	return c
}

// firstSecondP99 sends coldRate requests/s for coldDuration to url and
// returns the p99 latency of the requests scheduled in the first second
// (loadgen's latencies include any lag behind the schedule).
func firstSecondP99(c *campaign.Campaign, name, url string) (time.Duration, error) {
	type sample struct {
		at  time.Time
		lat time.Duration
	}
	var all []sample
	out, err := attack.Run(context.Background(), c, attack.Options{Name: name, URL: url, Rate: coldRate, Duration: coldDuration,
		OnResult: func(r *vegeta.Result) error {
			all = append(all, sample{r.Timestamp, r.Latency})
			return nil
		}})
	if err != nil {
		return 0, err
	}
	m := out.Metrics
	if m.SuccessRatio() < 0.99 {
		return 0, fmt.Errorf("%s: success ratio %.3f, status codes %v, errors %v", name, m.SuccessRatio(), m.StatusCodes, m.Errors)
	}
	if len(all) == 0 {
		return 0, fmt.Errorf("%s: no requests", name)
	}
	first := slices.MinFunc(all, func(a, b sample) int { return a.at.Compare(b.at) }).at
	var lats []time.Duration
	for _, s := range all {
		if s.at.Sub(first) < time.Second {
			lats = append(lats, s.lat)
		}
	}
	// A starved load generator (the test binary shares the two cores with
	// other test binaries) sends fewer; a quarter still gives a p99 of
	// several samples, and both paths of a pair share the starvation.
	if len(lats) < coldRate/4 {
		return 0, fmt.Errorf("%s: %d requests scheduled in the first second, want about %d", name, len(lats), coldRate)
	}
	_, p99, _ := percentiles(lats)
	return p99, nil
}

// moduleRoot is the directory of go.mod (configs/ lives there).
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(fmt.Errorf("go env GOMOD: %w", err))
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}
