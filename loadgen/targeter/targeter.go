package targeter

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/novashop/edge/loadgen/campaign"
	"github.com/novashop/edge/loadgen/feeder"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// ErrNoRequest is returned by Next when no request of the mix can be
// filled, e.g. every request needs a pool that is still empty.
var ErrNoRequest = errors.New("targeter: no request of the mix can be filled")

// ErrBadBase is returned by New for a target URL that is not absolute
// http(s).
var ErrBadBase = errors.New("targeter: target URL must be http(s)://host[:port]")

// maxDraws bounds how often Next redraws when a pool is empty.
const maxDraws = 16

type entry struct {
	req     *campaign.Request
	journey *campaign.Journey
	cum     int // cumulative weight up to and including this entry
}

type session struct {
	id   uint64
	j    *campaign.Journey
	step int
	vars map[string]string
}

// Stats counts journeys.
type Stats struct {
	Started, Completed, Aborted uint64
}

// Targeter hands out the campaign's requests against one base URL. It is
// safe for concurrent use.
type Targeter struct {
	base    string
	c       *campaign.Campaign
	rnd     feeder.Rand
	feeders map[string]feeder.Feeder
	pools   map[string]*feeder.Pool
	mix     []entry
	total   int
	// bodies names the labels whose answers are read (they extract).
	bodies map[string]bool

	mu       sync.Mutex
	ready    []*session
	inflight map[uint64]*session

	nextID                      atomic.Uint64
	started, completed, aborted atomic.Uint64
}

// New builds a Targeter for c against base (e.g. http://127.0.0.1:8080).
func New(c *campaign.Campaign, base string) (*Targeter, error) { return NewShard(c, base, 0, 1) }

// NewShard is New for shard i (from 0) of n of a distributed campaign: its
// range and users feeders draw only the values whose index is ≡ i mod n
// (disjoint products, users and so carts across shards), and its random
// draws are seeded apart from the other shards'. List feeders (request
// parameters such as an ordering) and pools (values read from answers)
// are not split: they are not entities two machines could collide on.
func NewShard(c *campaign.Campaign, base string, i, n int) (*Targeter, error) {
	if n < 1 || i < 0 || i >= n {
		return nil, fmt.Errorf("targeter: shard %d of %d", i+1, n)
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w, got %q", ErrBadBase, base)
	}
	t := &Targeter{
		base:     strings.TrimRight(base, "/"),
		c:        c,
		rnd:      feeder.NewRand(c.Seed + uint64(i)),
		feeders:  map[string]feeder.Feeder{},
		pools:    map[string]*feeder.Pool{},
		inflight: map[uint64]*session{},
	}
	for name, f := range c.Feeders {
		var fd feeder.Feeder
		var err error
		switch {
		case len(f.Range) == 2 && n > 1:
			fd, err = feeder.NewRangeShard(f.Range[0], f.Range[1], i, n, t.rnd)
		case len(f.Range) == 2:
			fd, err = feeder.NewRange(f.Range[0], f.Range[1], t.rnd)
		case f.List != nil:
			fd, err = feeder.NewList(f.List, t.rnd)
		case f.Users != nil && n > 1:
			fd, err = feeder.NewUsersShard(f.Users.Prefix, f.Users.Count, i, n, t.rnd)
		case f.Users != nil:
			fd, err = feeder.NewUsers(f.Users.Prefix, f.Users.Count, t.rnd)
		case f.Pool > 0:
			var p *feeder.Pool
			p, err = feeder.NewPool(f.Pool, t.rnd)
			t.pools[name] = p
			fd = p
		default:
			err = fmt.Errorf("feeder %q has no source", name)
		}
		if err != nil {
			return nil, fmt.Errorf("targeter: feeder %q: %w", name, err)
		}
		t.feeders[name] = fd
	}
	t.bodies = map[string]bool{}
	for _, r := range c.Requests {
		if len(r.Extract) > 0 || r.Follow != nil {
			t.bodies[r.Name] = true
		}
	}
	for _, j := range c.Journeys {
		for _, s := range j.Steps {
			if len(s.Extract) > 0 || s.Follow != nil {
				t.bodies[j.Name+"/"+s.Name] = true
			}
		}
	}
	for i := range c.Requests {
		if w := c.Requests[i].Weight; w > 0 {
			t.total += w
			t.mix = append(t.mix, entry{req: &c.Requests[i], cum: t.total})
		}
	}
	for i := range c.Journeys {
		if w := c.Journeys[i].Weight; w > 0 {
			t.total += w
			t.mix = append(t.mix, entry{journey: &c.Journeys[i], cum: t.total})
		}
	}
	if t.total == 0 {
		return nil, fmt.Errorf("%w: every weight is zero", ErrNoRequest)
	}
	return t, nil
}

// Targeter returns the vegeta.Targeter view of t.
func (t *Targeter) Targeter() vegeta.Targeter { return t.Next }

// Stats returns the journey counters so far.
func (t *Targeter) Stats() Stats {
	return Stats{Started: t.started.Load(), Completed: t.completed.Load(), Aborted: t.aborted.Load()}
}

// Next fills tgt with the next request: a journey step whose previous step
// was answered if there is one, otherwise a draw from the mix.
func (t *Targeter) Next(tgt *vegeta.Target) error {
	if tgt == nil {
		return vegeta.ErrNilTarget
	}
	for range maxDraws {
		if s := t.popReady(); s != nil {
			if err := t.fillStep(tgt, s); err == nil {
				return nil
			}
			t.aborted.Add(1)
			continue
		}
		e := t.draw()
		if e.journey != nil {
			s := &session{id: t.nextID.Add(1), j: e.journey, vars: map[string]string{}}
			ok := true
			for _, b := range e.journey.Bind {
				v, err := t.feeders[b].Next()
				if err != nil {
					ok = false
					break
				}
				s.vars[b] = v
			}
			if !ok {
				continue
			}
			t.started.Add(1)
			if err := t.fillStep(tgt, s); err != nil {
				t.aborted.Add(1)
				continue
			}
			return nil
		}
		if err := t.fill(tgt, e.req, "#"+e.req.Name, nil); err == nil {
			return nil
		} else if !errors.Is(err, feeder.ErrEmpty) {
			return err
		}
	}
	return t.fallback(tgt)
}

// fallback sends the first mix request that needs no pool, so an empty
// cursor pool at the start degrades to a plain list request.
func (t *Targeter) fallback(tgt *vegeta.Target) error {
	for _, e := range t.mix {
		if e.req == nil {
			continue
		}
		if err := t.fill(tgt, e.req, "#"+e.req.Name, nil); err == nil {
			return nil
		}
	}
	return ErrNoRequest
}

func (t *Targeter) popReady() *session {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.ready) == 0 {
		return nil
	}
	s := t.ready[0]
	t.ready[0] = nil
	t.ready = t.ready[1:]
	return s
}

func (t *Targeter) draw() entry {
	n := t.rnd.IntN(t.total)
	lo, hi := 0, len(t.mix)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if t.mix[mid].cum > n {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return t.mix[lo]
}

func (t *Targeter) fillStep(tgt *vegeta.Target, s *session) error {
	r := &s.j.Steps[s.step]
	frag := "#" + s.j.Name + "/" + r.Name + "~" + strconv.FormatUint(s.id, 10)
	if err := t.fill(tgt, r, frag, s.vars); err != nil {
		return err
	}
	t.mu.Lock()
	t.inflight[s.id] = s
	t.mu.Unlock()
	return nil
}

// fill renders r into tgt. Within one request a feeder named twice yields
// the same value (the product of the path is the product of the body).
func (t *Targeter) fill(tgt *vegeta.Target, r *campaign.Request, frag string, vars map[string]string) error {
	drawn := map[string]string{}
	lookup := func(name string) (string, error) {
		if v, ok := vars[name]; ok {
			return v, nil
		}
		if v, ok := drawn[name]; ok {
			return v, nil
		}
		f, ok := t.feeders[name]
		if !ok {
			return "", fmt.Errorf("targeter: ${%s} is not set", name)
		}
		v, err := f.Next()
		if err != nil {
			return "", err
		}
		drawn[name] = v
		return v, nil
	}
	var p string
	if r.From != "" {
		// A page an earlier answer pointed to: already escaped.
		v, err := lookup(r.From)
		if err != nil {
			return err
		}
		p = v
	} else {
		path, query, hasQuery := strings.Cut(r.Path, "?")
		var err error
		if p, err = Expand(path, lookup, url.PathEscape); err != nil {
			return err
		}
		if hasQuery {
			q, err := Expand(query, lookup, url.QueryEscape)
			if err != nil {
				return err
			}
			p += "?" + q
		}
	}
	body, err := Expand(r.Body, lookup, nil)
	if err != nil {
		return err
	}
	hdr := make(http.Header, len(t.c.Headers)+len(r.Headers)+1)
	for _, m := range []map[string]string{t.c.Headers, r.Headers} {
		for k, v := range m {
			ev, err := Expand(v, lookup, nil)
			if err != nil {
				return err
			}
			hdr.Set(k, ev)
		}
	}
	if b := strings.TrimSpace(body); (strings.HasPrefix(b, "{") || strings.HasPrefix(b, "[")) && hdr.Get("Content-Type") == "" {
		hdr.Set("Content-Type", "application/json")
	}
	tgt.Method = r.Method
	tgt.URL = t.base + p + frag
	tgt.Header = hdr
	tgt.Body = nil
	if body != "" {
		tgt.Body = []byte(body)
	}
	return nil
}

// Expand replaces each ${name} in s with lookup(name), escaped by escape
// when it is not nil.
func Expand(s string, lookup func(string) (string, error), escape func(string) string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		v, err := lookup(s[i+2 : i+j])
		if err != nil {
			return "", err
		}
		if escape != nil {
			v = escape(v)
		}
		b.WriteString(v)
		s = s[i+j+1:]
	}
}

// Observe feeds an answer back: extractions into pools and journey
// variables, and the release of the journey's next step. Call it for every
// result of an attack made with this Targeter.
func (t *Targeter) Observe(r *vegeta.Result) {
	_, frag, ok := strings.Cut(r.URL, "#")
	if !ok {
		return
	}
	good := r.Error == "" && r.Code >= 200 && r.Code < 300
	name, idStr, isStep := strings.Cut(frag, "~")
	if !isStep {
		if !good {
			return
		}
		for i := range t.c.Requests {
			if req := &t.c.Requests[i]; req.Name == name {
				t.extract(r.Body, req.Extract, nil)
				t.follow(r, req.Follow)
				return
			}
		}
		return
	}
	id, err := strconv.ParseUint(idStr, 10, 64)
	if err != nil {
		return
	}
	t.mu.Lock()
	s, ok := t.inflight[id]
	delete(t.inflight, id)
	t.mu.Unlock()
	if !ok {
		return
	}
	if !good {
		t.aborted.Add(1)
		return
	}
	t.extract(r.Body, s.j.Steps[s.step].Extract, s.vars)
	t.follow(r, s.j.Steps[s.step].Follow)
	s.step++
	if s.step == len(s.j.Steps) {
		t.completed.Add(1)
		return
	}
	t.mu.Lock()
	t.ready = append(t.ready, s)
	t.mu.Unlock()
}

// follow puts the next page an answer points to into its pool: the
// request's own path and query with the cursor parameter set.
func (t *Targeter) follow(r *vegeta.Result, f *campaign.Follow) {
	if f == nil || len(r.Body) == 0 {
		return
	}
	pool, ok := t.pools[f.Into]
	if !ok {
		return
	}
	raw, ok := topField(r.Body, f.Field)
	if !ok {
		return
	}
	var cursor string
	if json.Unmarshal(raw, &cursor) != nil || cursor == "" {
		return
	}
	// Relative to the base, which fill puts back in front.
	u, err := url.Parse(strings.TrimPrefix(StripFragment(r.URL), t.base))
	if err != nil {
		return
	}
	q := u.Query()
	q.Set(f.Param, cursor)
	u.RawQuery = q.Encode()
	pool.Put(u.RequestURI())
}

// extract copies top-level JSON fields into pools (when the destination is
// a pool) or into vars. Strings are taken as is, numbers in their JSON
// spelling; null and other kinds are skipped.
func (t *Targeter) extract(body []byte, spec map[string]string, vars map[string]string) {
	if len(spec) == 0 || len(body) == 0 {
		return
	}
	for dst, field := range spec {
		raw, ok := topField(body, field)
		if !ok {
			continue
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			var n json.Number
			if err := json.Unmarshal(raw, &n); err != nil {
				continue
			}
			v = n.String()
		}
		if v == "" {
			continue
		}
		if p, ok := t.pools[dst]; ok {
			p.Put(v)
		} else if vars != nil {
			vars[dst] = v
		}
	}
}

// NeedsBody reports whether answers to the request labelled by a target
// URL's fragment (as in "home" or "checkout/login~42") are read by Observe;
// the others may be drained unread.
func (t *Targeter) NeedsBody(fragment string) bool {
	name, _, _ := strings.Cut(fragment, "~")
	return t.bodies[name]
}

// RequestName returns the request label a target URL carries: "home" for
// a mix request, "checkout/login" for a journey step, "" for none.
func RequestName(u string) string {
	_, frag, ok := strings.Cut(u, "#")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(frag, "~")
	return name
}

// StripFragment removes the request label from a target URL.
func StripFragment(u string) string {
	base, _, _ := strings.Cut(u, "#")
	return base
}
