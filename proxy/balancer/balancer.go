package balancer

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"

	"github.com/novashop/edge/proxy/upstream"
	"github.com/valyala/fasthttp"
)

// ErrUnknownPolicy reports a policy name New does not know; see Names for valid ones.
var ErrUnknownPolicy = errors.New("balancer: unknown policy")

// ErrBadHashKey reports a hash key ParseHashKey cannot read; use ip, path,
// header:NAME or cookie:NAME.
var ErrBadHashKey = errors.New("balancer: bad hash key")

// Policy picks one host for a request.
type Policy interface {
	// Name returns the policy's configuration name, e.g. "round-robin".
	Name() string
	// Pick returns a host from set, or nil when set has no hosts. req and clientIP
	// are only read during the call (hash reads its key from them); other policies
	// ignore them and accept nil. They are not a RequestCtx on purpose: the cache
	// may forward after the handler returned, when the RequestCtx is gone.
	Pick(set *upstream.Set, req *fasthttp.Request, clientIP net.IP) *upstream.Upstream
}

// Rand is the randomness a policy draws from; *math/rand/v2.Rand satisfies it via
// IntN, so tests pass a seeded source through an adapter.
type Rand interface {
	// Intn returns a uniform integer in [0, n); n > 0.
	Intn(n int) int
}

// defaultRand uses math/rand/v2's goroutine-safe, lock-free global source.
type defaultRand struct{}

func (defaultRand) Intn(n int) int { return rand.IntN(n) }

// Policy names accepted by New.
const (
	RoundRobinName = "round-robin"
	WeightedName   = "weighted"
	LeastConnName  = "least-conn"
	P2CEWMAName    = "p2c-ewma"
	RandomName     = "random"
	HashName       = "hash"
)

// Names lists every policy New accepts, in documentation order.
var Names = []string{RoundRobinName, WeightedName, LeastConnName, P2CEWMAName, RandomName, HashName}

// Options configures New.
type Options struct {
	// HashKey is what the hash policy hashes; the zero value hashes the client IP.
	HashKey HashKey
	// Rand is the randomness source; nil means math/rand/v2's global source.
	Rand Rand
}

// New builds the policy called name.
func New(name string, opt Options) (Policy, error) {
	rnd := opt.Rand
	if rnd == nil {
		rnd = defaultRand{}
	}
	switch name {
	case RoundRobinName:
		return &RoundRobin{}, nil
	case WeightedName:
		return &Weighted{}, nil
	case LeastConnName:
		return &LeastConn{rnd: rnd}, nil
	case P2CEWMAName:
		return &P2CEWMA{rnd: rnd}, nil
	case RandomName:
		return &Random{rnd: rnd}, nil
	case HashName:
		return &Hash{key: opt.HashKey, rnd: rnd}, nil
	}
	return nil, fmt.Errorf("%w %q (want one of %s)", ErrUnknownPolicy, name, strings.Join(Names, ", "))
}

// Interface guards.
var (
	_ Policy = (*RoundRobin)(nil)
	_ Policy = (*Weighted)(nil)
	_ Policy = (*LeastConn)(nil)
	_ Policy = (*P2CEWMA)(nil)
	_ Policy = (*Random)(nil)
	_ Policy = (*Hash)(nil)
)
