package campaign

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/novashop/edge/loadgen/pacer"
	"go.yaml.in/yaml/v3"
)

// ErrInvalid wraps every problem Parse finds in a campaign.
var ErrInvalid = errors.New("campaign: invalid campaign")

// Defaults, reused as flag defaults by cmd/loadgen.
const (
	// DefaultDuration applies when neither the campaign nor its stages say
	// how long to attack.
	DefaultDuration = 30 * time.Second
	// DefaultTimeout bounds each request.
	DefaultTimeout = 10 * time.Second
	// DefaultWeight is a request's or journey's weight when none is given.
	DefaultWeight = 1
	// DefaultPoolSize is how many values a pool feeder keeps.
	DefaultPoolSize = 1000
	// DefaultSeed seeds the feeders, so runs draw the same sequence.
	DefaultSeed = 1
)

// Duration is a time.Duration read from YAML as "30s", "2m" or "1m30s".
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: duration must be a string like \"30s\"", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Campaign is one load scenario.
type Campaign struct {
	// Name identifies the campaign in reports; defaults to the file name.
	Name string `yaml:"name"`
	// Description says what the campaign models, for the report.
	Description string `yaml:"description,omitempty"`
	// Duration is how long the attack lasts. Zero means the sum of the
	// rate stages' durations, or DefaultDuration.
	Duration Duration `yaml:"duration,omitempty"`
	// Timeout bounds each request; DefaultTimeout when zero.
	Timeout Duration `yaml:"timeout,omitempty"`
	// Seed seeds the feeders; DefaultSeed when zero.
	Seed uint64 `yaml:"seed,omitempty"`
	// Rate is the rate profile: stages run one after the other, and the
	// last stage's final rate holds until Duration ends.
	Rate []Stage `yaml:"rate"`
	// Headers are sent with every request (placeholders allowed).
	Headers map[string]string `yaml:"headers,omitempty"`
	// Feeders fill ${name} placeholders, keyed by name.
	Feeders map[string]Feeder `yaml:"feeders,omitempty"`
	// Requests are the independent requests of the mix.
	Requests []Request `yaml:"requests,omitempty"`
	// Journeys are the step sequences of the mix.
	Journeys []Journey `yaml:"journeys,omitempty"`
}

// Stage is one rate stage; Profile says which fields apply.
type Stage struct {
	// Profile is constant, ramp, steps or sine.
	Profile string `yaml:"profile"`
	// RPS is the rate of a constant stage, in requests per second.
	RPS float64 `yaml:"rps,omitempty"`
	// From and To are the first and last rate of a ramp or of steps.
	From float64 `yaml:"from,omitempty"`
	To   float64 `yaml:"to,omitempty"`
	// Step is the rate added at each level of steps.
	Step float64 `yaml:"step,omitempty"`
	// Every is how long each level of steps lasts.
	Every Duration `yaml:"every,omitempty"`
	// Mean, Amplitude and Period shape a sine stage.
	Mean      float64  `yaml:"mean,omitempty"`
	Amplitude float64  `yaml:"amplitude,omitempty"`
	Period    Duration `yaml:"period,omitempty"`
	// Duration is how long the stage lasts; only the last stage of a
	// constant profile may leave it out. Steps derive it from their levels.
	Duration Duration `yaml:"duration,omitempty"`
}

// Feeder is one source of values; exactly one field is set.
type Feeder struct {
	// Range draws integers uniformly from [min, max], e.g. [1, 2000] for
	// the seeded products.
	Range []int `yaml:"range,omitempty"`
	// List draws one of its values.
	List []string `yaml:"list,omitempty"`
	// Users draws one of the seeded users prefix1..prefixCount.
	Users *Users `yaml:"users,omitempty"`
	// Pool holds values that requests extract from answers (see
	// Request.Extract); its value is the pool's size.
	Pool int `yaml:"pool,omitempty"`
}

// Users names the seeded users.
type Users struct {
	Prefix string `yaml:"prefix"`
	Count  int    `yaml:"count"`
}

// Request is one HTTP request template.
type Request struct {
	// Name labels the request in reports and result files.
	Name string `yaml:"name"`
	// Weight is the request's share of the mix, DefaultWeight when left
	// out (a journey's steps ignore it).
	Weight int `yaml:"weight,omitempty"`
	// Method defaults to GET.
	Method string `yaml:"method,omitempty"`
	// Path is the path and query, with ${placeholders}, e.g.
	// /api/products/?category=${category}.
	Path string `yaml:"path,omitempty"`
	// From, instead of Path, takes the whole path and query from a pool
	// that Follow fills: the next pages the answers pointed to.
	From string `yaml:"from,omitempty"`
	// Headers are added to the campaign's headers.
	Headers map[string]string `yaml:"headers,omitempty"`
	// Body is sent as is after filling placeholders; a body starting with
	// { or [ gets Content-Type: application/json unless a header says
	// otherwise.
	Body string `yaml:"body,omitempty"`
	// Extract maps a destination to a top-level field of the JSON answer:
	// into a pool feeder for a mix request, into a journey variable for a
	// journey step. Null or missing fields are ignored.
	Extract map[string]string `yaml:"extract,omitempty"`
	// Follow turns a cursor in the answer into the next page's path and
	// query, kept in a pool for requests with From.
	Follow *Follow `yaml:"follow,omitempty"`
}

// Follow builds next-page requests: the answer's JSON Field (a cursor),
// when it is a non-empty string, is set as query parameter Param on this
// request's own path and query (the shop's cursors are only valid with the
// filters and ordering they came from), and the result is put into pool
// Into.
type Follow struct {
	Field string `yaml:"field"`
	Param string `yaml:"param"`
	Into  string `yaml:"into"`
}

// Journey is a sequence of steps one virtual shopper makes in order: each
// step is sent only after the previous one was answered, so state (a
// token, a cart) carries over.
type Journey struct {
	Name   string `yaml:"name"`
	Weight int    `yaml:"weight,omitempty"`
	// Bind draws these feeders once when the journey starts, so every step
	// sees the same value (the same user throughout).
	Bind  []string  `yaml:"bind,omitempty"`
	Steps []Request `yaml:"steps"`
}

var placeholderRE = regexp.MustCompile(`\$\{([^}]*)\}`)

// Placeholders lists the ${names} in s, in order of appearance.
func Placeholders(s string) []string {
	var out []string
	for _, m := range placeholderRE.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// Load reads and parses a campaign file; the name defaults to the file's
// base name without extension.
func Load(path string) (*Campaign, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("campaign: %w", err)
	}
	base := path[strings.LastIndexAny(path, `/\`)+1:]
	base = strings.TrimSuffix(strings.TrimSuffix(base, ".yaml"), ".yml")
	c, err := Parse(b, base)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes a campaign, applies defaults and validates it, reporting
// every problem at once. Unknown keys are errors, so a typo cannot silently
// change a benchmark.
func Parse(b []byte, defaultName string) (*Campaign, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var c Campaign
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the file is empty", ErrInvalid)
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if c.Name == "" {
		c.Name = defaultName
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// applyDefaults is the one place defaults are set.
func (c *Campaign) applyDefaults() {
	if c.Timeout == 0 {
		c.Timeout = Duration(DefaultTimeout)
	}
	if c.Seed == 0 {
		c.Seed = DefaultSeed
	}
	for k, f := range c.Feeders {
		if f.Users != nil && f.Users.Prefix == "" {
			f.Users.Prefix = "user"
			c.Feeders[k] = f
		}
	}
	def := func(r *Request) {
		if r.Method == "" {
			r.Method = http.MethodGet
		}
		r.Method = strings.ToUpper(r.Method)
		if r.Weight == 0 {
			r.Weight = DefaultWeight
		}
	}
	for i := range c.Requests {
		def(&c.Requests[i])
	}
	for i := range c.Journeys {
		j := &c.Journeys[i]
		if j.Weight == 0 {
			j.Weight = DefaultWeight
		}
		for k := range j.Steps {
			def(&j.Steps[k])
		}
	}
	if c.Duration == 0 {
		if p, err := c.Pacer(); err == nil && p.Length() > 0 {
			c.Duration = Duration(p.Length())
		} else {
			c.Duration = Duration(DefaultDuration)
		}
	}
}

// Validate reports every problem in c at once.
func (c *Campaign) Validate() error {
	var probs []string
	add := func(format string, a ...any) { probs = append(probs, fmt.Sprintf(format, a...)) }
	if !nameRE.MatchString(c.Name) {
		add("name %q must be letters, digits, '.', '_' or '-'", c.Name)
	}
	if c.Duration < 0 {
		add("duration must be positive")
	}
	if c.Timeout < 0 {
		add("timeout must be positive")
	}
	if len(c.Rate) == 0 {
		add("rate: at least one stage is needed")
	} else if _, err := c.Pacer(); err != nil {
		add("rate: %v", err)
	}
	pools := map[string]bool{}
	for _, name := range sortedKeys(c.Feeders) {
		f := c.Feeders[name]
		if !nameRE.MatchString(name) {
			add("feeder %q: name must be letters, digits, '.', '_' or '-'", name)
		}
		set := 0
		if f.Range != nil {
			set++
			if len(f.Range) != 2 || f.Range[0] > f.Range[1] {
				add("feeder %q: range must be [min, max] with min <= max", name)
			}
		}
		if f.List != nil {
			set++
			if len(f.List) == 0 {
				add("feeder %q: list is empty", name)
			}
		}
		if f.Users != nil {
			set++
			if f.Users.Count <= 0 {
				add("feeder %q: users.count must be > 0", name)
			}
		}
		if f.Pool != 0 {
			set++
			pools[name] = true
			if f.Pool < 0 || f.Pool > 1_000_000 {
				add("feeder %q: pool size must be between 1 and 1000000", name)
			}
		}
		if set != 1 {
			add("feeder %q: set exactly one of range, list, users, pool", name)
		}
	}
	known := func(name string, vars map[string]bool) bool {
		_, isFeeder := c.Feeders[name]
		return isFeeder || vars[name]
	}
	checkReq := func(where string, r Request, vars map[string]bool) {
		switch {
		case r.From != "" && r.Path != "":
			add("%s: give path or from, not both", where)
		case r.From != "":
			if !pools[r.From] {
				add("%s: from %q is not a pool feeder", where, r.From)
			}
		case r.Path == "" || !strings.HasPrefix(r.Path, "/"):
			add("%s: path %q must start with /", where, r.Path)
		}
		if f := r.Follow; f != nil {
			if f.Field == "" || f.Param == "" {
				add("%s: follow needs field and param", where)
			}
			if !pools[f.Into] {
				add("%s: follow into %q, which is not a pool feeder", where, f.Into)
			}
		}
		if !nameRE.MatchString(r.Name) {
			add("%s: name %q must be letters, digits, '.', '_' or '-'", where, r.Name)
		}
		if r.Weight < 0 {
			add("%s: weight must be >= 0", where)
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		default:
			add("%s: method %q is not an HTTP method", where, r.Method)
		}
		texts := []string{r.Path, r.Body}
		for _, k := range sortedKeys(r.Headers) {
			texts = append(texts, k, r.Headers[k])
		}
		for _, k := range sortedKeys(c.Headers) {
			texts = append(texts, c.Headers[k])
		}
		for _, s := range texts {
			for _, p := range Placeholders(s) {
				if !known(p, vars) {
					add("%s: placeholder ${%s} names no feeder%s", where, p, map[bool]string{true: " or journey variable", false: ""}[vars != nil])
				}
			}
		}
	}
	names := map[string]bool{}
	weight := 0
	for i, r := range c.Requests {
		where := fmt.Sprintf("requests[%d] %s", i, r.Name)
		checkReq(where, r, nil)
		if names[r.Name] {
			add("%s: name used twice", where)
		}
		names[r.Name] = true
		weight += r.Weight
		for _, dst := range sortedKeys(r.Extract) {
			if !pools[dst] {
				add("%s: extract into %q, which is not a pool feeder", where, dst)
			}
		}
	}
	for i, j := range c.Journeys {
		where := fmt.Sprintf("journeys[%d] %s", i, j.Name)
		if !nameRE.MatchString(j.Name) {
			add("%s: name must be letters, digits, '.', '_' or '-'", where)
		}
		if names[j.Name] {
			add("%s: name used twice", where)
		}
		names[j.Name] = true
		if j.Weight < 0 {
			add("%s: weight must be >= 0", where)
		}
		weight += j.Weight
		if len(j.Steps) == 0 {
			add("%s: no steps", where)
		}
		vars := map[string]bool{}
		for _, b := range j.Bind {
			f, ok := c.Feeders[b]
			switch {
			case !ok:
				add("%s: bind %q names no feeder", where, b)
			case f.Pool != 0:
				add("%s: bind %q is a pool, which may be empty at the start", where, b)
			}
			vars[b] = true
		}
		for k, s := range j.Steps {
			checkReq(fmt.Sprintf("%s step %d %s", where, k+1, s.Name), s, vars)
			for _, dst := range sortedKeys(s.Extract) {
				if pools[dst] {
					continue
				}
				if !nameRE.MatchString(dst) {
					add("%s step %d: extract destination %q is not a valid name", where, k+1, dst)
				}
				vars[dst] = true
			}
		}
	}
	if len(c.Requests)+len(c.Journeys) == 0 {
		add("the mix is empty: add requests or journeys")
	} else if weight == 0 {
		add("every weight is zero")
	}
	if len(probs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(probs, "; "))
	}
	return nil
}

// Pacer builds the rate profile from the stages.
func (c *Campaign) Pacer() (*pacer.Profile, error) {
	var segs []pacer.Segment
	for i, s := range c.Rate {
		switch s.Profile {
		case "constant":
			segs = append(segs, pacer.Constant{Rate: s.RPS, Duration: time.Duration(s.Duration)})
		case "ramp":
			segs = append(segs, pacer.Ramp{From: s.From, To: s.To, Duration: time.Duration(s.Duration)})
		case "sine":
			segs = append(segs, pacer.Sine{Mean: s.Mean, Amplitude: s.Amplitude, Period: time.Duration(s.Period), Duration: time.Duration(s.Duration)})
		case "steps":
			st, err := pacer.Steps(s.From, s.To, s.Step, time.Duration(s.Every))
			if err != nil {
				return nil, fmt.Errorf("stage %d: %w", i+1, err)
			}
			segs = append(segs, st...)
		default:
			return nil, fmt.Errorf("stage %d: profile %q is not constant, ramp, steps or sine", i+1, s.Profile)
		}
	}
	return pacer.New(segs...)
}

// WithRate replaces the rate profile by a constant rate, as compare's
// --rate flag does.
func (c *Campaign) WithRate(rps float64) {
	c.Rate = []Stage{{Profile: "constant", RPS: rps}}
}

// MixNames lists the request and journey names, for reports.
func (c *Campaign) MixNames() []string {
	var out []string
	for _, r := range c.Requests {
		out = append(out, r.Name)
	}
	for _, j := range c.Journeys {
		out = append(out, j.Name)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return slices.Clip(keys)
}
