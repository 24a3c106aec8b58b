package pacer

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// ErrInvalidProfile is returned by New for a profile that cannot be paced:
// a negative rate, a zero-length stage in the middle, or no stage at all.
var ErrInvalidProfile = errors.New("pacer: invalid profile")

// Segment is one stage of a profile. Times are seconds into the segment.
type Segment interface {
	// Length is how long the segment lasts.
	Length() time.Duration
	// RateAt is the instantaneous rate in hits per second.
	RateAt(t float64) float64
	// Hits is the number of hits due from the segment's start to t.
	Hits(t float64) float64
	// TimeOf inverts Hits: the time at which h hits are due, for
	// 0 < h <= Hits(Length).
	TimeOf(h float64) float64
	// Validate reports a segment that cannot be paced.
	Validate() error
	fmt.Stringer
}

// Constant sends Rate hits per second for Duration.
type Constant struct {
	Rate     float64
	Duration time.Duration
}

// Ramp changes the rate linearly from From to To over Duration.
type Ramp struct {
	From, To float64
	Duration time.Duration
}

// Sine oscillates around Mean by Amplitude with the given Period, starting
// at the mean and rising, for Duration.
type Sine struct {
	Mean, Amplitude float64
	Period          time.Duration
	Duration        time.Duration
}

// Steps expands a staircase (From, From+Step, ... up to To, each level held
// for Every) into constant segments.
func Steps(from, to, step float64, every time.Duration) ([]Segment, error) {
	if step == 0 || every <= 0 || (to-from)/step < 0 || math.IsNaN(from+to+step) {
		return nil, fmt.Errorf("%w: steps from %g to %g by %g every %s never reach the end", ErrInvalidProfile, from, to, step, every)
	}
	n := int(math.Floor((to-from)/step+1e-9)) + 1
	if n > 10000 {
		return nil, fmt.Errorf("%w: steps from %g to %g by %g make %d levels (at most 10000)", ErrInvalidProfile, from, to, step, n)
	}
	segs := make([]Segment, 0, n)
	for i := range n {
		segs = append(segs, Constant{Rate: from + float64(i)*step, Duration: every})
	}
	return segs, nil
}

func secs(d time.Duration) float64 { return d.Seconds() }

// Length implements Segment.
func (c Constant) Length() time.Duration { return c.Duration }

// RateAt implements Segment.
func (c Constant) RateAt(float64) float64 { return c.Rate }

// Hits implements Segment.
func (c Constant) Hits(t float64) float64 { return c.Rate * t }

// TimeOf implements Segment.
func (c Constant) TimeOf(h float64) float64 { return h / c.Rate }

// Validate implements Segment.
func (c Constant) Validate() error {
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		return fmt.Errorf("%w: constant rate %g must be a finite number >= 0", ErrInvalidProfile, c.Rate)
	}
	return nil
}

func (c Constant) String() string {
	if c.Duration == 0 {
		return fmt.Sprintf("constant %g/s", c.Rate)
	}
	return fmt.Sprintf("constant %g/s for %s", c.Rate, c.Duration)
}

// Length implements Segment.
func (r Ramp) Length() time.Duration { return r.Duration }

func (r Ramp) slope() float64 { return (r.To - r.From) / secs(r.Duration) }

// RateAt implements Segment.
func (r Ramp) RateAt(t float64) float64 { return r.From + r.slope()*t }

// Hits implements Segment.
func (r Ramp) Hits(t float64) float64 { return r.From*t + r.slope()*t*t/2 }

// TimeOf implements Segment. It solves k/2·t² + a·t − h = 0 in the form
// 2h/(a+√(a²+2kh)), which stays exact for k = 0 and for ramps down.
func (r Ramp) TimeOf(h float64) float64 {
	a, k := r.From, r.slope()
	d := a*a + 2*k*h
	if d < 0 {
		d = 0
	}
	den := a + math.Sqrt(d)
	if den <= 0 {
		return secs(r.Duration)
	}
	return 2 * h / den
}

// Validate implements Segment.
func (r Ramp) Validate() error {
	switch {
	case r.From < 0 || r.To < 0 || math.IsNaN(r.From+r.To) || math.IsInf(r.From+r.To, 0):
		return fmt.Errorf("%w: ramp from %g to %g needs finite rates >= 0", ErrInvalidProfile, r.From, r.To)
	case r.Duration <= 0:
		return fmt.Errorf("%w: a ramp needs a duration > 0", ErrInvalidProfile)
	}
	return nil
}

func (r Ramp) String() string {
	return fmt.Sprintf("ramp %g/s to %g/s over %s", r.From, r.To, r.Duration)
}

// Length implements Segment.
func (s Sine) Length() time.Duration { return s.Duration }

func (s Sine) omega() float64 { return 2 * math.Pi / secs(s.Period) }

// RateAt implements Segment.
func (s Sine) RateAt(t float64) float64 { return s.Mean + s.Amplitude*math.Sin(s.omega()*t) }

// Hits implements Segment: the integral of RateAt from 0 to t.
func (s Sine) Hits(t float64) float64 {
	w := s.omega()
	return s.Mean*t + s.Amplitude/w*(1-math.Cos(w*t))
}

// TimeOf implements Segment by bisection: Hits has no closed-form inverse,
// and it is monotone because Amplitude <= Mean.
func (s Sine) TimeOf(h float64) float64 {
	lo, hi := 0.0, secs(s.Duration)
	for range 64 {
		mid := (lo + hi) / 2
		if s.Hits(mid) < h {
			lo = mid
		} else {
			hi = mid
		}
		if hi-lo < 1e-9 {
			break
		}
	}
	return hi
}

// Validate implements Segment.
func (s Sine) Validate() error {
	switch {
	case s.Mean <= 0 || math.IsNaN(s.Mean) || math.IsInf(s.Mean, 0):
		return fmt.Errorf("%w: sine mean %g must be a finite number > 0", ErrInvalidProfile, s.Mean)
	case s.Amplitude < 0 || s.Amplitude > s.Mean || math.IsNaN(s.Amplitude):
		return fmt.Errorf("%w: sine amplitude %g must be between 0 and the mean %g", ErrInvalidProfile, s.Amplitude, s.Mean)
	case s.Period <= 0:
		return fmt.Errorf("%w: a sine needs a period > 0", ErrInvalidProfile)
	case s.Duration <= 0:
		return fmt.Errorf("%w: a sine needs a duration > 0", ErrInvalidProfile)
	}
	return nil
}

func (s Sine) String() string {
	return fmt.Sprintf("sine %g±%g/s period %s for %s", s.Mean, s.Amplitude, s.Period, s.Duration)
}

// Profile is a sequence of segments. After the last one ends the rate holds
// at its final value (zero stops the attack), so an attack duration longer
// than the profile soaks at the last rate.
type Profile struct {
	segs   []Segment
	starts []float64 // start of each segment, seconds
	cum    []float64 // hits due before each segment; len(segs)+1
	tail   float64   // rate after the last segment
}

// Interface guard.
var _ vegeta.Pacer = (*Profile)(nil)

// New builds a Profile. Every segment but the last needs a length > 0.
func New(segs ...Segment) (*Profile, error) {
	if len(segs) == 0 {
		return nil, fmt.Errorf("%w: no stage", ErrInvalidProfile)
	}
	p := &Profile{segs: segs, starts: make([]float64, len(segs)), cum: make([]float64, len(segs)+1)}
	var at float64
	var errs []error
	for i, s := range segs {
		if err := s.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("stage %d: %w", i+1, err))
			continue
		}
		if s.Length() <= 0 && i != len(segs)-1 {
			errs = append(errs, fmt.Errorf("stage %d: %w: only the last stage may omit its duration", i+1, ErrInvalidProfile))
			continue
		}
		p.starts[i] = at
		l := secs(s.Length())
		p.cum[i+1] = p.cum[i] + s.Hits(l)
		at += l
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	last := segs[len(segs)-1]
	p.tail = last.RateAt(secs(last.Length()))
	return p, nil
}

// Length is the total length of the segments.
func (p *Profile) Length() time.Duration {
	var d time.Duration
	for _, s := range p.segs {
		d += s.Length()
	}
	return d
}

// At returns the intended send time of hit n (counting from 0): the time at
// which n+1 hits are due, as vegeta's ConstantPacer does. ok is false when
// the profile never sends that hit.
func (p *Profile) At(n uint64) (d time.Duration, ok bool) {
	h := float64(n) + 1
	total := p.cum[len(p.segs)]
	if h > total {
		if p.tail <= 0 {
			return 0, false
		}
		end := p.starts[len(p.segs)-1] + secs(p.segs[len(p.segs)-1].Length())
		return toDuration(end + (h-total)/p.tail)
	}
	// The first segment whose cumulative end reaches h; zero-rate segments
	// (cum[i] == cum[i+1]) are never chosen since h > cum[i] is required.
	i := sort.Search(len(p.segs), func(i int) bool { return p.cum[i+1] >= h })
	return toDuration(p.starts[i] + p.segs[i].TimeOf(h-p.cum[i]))
}

func toDuration(s float64) (time.Duration, bool) {
	if math.IsNaN(s) || s > float64(math.MaxInt64)/1e9 {
		return 0, false
	}
	return time.Duration(s * 1e9), true
}

// Pace implements vegeta.Pacer: wait until hit number hits is due; when
// behind, send at once.
func (p *Profile) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	at, ok := p.At(hits)
	if !ok {
		return 0, true
	}
	if wait := at - elapsed; wait > 0 {
		return wait, false
	}
	return 0, false
}

// Rate implements vegeta.Pacer.
func (p *Profile) Rate(elapsed time.Duration) float64 {
	t := secs(elapsed)
	for i, s := range p.segs {
		if l := secs(s.Length()); t < p.starts[i]+l {
			return s.RateAt(t - p.starts[i])
		}
	}
	return p.tail
}

// Hits is the number of hits due by elapsed, the pacer's own count.
func (p *Profile) Hits(elapsed time.Duration) float64 {
	t := secs(elapsed)
	for i, s := range p.segs {
		if l := secs(s.Length()); t < p.starts[i]+l {
			return p.cum[i] + s.Hits(t-p.starts[i])
		}
	}
	end := p.starts[len(p.segs)-1] + secs(p.segs[len(p.segs)-1].Length())
	return p.cum[len(p.segs)] + p.tail*(t-end)
}

func (p *Profile) String() string {
	parts := make([]string, len(p.segs))
	for i, s := range p.segs {
		parts[i] = s.String()
	}
	return strings.Join(parts, ", then ")
}
