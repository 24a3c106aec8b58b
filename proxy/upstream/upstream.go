package upstream

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// ErrBadURL reports an upstream URL the edge cannot dial; use http://host:port or https://host:port.
var ErrBadURL = errors.New("upstream: bad url")

// State is what the admin API reports for a host.
type State int32

const (
	// StateUp means the host takes its full share of traffic.
	StateUp State = iota
	// StateDown means active checks failed or passive ejection removed the host.
	StateDown
	// StateDraining means an operator drained the host: no new requests, in-flight ones finish.
	StateDraining
	// StateSlowStart means the host came back recently and its weight is still ramping up.
	StateSlowStart
)

// String returns the admin API spelling of the state.
func (s State) String() string {
	switch s {
	case StateUp:
		return "up"
	case StateDown:
		return "down"
	case StateDraining:
		return "draining"
	case StateSlowStart:
		return "slow-start"
	}
	return "unknown"
}

// ewmaDecay is the time constant of the peak-EWMA latency: a sample older than this
// weighs about 1/e of a fresh one. Ten seconds follows Finagle and Linkerd.
const ewmaDecay = 10 * time.Second

// ewmaMinAlpha is the least weight a new sample gets, however soon it follows the
// last one. With the time constant alone a busy host's samples, a millisecond
// apart, each moved the average by 0.01%, so one stall (GC, the scheduler) held
// the peak for seconds on every host it touched; the hosts' costs then differed
// only by their queues and p2c-ewma sent a host 30 ms slower about a fifth of the
// traffic (issue 14). With 0.2 a peak is forgotten after about fifteen answers.
const ewmaMinAlpha = 0.2

// ewmaAgeShift sets how much Age lowers the average: by 1/2^ewmaAgeShift.
const ewmaAgeShift = 6

// Options tunes the HostClient of every Upstream built by New.
type Options struct {
	// MaxConns caps connections per origin; zero means fasthttp's default (512).
	MaxConns int
	// MaxIdleConnDuration closes keep-alive connections idle this long; zero means 10s.
	MaxIdleConnDuration time.Duration
	// ReadBufferSize bounds response headers from the origin; zero means fasthttp's default.
	ReadBufferSize int
	// MaxResponseBodySize bounds response bodies from the origin; zero means unlimited.
	MaxResponseBodySize int
	// DialTimeout bounds connection set-up; zero means 3s.
	DialTimeout time.Duration
}

// Upstream is one origin host. Its counters are safe for concurrent use; the exported
// fields are set once by New and never written again.
type Upstream struct {
	// Name identifies the host in the admin API, metrics and logs.
	Name string
	// URL is the configured origin URL.
	URL string
	// Addr is host:port dialled by Client.
	Addr string
	// Weight is the configured weight (at least 1).
	Weight int
	// Client is this host's keep-alive connection pool.
	Client *fasthttp.HostClient

	inFlight  atomic.Int64
	failures  atomic.Int64 // consecutive failed requests, reset by a success
	ewmaNs    atomic.Int64 // peak-EWMA latency in nanoseconds
	ewmaStamp atomic.Int64 // unix nanos of the last EWMA update

	healthy        atomic.Bool  // written by package health
	drained        atomic.Bool  // written by the admin API
	slowStartSince atomic.Int64 // unix nanos when the host came back; 0 when not ramping
	slowStartDur   atomic.Int64 // ramp duration in nanos
	http10         atomic.Bool  // the latest answer was HTTP/1.0 (HTTP10)
}

// New builds an Upstream for rawURL ("http://host:port" or "https://host:port").
func New(name, rawURL string, weight int, opt Options) (*Upstream, error) {
	addr, isTLS, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if weight < 1 {
		weight = 1
	}
	if name == "" {
		name = addr
	}
	if opt.MaxIdleConnDuration <= 0 {
		opt.MaxIdleConnDuration = 10 * time.Second
	}
	if opt.DialTimeout <= 0 {
		opt.DialTimeout = 3 * time.Second
	}
	dialTimeout := opt.DialTimeout
	up := &Upstream{
		Name:   name,
		URL:    rawURL,
		Addr:   addr,
		Weight: weight,
		Client: &fasthttp.HostClient{
			Addr:                addr,
			IsTLS:               isTLS,
			MaxConns:            opt.MaxConns,
			MaxIdleConnDuration: opt.MaxIdleConnDuration,
			ReadBufferSize:      opt.ReadBufferSize,
			MaxResponseBodySize: opt.MaxResponseBodySize,
			// The edge forwards the request target as the client sent it; the origin
			// normalises it the same way the edge did when it classified the route.
			DisablePathNormalizing:   true,
			NoDefaultUserAgentHeader: true,
			// One extra attempt covers a keep-alive connection the origin closed while
			// idle; anything else is retried by the edge on another host.
			MaxIdemponentCallAttempts: 2,
			// Reusing the most recently used connection keeps few connections hot and
			// lets the rest reach MaxIdleConnDuration and close.
			ConnPoolStrategy: fasthttp.LIFO,
			// DialTimeout, not Dial: fasthttp passes the request's remaining
			// time (the edge's per-try timeout), so a host that drops SYNs
			// (a dead machine, a full accept queue) costs at most that try,
			// not the whole dial timeout. With Dial the per-try timeout did
			// not cover connection set-up at all (issue 14, failover tail).
			DialTimeout: func(a string, timeout time.Duration) (net.Conn, error) {
				if timeout <= 0 || timeout > dialTimeout {
					timeout = dialTimeout
				}
				return fasthttp.DialTimeout(a, timeout)
			},
		},
	}
	// fasthttp's own transport, but for coded request bodies (CodedBody).
	up.Client.Transport = transport{http10: &up.http10}
	up.healthy.Store(true)
	return up, nil
}

// ParseURL checks an origin URL and returns the host:port to dial (default port 80 or
// 443) and whether to use TLS.
func ParseURL(rawURL string) (addr string, isTLS bool, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", false, fmt.Errorf("%w %q: %v", ErrBadURL, rawURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", false, fmt.Errorf("%w %q: scheme must be http or https", ErrBadURL, rawURL)
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", false, fmt.Errorf("%w %q: missing host", ErrBadURL, rawURL)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return "", false, fmt.Errorf("%w %q: path, query and user info are not supported", ErrBadURL, rawURL)
	}
	isTLS = u.Scheme == "https"
	addr = u.Host
	if u.Port() == "" {
		port := "80"
		if isTLS {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	return addr, isTLS, nil
}

// InFlight returns the requests currently sent to this host and not yet answered.
func (u *Upstream) InFlight() int64 { return u.inFlight.Load() }

// Failures returns the consecutive failed requests since the last success.
func (u *Upstream) Failures() int64 { return u.failures.Load() }

// EWMA returns the peak-EWMA latency; zero before the first answer.
func (u *Upstream) EWMA() time.Duration { return time.Duration(u.ewmaNs.Load()) }

// Begin marks a request sent to the host; pair it with Done.
func (u *Upstream) Begin() { u.inFlight.Add(1) }

// Abandon ends a request begun with Begin that says nothing about the host (it
// failed because of the client): the in-flight count drops, no latency sample is
// taken and the failure streak is left as it was.
func (u *Upstream) Abandon() { u.inFlight.Add(-1) }

// Done marks a request finished after latency; ok reports whether the host answered
// (any HTTP answer but 502/503/504 counts as success). It returns the consecutive
// failure count after this result.
func (u *Upstream) Done(latency time.Duration, ok bool, now time.Time) int64 {
	u.inFlight.Add(-1)
	u.observe(latency, now)
	if ok {
		if u.failures.Load() != 0 {
			u.failures.Store(0)
		}
		return 0
	}
	return u.failures.Add(1)
}

// observe folds one latency sample into the peak-EWMA: a slower sample replaces the
// average at once (so a host that turns slow is avoided immediately), a faster one
// decays it with time constant ewmaDecay, and by at least ewmaMinAlpha.
func (u *Upstream) observe(latency time.Duration, now time.Time) {
	sample := int64(latency)
	if sample <= 0 {
		sample = 1
	}
	nowNs := now.UnixNano()
	for range 4 {
		old := u.ewmaNs.Load()
		var next int64
		if old == 0 || sample > old {
			next = sample
		} else {
			dt := nowNs - u.ewmaStamp.Load()
			if dt < 0 {
				dt = 0
			}
			w := min(math.Exp(-float64(dt)/float64(ewmaDecay)), 1-ewmaMinAlpha)
			next = int64(float64(old)*w + float64(sample)*(1-w))
		}
		if u.ewmaNs.CompareAndSwap(old, next) {
			u.ewmaStamp.Store(nowNs)
			return
		}
	}
}

// Age lowers the EWMA by 1/64 of itself. p2c-ewma calls it on an idle host that
// lost a comparison: such a host gets no answers, so no samples, and without
// ageing a host that was slow once and then recovered would lose every comparison
// for ever (with one client, nothing queues on the fast host to tip the balance).
// About 220 lost comparisons take a 30 ms average under 1 ms; the next answer
// then tells the truth, and a host still slow costs only that one probe. It is
// one compare-and-swap and may lose a race with a sample, which wins.
func (u *Upstream) Age() {
	if old := u.ewmaNs.Load(); old > 1<<ewmaAgeShift {
		u.ewmaNs.CompareAndSwap(old, old-old>>ewmaAgeShift)
	}
}

// Healthy reports what health last decided.
func (u *Upstream) Healthy() bool { return u.healthy.Load() }

// Drained reports whether an operator drained the host.
func (u *Upstream) Drained() bool { return u.drained.Load() }

// Available reports whether the host may take new requests.
func (u *Upstream) Available() bool { return u.healthy.Load() && !u.drained.Load() }

// EffectiveWeight returns the configured weight scaled by the slow-start ramp: a host
// that came back t ago out of a ramp of d gets Weight*t/d, at least 1.
func (u *Upstream) EffectiveWeight(now time.Time) int {
	since := u.slowStartSince.Load()
	if since == 0 {
		return u.Weight
	}
	d := u.slowStartDur.Load()
	el := now.UnixNano() - since
	if d <= 0 || el >= d {
		return u.Weight
	}
	if el < 0 {
		el = 0
	}
	w := int(int64(u.Weight) * el / d)
	if w < 1 {
		w = 1
	}
	return w
}

// InSlowStart reports whether the host's weight is still ramping at now.
func (u *Upstream) InSlowStart(now time.Time) bool {
	since := u.slowStartSince.Load()
	return since != 0 && now.UnixNano()-since < u.slowStartDur.Load()
}

// State summarises the host for the admin API.
func (u *Upstream) State(now time.Time) State {
	switch {
	case u.drained.Load():
		return StateDraining
	case !u.healthy.Load():
		return StateDown
	case u.InSlowStart(now):
		return StateSlowStart
	}
	return StateUp
}

// ResetFailures clears the consecutive failure count; health calls it when an
// ejected host returns so one failure does not eject it again at once.
func (u *Upstream) ResetFailures() { u.failures.Store(0) }
