package attack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/novashop/edge/loadgen/campaign"
	"github.com/novashop/edge/loadgen/metrics"
	"github.com/novashop/edge/loadgen/pacer"
	"github.com/novashop/edge/loadgen/targeter"
	vegeta "github.com/tsenart/vegeta/v12/lib"
	"go.uber.org/zap"
)

// Note is the sentence reports print about the load model.
const Note = "Open-model load: every request's latency is counted from its intended send time, so stalls cannot hide (no coordinated omission)."

// Defaults, reused as flag defaults by cmd/loadgen.
const (
	// DefaultWorkers is how many vegeta workers start; more are added
	// whenever all are busy, as the load is open-model.
	DefaultWorkers = 32
	// DefaultProgressEvery is how often the progress line is redrawn.
	DefaultProgressEvery = time.Second
	// PlainProgressEvery is how often a PlainWriter gets a line: logs
	// and CI consoles want a heartbeat, not a redraw every second.
	PlainProgressEvery = 10 * time.Second
)

// ErrOptions is returned for options that cannot run an attack.
var ErrOptions = errors.New("attack: invalid options")

// Options configure one run.
type Options struct {
	// Name labels the target in results and reports.
	Name string
	// URL is the target's base URL, e.g. http://127.0.0.1:8080.
	URL string
	// Rate, when > 0, replaces the campaign's profile by this constant rate.
	Rate float64
	// Duration, when > 0, replaces the campaign's duration.
	Duration time.Duration
	// MaxWorkers bounds vegeta's workers; 0 means unbounded (open model).
	MaxWorkers uint64
	// Progress receives a progress line redrawn in place each second;
	// nil keeps quiet.
	Progress io.Writer
	// OnResult, when set, sees every result after its latency was
	// corrected and before it is counted (the attack command encodes it).
	OnResult func(*vegeta.Result) error
	// Log receives debug events; nil means none.
	Log *zap.Logger
	// Shard and Shards, when Shards > 1, run shard Shard (from 1) of a
	// distributed campaign: every Shards-th hit of the rate profile
	// (pacer.Shard) and a disjoint share of the feeders
	// (targeter.NewShard).
	Shard, Shards int
	// StartAt, when set, is the instant the attack starts (all shards
	// alike); Run waits for it and refuses one already past.
	StartAt time.Time
}

// plainEvery is PlainProgressEvery, shortened by tests.
var plainEvery = PlainProgressEvery

// PlainWriter marks a Progress writer that is not a terminal (a log, a
// CI console): it gets one whole line every PlainProgressEvery instead of
// a line redrawn in place with carriage returns.
type PlainWriter struct{ io.Writer }

// pacing is what Run needs of a rate profile.
type pacing interface {
	vegeta.Pacer
	At(n uint64) (time.Duration, bool)
	String() string
}

// Outcome is what one run measured.
type Outcome struct {
	Metrics  *metrics.Metrics
	Journeys targeter.Stats
	// MaxSendLag is how far behind its schedule the load generator sent a
	// request at worst; large values mean the generator, not only the
	// target, was saturated.
	MaxSendLag time.Duration
	// Interrupted is true when ctx ended the run early.
	Interrupted bool
	// Profile describes the rate profile that ran.
	Profile string
}

// Run attacks o.URL with c until the duration ends or ctx is done.
func Run(ctx context.Context, c *campaign.Campaign, o Options) (*Outcome, error) {
	if o.Name == "" {
		return nil, fmt.Errorf("%w: the target needs a name", ErrOptions)
	}
	cc := *c
	if o.Rate > 0 {
		cc.WithRate(o.Rate)
	} else if o.Rate < 0 {
		return nil, fmt.Errorf("%w: rate %g must be positive", ErrOptions, o.Rate)
	}
	du := time.Duration(cc.Duration)
	if o.Duration > 0 {
		du = o.Duration
	} else if o.Duration < 0 {
		return nil, fmt.Errorf("%w: duration %s must be positive", ErrOptions, o.Duration)
	}
	prof, err := cc.Pacer()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOptions, err)
	}
	shards := max(o.Shards, 1)
	if o.Shard == 0 && shards == 1 {
		o.Shard = 1
	}
	if o.Shard < 1 || o.Shard > shards {
		return nil, fmt.Errorf("%w: shard %d/%d: I must be between 1 and N", ErrOptions, o.Shard, o.Shards)
	}
	var p pacing = prof
	if shards > 1 {
		p = &pacer.Shard{P: prof, I: uint64(o.Shard - 1), N: uint64(shards)}
	}
	tr, err := targeter.NewShard(&cc, o.URL, o.Shard-1, shards)
	if err != nil {
		return nil, err
	}
	if !o.StartAt.IsZero() {
		wait := time.Until(o.StartAt)
		if wait < 0 {
			return nil, fmt.Errorf("%w: start time %s has already passed (%s ago)", ErrOptions, o.StartAt.UTC().Format(time.RFC3339Nano), (-wait).Round(time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	log := o.Log
	if log == nil {
		log = zap.NewNop()
	}
	client := newClient(time.Duration(cc.Timeout), tr.NeedsBody)
	// Idle keep-alive connections would otherwise linger on the target
	// (and count against it) while the next target of a comparison runs.
	defer client.CloseIdleConnections()
	opts := []func(*vegeta.Attacker){
		vegeta.Client(client),
		vegeta.Workers(DefaultWorkers),
	}
	if o.MaxWorkers > 0 {
		opts = append(opts, vegeta.MaxWorkers(o.MaxWorkers))
	}
	atk := vegeta.NewAttacker(opts...)
	out := &Outcome{Profile: p.String()}
	began := time.Now()
	m := metrics.New(o.Name, o.URL, began)
	out.Metrics = m
	results := atk.Attack(tr.Targeter(), p, du, o.Name)
	tick := time.NewTicker(DefaultProgressEvery)
	defer tick.Stop()
	done := ctx.Done()
	nextPlain := plainEvery
	var cbErr error
	for {
		select {
		case <-done:
			out.Interrupted = true
			atk.Stop()
			done = nil
			log.Debug("attack interrupted", zap.String("target", o.Name))
		case <-tick.C:
			if pw, ok := o.Progress.(PlainWriter); ok {
				if el := time.Since(began); el >= nextPlain {
					nextPlain += plainEvery
					plainProgress(pw, m, el, du)
				}
				continue
			}
			progress(o.Progress, m, time.Since(began), du, false)
		case r, ok := <-results:
			if !ok {
				m.Close()
				out.Journeys = tr.Stats()
				m.Journeys = metrics.Journeys(out.Journeys)
				m.MaxSendLag = out.MaxSendLag
				if _, plain := o.Progress.(PlainWriter); !plain {
					progress(o.Progress, m, time.Since(began), du, true)
				}
				return out, cbErr
			}
			tr.Observe(r)
			// Results bodies were needed for extraction only; dropping
			// them keeps memory and result files small.
			r.Body = nil
			if at, ok := p.At(r.Seq); ok {
				intended := began.Add(at)
				if lag := r.Timestamp.Sub(intended); lag > 0 {
					out.MaxSendLag = max(out.MaxSendLag, lag)
					r.Latency += lag
					r.Timestamp = intended
				}
			}
			if o.OnResult != nil && cbErr == nil {
				if cbErr = o.OnResult(r); cbErr != nil {
					atk.Stop()
				}
			}
			m.Add(r)
		}
	}
}

// plainProgress writes one whole progress line: target, elapsed and
// remaining time, current rate, errors so far, success and p99.
func plainProgress(w io.Writer, m *metrics.Metrics, elapsed, du time.Duration) {
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(m.Requests) / s
	}
	left := max(du-elapsed, 0).Round(time.Second)
	fmt.Fprintf(w, "loadgen: %s: %s of %s (%s left), %.1f req/s, %d errors, success %.3f%%, p99 %s\n",
		m.Name, elapsed.Round(time.Second), du, left, rate, m.Requests-m.Success, 100*m.SuccessRatio(), m.Quantile(0.99).Round(time.Microsecond))
}

func progress(w io.Writer, m *metrics.Metrics, elapsed, du time.Duration, final bool) {
	if w == nil {
		return
	}
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(m.Requests) / s
	}
	end := ""
	if final {
		end = "\n"
	}
	left := max(du-elapsed, 0)
	fmt.Fprintf(w, "\r%-10s %6.1fs/%s (%.0fs left)  %8.1f req/s  errors %-6d success %7.3f%%  p99 %-10s%s",
		m.Name, elapsed.Seconds(), du, left.Seconds(), rate, m.Requests-m.Success, 100*m.SuccessRatio(), m.Quantile(0.99).Round(time.Microsecond), end)
}
