package proxy

import (
	"errors"
	"net"
	"time"

	"github.com/novashop/edge/proxy/balancer"
	"github.com/novashop/edge/proxy/upstream"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// tries is one forwarded request's way through the hosts: which host each try
// goes to, whether another try may follow (attempts, deadline, retry budget,
// idempotence), and what each try tells health, the balancer, the metrics and
// the access log. Both cores drive it: forward (the goroutine core, through
// fasthttp's HostClient) and forwardOnLoop (the event loop, through
// evloop.Forward), so every decision is written once.
//
// Use: begin, then nextTry / (send) / endTry until nextTry or endTry says
// stop, then result.
type tries struct {
	s        *Server
	rt       *runtime
	policy   balancer.Policy
	req      *fasthttp.Request
	clientIP net.IP
	note     *tryNote
	start    time.Time
	deadline time.Time
	tNow     time.Time // when the current try began
	u        *upstream.Upstream
	lastErr  error
	attempt  int // tries begun so far
	idem     bool
	streamed bool // the request body streams: sent once at most
	haveResp bool // the last try got an answer (a retryable status)
	tried    [maxTries]*upstream.Upstream
	// answered holds the hosts that gave their own 502/503/504: that is their
	// answer, and asking one again only multiplies an overloaded origin's load
	// (issue 14); a retry goes to another host or the answer is passed on.
	answered  [maxTries]*upstream.Upstream
	nAnswered int
}

// begin sets t up for req. start is when the request began; note, when not
// nil, receives the host and try count for the access log.
func (t *tries) begin(s *Server, rt *runtime, req *fasthttp.Request, clientIP net.IP, start time.Time, note *tryNote) {
	*t = tries{s: s, rt: rt, policy: s.policy.Load().p, req: req, clientIP: clientIP, note: note, start: start,
		deadline: start.Add(rt.cfg.Timeouts.Request)}
	// A streamed body can be sent only once, so such a request is never retried
	// once its first byte may have left (see settleRequestBody).
	t.streamed = req.IsBodyStream()
	t.idem = idempotent(req.Header.Method()) && !t.streamed
	rt.budget.Request(start)
}

// nextTry picks the host of the next try, sets the request up for it (Host,
// scheme) and returns its timeout. ok false means no further try: result says
// what the request gets.
func (t *tries) nextTry() (u *upstream.Upstream, timeout time.Duration, ok bool) {
	cfg := &t.rt.cfg
	if t.attempt >= cfg.Retries.Attempts {
		return nil, 0, false
	}
	tNow := t.start
	if t.attempt > 0 {
		tNow = time.Now()
		if !tNow.Before(t.deadline) {
			t.lastErr = ErrUpstreamTimeout
			return nil, 0, false
		}
	}
	u = pickUntried(t.policy, t.rt.pool.Available(), t.rt.pool.All(), t.req, t.clientIP, t.tried[:t.attempt])
	if u == nil {
		if t.attempt == 0 {
			t.s.metrics.NoUpstream.Inc()
			t.lastErr = ErrNoUpstream
		}
		return nil, 0, false // or the pool emptied since the first try
	}
	if contains(t.answered[:t.nAnswered], u) {
		return nil, 0, false // its 502/503/504 stands
	}
	if t.attempt > 0 {
		if !t.rt.budget.AllowRetry(tNow) {
			t.s.metrics.RetriesDenied.Inc()
			return nil, 0, false
		}
		t.s.metrics.Retries.Inc()
	}
	t.tried[t.attempt] = u
	t.attempt++
	if t.note != nil {
		t.note.upstream, t.note.tries = u.Name, t.attempt
	}
	tryDeadline := t.deadline
	if pt := cfg.Retries.PerTryTimeout; pt > 0 && !t.streamed && tNow.Add(pt).Before(t.deadline) {
		tryDeadline = tNow.Add(pt)
	}
	req := t.req
	if len(req.Header.Host()) == 0 {
		req.Header.SetHost(u.Addr)
	}
	if tls := u.Client.IsTLS; tls != (string(req.URI().Scheme()) == "https") {
		if tls {
			req.URI().SetScheme("https")
		} else {
			req.URI().SetScheme("http")
		}
	}
	timeout = tryDeadline.Sub(tNow)
	if timeout <= 0 {
		t.lastErr = ErrUpstreamTimeout
		return nil, 0, false
	}
	t.u, t.tNow, t.haveResp = u, tNow, false
	u.Begin()
	return u, timeout, true
}

// endTry records the outcome of the current try (err, or the answer's status
// code) and reports whether another try should follow.
func (t *tries) endTry(err error, code int) (again bool) {
	u := t.u
	t.u = nil
	done := time.Now()
	lat := done.Sub(t.tNow)
	ok := err == nil && !retryableStatus(code)
	failures := u.Done(lat, ok, done)
	t.rt.health.Passive(u, failures)
	um := t.rt.upMetrics[u]
	if err == nil {
		um.answered(code, lat)
		t.haveResp, t.lastErr = true, nil
		if ok {
			return false
		}
		t.answered[t.nAnswered] = u
		t.nAnswered++
		return t.idem
	}
	um.failed(lat)
	if errors.Is(err, fasthttp.ErrTimeout) {
		t.lastErr = ErrUpstreamTimeout
	} else {
		t.lastErr = errors.Join(ErrUpstreamFailed, err)
	}
	if ce := t.s.log.Check(zap.DebugLevel, "proxy: try failed"); ce != nil {
		ce.Write(zap.String("upstream", u.Name), zap.Int("attempt", t.attempt-1), zap.Error(err))
	}
	return t.idem || neverReached(err)
}

// abandon ends the current try without a verdict on the host: it failed
// because of the client (or is sent again another way), not the origin. The
// try does not count against the attempts.
func (t *tries) abandon() {
	if t.u != nil {
		t.u.Abandon()
		t.u = nil
		t.attempt--
		t.tried[t.attempt] = nil
	}
}

// result is what the request gets once no try follows: nil when the last try
// got an answer (a 502/503/504 that could not be retried passes through).
func (t *tries) result() error {
	if t.haveResp {
		return nil
	}
	if t.lastErr == nil {
		return ErrUpstreamFailed
	}
	return t.lastErr
}
