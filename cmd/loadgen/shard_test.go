package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"github.com/valyala/fasthttp"
)

// recorder is a shop that remembers the product and category ids it was
// asked for.
type recorder struct {
	url      string
	mu       sync.Mutex
	hits     int
	products map[int]bool
}

var idPath = regexp.MustCompile(`^/(?:api/)?products/(\d+)/$`)

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	rec := &recorder{products: map[int]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		rec.mu.Lock()
		rec.hits++
		if m := idPath.FindStringSubmatch(string(ctx.Path())); m != nil {
			id, _ := strconv.Atoi(m[1])
			rec.products[id] = true
		}
		rec.mu.Unlock()
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"results": [], "next": null}`)
	}}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown() })
	rec.url = "http://" + ln.Addr().String()
	return rec
}

// Three shards on this machine send what one process at the full rate
// sends, draw disjoint products, and report merges them exactly.
func TestShardsAddUpAndMergeExactly(t *testing.T) {
	const rate, du = "150", "1s"
	full := newRecorder(t)
	dir := t.TempDir()
	if _, _, err := runArgs(t, "attack", "--campaign", browse, "--target", "edge="+full.url, "--rate", rate, "--duration", du,
		"--output", filepath.Join(dir, "full")); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	recs := make([]*recorder, 3)
	files := make([]string, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range recs {
		recs[i] = newRecorder(t)
		files[i] = filepath.Join(dir, fmt.Sprintf("shard%d", i+1))
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, _, errs[i] = runArgs(t, "attack", "--campaign", browse, "--target", "edge="+recs[i].url, "--rate", rate, "--duration", du,
				"--shard", fmt.Sprintf("%d/3", i+1), "--start-at", start, "--output", files[i])
		}(i)
	}
	wg.Wait()
	total := 0
	for i, r := range recs {
		if errs[i] != nil {
			t.Fatalf("shard %d: %v", i+1, errs[i])
		}
		total += r.hits
		for id := range r.products {
			// Shard I keeps the products whose index (id-1 from 1) is ≡ I-1 mod 3.
			if (id-1)%3 != i {
				t.Errorf("shard %d asked for product %d", i+1, id)
			}
		}
		if len(r.products) == 0 {
			t.Errorf("shard %d asked for no product", i+1)
		}
	}
	// The shards partition the full profile's hits. vegeta stops each
	// process at its duration, so a process the scheduler starves near the
	// end sends a few hits fewer (seen: 7 of 150 over three shards, with the
	// race detector on a loaded 2-core box): 5 % either way. A partition
	// error is far outside that (shards at the full rate send 3x; one shard
	// short of its share, a third less).
	per := make([]int, len(recs))
	for i, r := range recs {
		per[i] = r.hits
	}
	if d := total - full.hits; d < -8 || d > 8 || full.hits < 140 {
		t.Errorf("3 shards sent %d requests (%v), one process at the full rate %d", total, per, full.hits)
	}

	out, _, err := runArgs(t, "report", "--json", "-", files[0], files[1], files[2])
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Targets []struct {
			Requests uint64             `json:"requests"`
			Latency  map[string]float64 `json:"latency_ms"`
		} `json:"targets"`
		Shards struct {
			Note   string  `json:"note"`
			Spread float64 `json:"start_spread_ms"`
		} `json:"shards"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(doc.Shards.Note, "merged 3 of 3 shards") || doc.Shards.Spread > 200 {
		t.Errorf("shards = %+v", doc.Shards)
	}
	// The merged distribution is the concatenation of every shard's
	// samples: its quantiles are those of all latencies sorted together
	// (within the histogram's 3 significant digits), not a mean of the
	// shards' quantiles.
	var all []float64
	for _, f := range files {
		all = append(all, latencies(t, f)...)
	}
	slices.Sort(all)
	if len(doc.Targets) != 1 || doc.Targets[0].Requests != uint64(len(all)) || len(all) != total {
		t.Fatalf("merged %+v, samples %d, server hits %d", doc.Targets, len(all), total)
	}
	for _, q := range []struct {
		key string
		q   float64
	}{{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"max", 1}} {
		// The rank of HdrHistogram's ValueAtPercentile: q*n rounded half up.
		rank := min(max(int(q.q*float64(len(all))+0.5), 1), len(all))
		want := all[rank-1]
		got := doc.Targets[0].Latency[q.key]
		if math.Abs(got-want) > 0.002*want+0.002 {
			t.Errorf("merged %s = %gms, concatenated samples give %gms", q.key, got, want)
		}
	}

	// A shard of another campaign (here: another start instant) is refused.
	other := filepath.Join(dir, "other")
	b, _ := os.ReadFile(files[2])
	_ = os.WriteFile(other, b, 0o644)
	meta, _ := os.ReadFile(metaPath(files[2]))
	_ = os.WriteFile(metaPath(other), []byte(strings.Replace(string(meta), `"campaign_id": "`, `"campaign_id": "x`, 1)), 0o644)
	if _, _, err := runArgs(t, "report", files[0], files[1], other); err == nil || !strings.Contains(err.Error(), "different campaigns") {
		t.Errorf("mixed campaigns: err = %v", err)
	}
	if _, _, err := runArgs(t, "report", files[0], files[0]); err == nil || !strings.Contains(err.Error(), "both shard 1/3") {
		t.Errorf("same shard twice: err = %v", err)
	}
	if _, _, err := runArgs(t, "report", files[0], filepath.Join(dir, "full")); err == nil || !strings.Contains(err.Error(), "no shard metadata") {
		t.Errorf("shard with a plain attack: err = %v", err)
	}
}

// latencies decodes a results file's latencies in ms.
func latencies(t *testing.T, path string) []float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := vegeta.NewDecoder(f)
	var out []float64
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); err != nil {
			break
		}
		out = append(out, float64(r.Latency.Microseconds())/1000)
	}
	return out
}

func TestParseShard(t *testing.T) {
	for _, tc := range []struct {
		in   string
		i, n int
		ok   bool
	}{
		{"1/1", 1, 1, true}, {"2/3", 2, 3, true}, {"3/3", 3, 3, true},
		{"0/3", 0, 0, false}, {"4/3", 0, 0, false}, {"1/0", 0, 0, false}, {"-1/3", 0, 0, false},
		{"1", 0, 0, false}, {"a/b", 0, 0, false}, {"1/20000", 0, 0, false}, {"", 0, 0, false},
	} {
		i, n, err := parseShard(tc.in)
		if (err == nil) != tc.ok || (tc.ok && (i != tc.i || n != tc.n)) {
			t.Errorf("parseShard(%q) = %d, %d, %v", tc.in, i, n, err)
		}
	}
}

func FuzzParseShard(f *testing.F) {
	f.Add("2/3")
	f.Fuzz(func(t *testing.T, s string) {
		if i, n, err := parseShard(s); err == nil && (i < 1 || i > n) {
			t.Fatalf("%q: %d/%d accepted", s, i, n)
		}
	})
}

// clockServer answers with a Date header from a clock skew ahead of ours.
func clockServer(t *testing.T, skew time.Duration) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", time.Now().Add(skew).UTC().Format(http.TimeFormat))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestClockOffset(t *testing.T) {
	for _, skew := range []time.Duration{0, 300 * time.Millisecond, -700 * time.Millisecond} {
		off, unc, err := clockOffset(context.Background(), clockServer(t, skew))
		if err != nil {
			t.Fatal(err)
		}
		// The estimate is within its own uncertainty, plus slack for a
		// shared machine's scheduling.
		if d := off - skew; d > unc+20*time.Millisecond || d < -unc-20*time.Millisecond {
			t.Errorf("skew %s: offset %s ± %s", skew, off, unc)
		}
	}
	noDate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Header()["Date"] = nil }))
	defer noDate.Close()
	if _, _, err := clockOffset(context.Background(), noDate.URL); err == nil || !strings.Contains(err.Error(), "no Date header") {
		t.Errorf("no Date: err = %v", err)
	}
}

// A shard whose clock is off warns (and still runs); a start already past
// writes nothing.
func TestShardClockWarningAndNothingWritten(t *testing.T) {
	srv := shop(t, "", nil)
	dir := t.TempDir()
	out := filepath.Join(dir, "s.gob")
	start := time.Now().Add(2500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	_, errOut, err := runArgs(t, "attack", "--campaign", browse, "--target", "a="+srv, "--rate", "20", "--duration", "200ms",
		"--shard", "1/2", "--start-at", start, "--clock-url", clockServer(t, 400*time.Millisecond), "--output", out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut, "warning") || !strings.Contains(errOut, "midpoint") {
		t.Errorf("no clock warning: %q", errOut)
	}
	if _, err := os.Stat(metaPath(out)); err != nil {
		t.Errorf("shard metadata: %v", err)
	}
	past := filepath.Join(dir, "past.gob")
	_, _, err = runArgs(t, "attack", "--campaign", browse, "--target", "a="+srv, "--shard", "1/2", "--start-at", "2020-01-01T00:00:00Z", "--output", past)
	if err == nil {
		t.Fatal("a start in the past was accepted")
	}
	if _, err := os.Stat(past); !os.IsNotExist(err) {
		t.Errorf("a refused shard wrote %s: %v", past, err)
	}
	// More shards than products: refused before anything is sent.
	_, _, err = runArgs(t, "attack", "--campaign", browse, "--target", "a="+srv, "--range", "product=1-2", "--shard", "1/3",
		"--start-at", time.Now().Add(time.Minute).UTC().Format(time.RFC3339), "--output", filepath.Join(dir, "few.gob"))
	if err == nil || !strings.Contains(err.Error(), "fewer than the 3 shards") {
		t.Errorf("range smaller than the shards: err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "few.gob")); !os.IsNotExist(err) {
		t.Errorf("a refused shard wrote its output: %v", err)
	}
}
