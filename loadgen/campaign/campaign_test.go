package campaign

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// TestShippedCampaignsGolden parses every file of configs/campaigns and
// compares the result, defaults applied, with testdata/NAME.golden.json.
func TestShippedCampaignsGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "configs", "campaigns", "*.yaml"))
	if err != nil || len(files) < 3 {
		t.Fatalf("want the three shipped campaigns, found %v (%v)", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(c, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", c.Name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(append(got, '\n'), want) {
				t.Errorf("parsed %s differs from %s (check, then go test -update):\n%s", f, golden, got)
			}
		})
	}
}

const minimal = `
rate: [{profile: constant, rps: 10}]
requests: [{name: home, path: /}]
`

func TestParseDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal), "mini")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"name from file", c.Name, "mini"},
		{"duration", time.Duration(c.Duration), DefaultDuration},
		{"timeout", time.Duration(c.Timeout), DefaultTimeout},
		{"method", c.Requests[0].Method, "GET"},
		{"weight", c.Requests[0].Weight, DefaultWeight},
		{"seed", c.Seed, uint64(DefaultSeed)},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestParseDurationFromStages(t *testing.T) {
	c, err := Parse([]byte(`
rate:
  - {profile: ramp, from: 1, to: 10, duration: 10s}
  - {profile: steps, from: 10, to: 30, step: 10, every: 5s}
requests: [{name: home, path: /}]
`), "x")
	if err != nil {
		t.Fatal(err)
	}
	if got := time.Duration(c.Duration); got != 25*time.Second {
		t.Errorf("duration = %s, want 25s (10s ramp + 3 steps of 5s)", got)
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"empty", ``, []string{"empty"}},
		{"not yaml", `{{{`, []string{"invalid campaign"}},
		{"unknown key", minimal + "rps: 3\n", []string{"field rps not found"}},
		{"no rate", `requests: [{name: a, path: /}]`, []string{"at least one stage"}},
		{"no mix", `rate: [{profile: constant, rps: 1}]`, []string{"mix is empty"}},
		{"bad profile", `
rate: [{profile: square, rps: 1}]
requests: [{name: a, path: /}]`, []string{`profile "square"`}},
		{"bad duration", `
duration: soon
rate: [{profile: constant, rps: 1}]
requests: [{name: a, path: /}]`, []string{"invalid duration"}},
		{"every problem at once", `
rate: [{profile: constant, rps: -1}]
feeders:
  p: {range: [5, 1]}
  q: {range: [1, 2], list: [a]}
requests:
  - {name: a, path: "/${nope}/", method: FETCH, extract: {next: next}}
  - {name: a, path: nopath}
`, []string{"constant rate -1", `feeder "p"`, `feeder "q": set exactly one`, "${nope} names no feeder", `method "FETCH"`, `not a pool feeder`, "name used twice", `path "nopath"`}},
		{"journey variables flow forward only", `
rate: [{profile: constant, rps: 1}]
feeders: {user: {users: {count: 3}}}
journeys:
  - name: j
    bind: [user, ghost]
    steps:
      - {name: s1, path: "/a/${token}/"}
      - {name: s2, path: /login/, extract: {token: access}}
`, []string{`bind "ghost"`, "${token} names no feeder or journey variable"}},
		{"follow and from", `
rate: [{profile: constant, rps: 1}]
feeders: {pages: {pool: 5}, n: {range: [1, 2]}}
requests:
  - {name: a, path: /l, follow: {field: next, into: n}}
  - {name: b, from: n}
  - {name: c, from: pages, path: /x}
`, []string{"follow needs field and param", `follow into "n", which is not a pool`, `from "n" is not a pool`, "path or from, not both"}},
		{"zero weights", `
rate: [{profile: constant, rps: 1}]
requests: [{name: a, path: /, weight: 0}]
journeys: [{name: j, weight: -1, steps: [{name: s, path: /}]}]`, []string{"weight must be >= 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "t")
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestPlaceholders(t *testing.T) {
	got := strings.Join(Placeholders(`/a/${x}/?b=${y}&c=${x}{z}$w`), ",")
	if got != "x,y,x" {
		t.Errorf("Placeholders = %s, want x,y,x", got)
	}
}

func TestWithRate(t *testing.T) {
	c, err := Parse([]byte(minimal), "m")
	if err != nil {
		t.Fatal(err)
	}
	c.WithRate(500)
	p, err := c.Pacer()
	if err != nil {
		t.Fatal(err)
	}
	if r := p.Rate(time.Hour); r != 500 {
		t.Errorf("rate after WithRate(500) = %g", r)
	}
}

func FuzzParseCampaign(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "configs", "campaigns", "*.yaml"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(minimal))
	f.Add([]byte("rate: [{profile: sine, mean: 1, amplitude: 1, period: 1ns, duration: 1ns}]\nrequests: [{name: a, path: /}]"))
	f.Add([]byte("rate: [{profile: steps, from: 0, to: 1e9, step: 1e-9, every: 1s}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b, "fuzz")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		// A valid campaign always yields a pacer and a positive duration.
		if _, err := c.Pacer(); err != nil {
			t.Fatalf("valid campaign without a pacer: %v", err)
		}
		if c.Duration <= 0 {
			t.Fatalf("valid campaign with duration %v", c.Duration)
		}
	})
}
