package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/novashop/edge/loadgen/campaign"
	"go.yaml.in/yaml/v3"
)

// parseShard reads I/N with 1 <= I <= N.
func parseShard(s string) (i, n int, err error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	switch {
	case !ok || err1 != nil || err2 != nil:
		return 0, 0, usageErr(fmt.Sprintf("--shard %q is not I/N (e.g. 2/3)", s))
	case n < 1 || n > 10000:
		return 0, 0, usageErr(fmt.Sprintf("--shard %q: N must be between 1 and 10000", s))
	case i < 1 || i > n:
		return 0, 0, usageErr(fmt.Sprintf("--shard %q: I must be between 1 and N (%d)", s, n))
	}
	return i, n, nil
}

// shardMeta is written beside a shard's results (FILE.shard.json) so that
// report can merge the shards of one campaign and refuse any other's.
type shardMeta struct {
	Campaign string `json:"campaign"`
	// ID is a digest of the effective campaign (file, overrides, --rate,
	// --duration), the shard count and the start instant: shards started
	// with the same command line share it.
	ID      string `json:"campaign_id"`
	Shard   int    `json:"shard"`
	Shards  int    `json:"shards"`
	StartAt string `json:"start_at"`
	Target  string `json:"target"`
}

// metaPath is where a results file's shard metadata lives.
func metaPath(results string) string { return results + ".shard.json" }

// campaignID digests what every shard of one campaign must agree on.
func campaignID(c *campaign.Campaign, rate float64, du time.Duration, shards int, startAt time.Time) (string, error) {
	b, err := yaml.Marshal(c)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(b)
	fmt.Fprintf(h, "\x00%g\x00%d\x00%d\x00%s", rate, du, shards, startAt.UTC().Format(time.RFC3339Nano))
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func writeMeta(path string, m shardMeta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// readMeta reads FILE.shard.json; ok is false when there is none.
func readMeta(results string) (m shardMeta, ok bool, err error) {
	f, err := os.Open(metaPath(results))
	if errors.Is(err, os.ErrNotExist) {
		return m, false, nil
	}
	if err != nil {
		return m, false, err
	}
	defer f.Close()
	dec := json.NewDecoder(io.LimitReader(f, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, false, fmt.Errorf("%s: %v", metaPath(results), err)
	}
	if m.Shards < 1 || m.Shard < 1 || m.Shard > m.Shards || m.ID == "" {
		return m, false, fmt.Errorf("%s: shard %d/%d of campaign %q is not valid", metaPath(results), m.Shard, m.Shards, m.ID)
	}
	return m, true, nil
}

// checkShards refuses result files from different campaigns (or the same
// shard twice) and says what was merged; files without metadata are
// plain attacks and merge as before.
func checkShards(files []string) (string, error) {
	var first *shardMeta
	seen := map[int]string{}
	plain := 0
	for _, path := range files {
		m, ok, err := readMeta(path)
		if err != nil {
			return "", err
		}
		if !ok {
			plain++
			continue
		}
		if first == nil {
			first = &m
		} else if m.ID != first.ID {
			return "", fmt.Errorf("%s is shard %d/%d of campaign %s (id %s), but %s is of campaign %s (id %s): results of different campaigns do not merge",
				path, m.Shard, m.Shards, m.Campaign, m.ID, files[0], first.Campaign, first.ID)
		}
		if prev, dup := seen[m.Shard]; dup {
			return "", fmt.Errorf("%s and %s are both shard %d/%d", prev, path, m.Shard, m.Shards)
		}
		seen[m.Shard] = path
	}
	if first == nil {
		return "", nil
	}
	if plain > 0 {
		return "", fmt.Errorf("%d of the files have no shard metadata (FILE.shard.json) while others are shards of campaign %s: results of different campaigns do not merge", plain, first.ID)
	}
	return fmt.Sprintf("merged %d of %d shards of campaign %s (id %s, start %s)", len(seen), first.Shards, first.Campaign, first.ID, first.StartAt), nil
}

// clockOffset estimates how far the local clock is from url's Date
// header. Date has a one-second resolution, so it polls (every 2ms, at
// most 1.5s and 1000 requests) until the header's second changes: the
// server's clock read exactly that second during the request that first
// shows it, whose midpoint stands for that instant. The 1.5s bound, not
// the request count, ends the polling: 400 polls of 2ms sleeps took about
// 0.9s, short of a second boundary when the first poll came just after
// one (TestClockOffset failed that way). The offset is
// server minus local; the uncertainty is half that request's round trip
// plus the gap since the previous request.
func clockOffset(ctx context.Context, url string) (offset, uncertainty time.Duration, err error) {
	client := &http.Client{Timeout: 2 * time.Second}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var prevDate string
	var prevEnd time.Time
	deadline := time.Now().Add(1500 * time.Millisecond)
	for n := 0; n < 1000 && time.Now().Before(deadline); n++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, 0, fmt.Errorf("--clock-url: %v", err)
		}
		t0 := time.Now()
		resp, err := client.Do(req)
		t1 := time.Now()
		if err != nil {
			return 0, 0, fmt.Errorf("--clock-url: %v", err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		date := resp.Header.Get("Date")
		if date == "" {
			return 0, 0, fmt.Errorf("--clock-url %s: the answer has no Date header", url)
		}
		if prevDate != "" && date != prevDate {
			d, err := http.ParseTime(date)
			if err != nil {
				return 0, 0, fmt.Errorf("--clock-url %s: Date %q: %v", url, date, err)
			}
			mid := t0.Add(t1.Sub(t0) / 2)
			return d.Sub(mid), t1.Sub(t0)/2 + t0.Sub(prevEnd), nil
		}
		prevDate, prevEnd = date, t1
		time.Sleep(2 * time.Millisecond)
	}
	return 0, 0, fmt.Errorf("--clock-url %s: its Date header did not change within 1.5s", url)
}
