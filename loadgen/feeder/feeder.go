package feeder

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
)

// ErrEmpty is returned by Next on a pool nothing has been put into yet; the
// targeter then picks another request.
var ErrEmpty = errors.New("feeder: pool is empty")

// ErrInvalid is returned by the constructors for a feeder that could never
// produce a value.
var ErrInvalid = errors.New("feeder: invalid feeder")

// Feeder yields one value per call.
type Feeder interface {
	Next() (string, error)
}

// Rand is the randomness a feeder draws from; *rand.Rand satisfies it.
type Rand interface {
	IntN(n int) int
}

// lockedRand makes a Rand safe for concurrent use.
type lockedRand struct {
	mu sync.Mutex
	r  Rand
}

func (l *lockedRand) IntN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.IntN(n)
}

// NewRand returns a concurrency-safe Rand seeded with seed.
func NewRand(seed uint64) Rand {
	return &lockedRand{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Range yields integers in [Min, Max] uniformly.
type Range struct {
	min, max int
	rnd      Rand
}

// NewRange returns a Range; min must not exceed max.
func NewRange(min, max int, rnd Rand) (*Range, error) {
	if min > max {
		return nil, fmt.Errorf("%w: range [%d, %d] is empty", ErrInvalid, min, max)
	}
	if max-min >= 1<<40 {
		return nil, fmt.Errorf("%w: range [%d, %d] is too wide", ErrInvalid, min, max)
	}
	return &Range{min: min, max: max, rnd: rnd}, nil
}

// Next implements Feeder.
func (r *Range) Next() (string, error) {
	return strconv.Itoa(r.min + r.rnd.IntN(r.max-r.min+1)), nil
}

// List yields one of its values uniformly.
type List struct {
	values []string
	rnd    Rand
}

// NewList returns a List; it needs at least one value.
func NewList(values []string, rnd Rand) (*List, error) {
	if len(values) == 0 {
		return nil, fmt.Errorf("%w: list has no value", ErrInvalid)
	}
	return &List{values: append([]string(nil), values...), rnd: rnd}, nil
}

// Next implements Feeder.
func (l *List) Next() (string, error) { return l.values[l.rnd.IntN(len(l.values))], nil }

// NewUsers returns a List of the seeded user names prefix1..prefixN.
func NewUsers(prefix string, n int, rnd Rand) (*List, error) {
	if n <= 0 || n > 10_000_000 {
		return nil, fmt.Errorf("%w: user count %d must be between 1 and 10000000", ErrInvalid, n)
	}
	if prefix == "" {
		return nil, fmt.Errorf("%w: user prefix is empty", ErrInvalid)
	}
	vs := make([]string, n)
	for i := range vs {
		vs[i] = prefix + strconv.Itoa(i+1)
	}
	return NewList(vs, rnd)
}

// Pool keeps the last Size values put into it (a ring) and yields one of
// them at random. Requests fill it from their answers, e.g. the "next"
// cursor of a product list, so later requests follow real cursors.
type Pool struct {
	mu   sync.Mutex
	ring []string
	next int
	full bool
	rnd  Rand
}

// NewPool returns an empty Pool holding at most size values.
func NewPool(size int, rnd Rand) (*Pool, error) {
	if size <= 0 || size > 1_000_000 {
		return nil, fmt.Errorf("%w: pool size %d must be between 1 and 1000000", ErrInvalid, size)
	}
	return &Pool{ring: make([]string, size), rnd: rnd}, nil
}

// Put adds v, evicting the oldest value when full.
func (p *Pool) Put(v string) {
	p.mu.Lock()
	p.ring[p.next] = v
	p.next++
	if p.next == len(p.ring) {
		p.next, p.full = 0, true
	}
	p.mu.Unlock()
}

// Len is the number of values held.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.full {
		return len(p.ring)
	}
	return p.next
}

// Next implements Feeder; it returns ErrEmpty until something was Put.
func (p *Pool) Next() (string, error) {
	n := p.Len()
	if n == 0 {
		return "", ErrEmpty
	}
	i := p.rnd.IntN(n)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ring[i], nil
}

// Interface guards.
var (
	_ Feeder = (*Range)(nil)
	_ Feeder = (*List)(nil)
	_ Feeder = (*Pool)(nil)
)

// Stride yields uniformly one of first, first+step, ... (count values):
// shard I of N of a range or of the seeded users keeps the values whose
// index is ≡ I-1 mod N, so shards never share a product, user or cart.
type Stride struct {
	first, step, count int
	prefix             string
	rnd                Rand
}

// NewRangeShard returns shard i (from 0) of n of [min, max]: the values
// min+i, min+i+n, ... It needs at least one value per shard.
func NewRangeShard(min, max, i, n int, rnd Rand) (*Stride, error) {
	if _, err := NewRange(min, max, rnd); err != nil {
		return nil, err
	}
	if n < 1 || i < 0 || i >= n {
		return nil, fmt.Errorf("%w: shard %d of %d", ErrInvalid, i+1, n)
	}
	size := max - min + 1
	if size < n {
		return nil, fmt.Errorf("%w: range [%d, %d] has %d values, fewer than the %d shards", ErrInvalid, min, max, size, n)
	}
	return &Stride{first: min + i, step: n, count: (size - i + n - 1) / n, rnd: rnd}, nil
}

// NewUsersShard returns shard i (from 0) of n of the seeded users
// prefix1..prefixCount: prefix(i+1), prefix(i+1+n), ...
func NewUsersShard(prefix string, count, i, n int, rnd Rand) (*Stride, error) {
	if _, err := NewUsers(prefix, 1, rnd); err != nil {
		return nil, err
	}
	s, err := NewRangeShard(1, count, i, n, rnd)
	if err != nil {
		return nil, err
	}
	s.prefix = prefix
	return s, nil
}

// Next implements Feeder.
func (s *Stride) Next() (string, error) {
	return s.prefix + strconv.Itoa(s.first+s.step*s.rnd.IntN(s.count)), nil
}
