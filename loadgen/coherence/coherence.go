package coherence

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Errors.
var (
	// ErrConfig is returned for a configuration that cannot run.
	ErrConfig = errors.New("coherence: invalid config")
	// ErrLogin is returned when the credentials are refused.
	ErrLogin = errors.New("coherence: login failed")
	// ErrShop is returned when the shop answers a read or write with an
	// error; the message carries the shop's own error text.
	ErrShop = errors.New("coherence: shop request failed")
)

// Defaults, reused as flag defaults by cmd/loadgen.
const (
	DefaultWrites   = 20
	DefaultProduct  = 1
	DefaultInterval = 5 * time.Millisecond
	DefaultTimeout  = 10 * time.Second
	DefaultPause    = 200 * time.Millisecond
)

// Edge is one edge's public base URL with a name for the report.
type Edge struct {
	Name, URL string
}

// Config describes a measurement.
type Config struct {
	// Writer is the edge the writes go through.
	Writer Edge
	// Readers are the edges polled for the new value.
	Readers []Edge
	// Token is a staff access token; when empty, Username and Password
	// log in via POST /api/login/ on the writer.
	Token              string
	Username, Password string
	// Product is the product id whose price is changed.
	Product int
	// Writes is how many writes to measure.
	Writes int
	// Interval is the pause between polls of one reader.
	Interval time.Duration
	// Timeout bounds how long a write may take to show everywhere;
	// writes that never show count as not converged.
	Timeout time.Duration
	// Pause is the wait between writes, so each is measured alone.
	Pause time.Duration
	// Client defaults to a client with a 5 s timeout.
	Client *http.Client
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var probs []string
	if c.Writer.URL == "" {
		probs = append(probs, "a writer edge is needed")
	}
	if len(c.Readers) == 0 {
		probs = append(probs, "at least one reader edge is needed")
	}
	if c.Token == "" && (c.Username == "" || c.Password == "") {
		probs = append(probs, "give --token, or --username and --password of a staff user")
	}
	if c.Product <= 0 {
		probs = append(probs, "product id must be positive")
	}
	if c.Writes <= 0 || c.Writes > 10000 {
		probs = append(probs, "writes must be within [1, 10000]")
	}
	if c.Interval <= 0 || c.Timeout <= 0 || c.Pause < 0 {
		probs = append(probs, "interval and timeout must be positive, pause not negative")
	}
	if len(probs) > 0 {
		return fmt.Errorf("%w: %s", ErrConfig, strings.Join(probs, "; "))
	}
	return nil
}

// Stats summarises delays in milliseconds.
type Stats struct {
	Converged int     `json:"converged"`
	TimedOut  int     `json:"timed_out"`
	P50       float64 `json:"p50_ms"`
	P99       float64 `json:"p99_ms"`
	Max       float64 `json:"max_ms"`
}

// Result is a measurement's outcome.
type Result struct {
	Product int    `json:"product"`
	Writer  string `json:"writer"`
	Writes  int    `json:"writes"`
	// All is the delay until every reader showed the write.
	All Stats `json:"all_edges"`
	// PerEdge is the delay per reader.
	PerEdge map[string]Stats `json:"per_edge"`
	// Interrupted is true when ctx ended the run early.
	Interrupted bool `json:"interrupted,omitempty"`
}

func (c Config) client() *http.Client {
	if c.Client != nil {
		return c.Client
	}
	return &http.Client{Timeout: 5 * time.Second}
}

func call(ctx context.Context, cl *http.Client, method, url, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrShop, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := cl.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrShop, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		return fmt.Errorf("%w: %s %s: %d %s", ErrShop, method, url, resp.StatusCode, e.Error)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%w: %s %s: bad JSON: %v", ErrShop, method, url, err)
		}
	}
	return nil
}

// Login exchanges credentials for an access token via POST /api/login/.
func Login(ctx context.Context, cl *http.Client, base, username, password string) (string, error) {
	var tok struct {
		Access string `json:"access"`
	}
	err := call(ctx, cl, http.MethodPost, strings.TrimRight(base, "/")+"/api/login/", "", map[string]string{"username": username, "password": password}, &tok)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrLogin, err)
	}
	if tok.Access == "" {
		return "", fmt.Errorf("%w: the answer has no access token", ErrLogin)
	}
	return tok.Access, nil
}

// Cents reads a product price, a JSON string ("129.99") or number, in
// cents, so prices compare exactly.
func Cents(raw json.RawMessage) (int64, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return 0, fmt.Errorf("price %s is neither a string nor a number", raw)
		}
		s = n.String()
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e12 {
		return 0, fmt.Errorf("price %q is not a decimal number", s)
	}
	return int64(math.Round(f * 100)), nil
}

// FormatCents writes cents as the shop's price string.
func FormatCents(c int64) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}

func productURL(base string, id int) string {
	return fmt.Sprintf("%s/api/products/%d/", strings.TrimRight(base, "/"), id)
}

func price(ctx context.Context, cl *http.Client, base string, id int) (int64, error) {
	var p struct {
		Price json.RawMessage `json:"price"`
	}
	if err := call(ctx, cl, http.MethodGet, productURL(base, id), "", nil, &p); err != nil {
		return 0, err
	}
	if p.Price == nil {
		return 0, fmt.Errorf("%w: product %d has no price field", ErrShop, id)
	}
	c, err := Cents(p.Price)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrShop, err)
	}
	return c, nil
}

// Run measures c.Writes writes.
func Run(ctx context.Context, c Config) (*Result, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cl := c.client()
	token := c.Token
	if token == "" {
		var err error
		if token, err = Login(ctx, cl, c.Writer.URL, c.Username, c.Password); err != nil {
			return nil, err
		}
	}
	orig, err := price(ctx, cl, c.Writer.URL, c.Product)
	if err != nil {
		return nil, err
	}
	patch := func(ctx context.Context, cents int64) error {
		return call(ctx, cl, http.MethodPatch, productURL(c.Writer.URL, c.Product), token, map[string]string{"price": FormatCents(cents)}, nil)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = patch(rctx, orig)
	}()
	res := &Result{Product: c.Product, Writer: c.Writer.Name, PerEdge: map[string]Stats{}}
	var all []time.Duration
	allTimedOut := 0
	per := map[string][]time.Duration{}
	perTimedOut := map[string]int{}
	for i := 0; i < c.Writes; i++ {
		if ctx.Err() != nil {
			res.Interrupted = true
			break
		}
		// Alternate up and down by a cent so each write differs from the
		// last and the price never drifts far.
		want := orig + 1 + int64(i%2)
		if err := patch(ctx, want); err != nil {
			if ctx.Err() != nil {
				res.Interrupted = true
				break
			}
			return nil, err
		}
		acked := time.Now()
		delays := make([]time.Duration, len(c.Readers))
		var wg sync.WaitGroup
		for k, e := range c.Readers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				delays[k] = poll(ctx, cl, e.URL, c.Product, want, acked, c.Interval, c.Timeout)
			}()
		}
		wg.Wait()
		if ctx.Err() != nil {
			res.Interrupted = true
			break
		}
		res.Writes++
		worst := time.Duration(0)
		for k, e := range c.Readers {
			d := delays[k]
			if d < 0 {
				perTimedOut[e.Name]++
				worst = -1
				continue
			}
			per[e.Name] = append(per[e.Name], d)
			if worst >= 0 && d > worst {
				worst = d
			}
		}
		if worst < 0 {
			allTimedOut++
		} else {
			all = append(all, worst)
		}
		select {
		case <-ctx.Done():
		case <-time.After(c.Pause):
		}
	}
	res.All = Summarise(all, allTimedOut)
	for _, e := range c.Readers {
		res.PerEdge[e.Name] = Summarise(per[e.Name], perTimedOut[e.Name])
	}
	return res, nil
}

// poll returns how long after acked the reader first showed want, or −1
// when it did not within timeout.
func poll(ctx context.Context, cl *http.Client, base string, id int, want int64, acked time.Time, every, timeout time.Duration) time.Duration {
	deadline := acked.Add(timeout)
	for {
		got, err := price(ctx, cl, base, id)
		if err == nil && got == want {
			return time.Since(acked)
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return -1
		}
		select {
		case <-ctx.Done():
			return -1
		case <-time.After(every):
		}
	}
}

// Summarise computes nearest-rank percentiles of ds.
func Summarise(ds []time.Duration, timedOut int) Stats {
	s := Stats{Converged: len(ds), TimedOut: timedOut}
	if len(ds) == 0 {
		return s
	}
	xs := append([]time.Duration(nil), ds...)
	sort.Slice(xs, func(i, j int) bool { return xs[i] < xs[j] })
	rank := func(q float64) time.Duration {
		i := int(math.Ceil(q*float64(len(xs)))) - 1
		return xs[min(max(i, 0), len(xs)-1)]
	}
	toMs := func(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
	s.P50, s.P99, s.Max = toMs(rank(0.5)), toMs(rank(0.99)), toMs(xs[len(xs)-1])
	return s
}

// WriteText prints the result as a small table.
func WriteText(w io.Writer, r *Result) error {
	fmt.Fprintf(w, "coherence: %d write(s) of product %d through %s\n", r.Writes, r.Product, r.Writer)
	line := func(name string, s Stats) {
		fmt.Fprintf(w, "  %-16s converged %4d  timed out %3d  p50 %8.2fms  p99 %8.2fms  max %8.2fms\n", name, s.Converged, s.TimedOut, s.P50, s.P99, s.Max)
	}
	line("all edges", r.All)
	names := make([]string, 0, len(r.PerEdge))
	for n := range r.PerEdge {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		line(n, r.PerEdge[n])
	}
	if r.Interrupted {
		fmt.Fprintln(w, "interrupted: these figures cover only the writes that completed")
	}
	_, err := fmt.Fprintln(w, "delay = from the write's acknowledgement to the first poll showing the new price")
	return err
}
