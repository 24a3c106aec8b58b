package cpu

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// QuietCores is the CPU rate, in cores and over every measured source
// together, under which the measured processes count as gone quiet: 5% of
// one core. Over a SettleWindow that is 12.5 ms, so one 10 ms /proc tick
// of idle housekeeping (a Redis timer, a PostgreSQL checkpointer wake-up)
// still counts as quiet, while any real leftover work (a backlog being
// served, a background refresh) does not.
const QuietCores = 0.05

// SettleWindow is how long each quiet check watches. A quarter second is
// 25 ticks of /proc resolution: fine enough to end a settle soon after the
// work stops, coarse enough that the 10 ms quantum does not decide it.
const SettleWindow = 250 * time.Millisecond

// MaxSettle bounds --settle: a longer wait means the processes are never
// quiet and waiting longer would only lengthen the campaign.
const MaxSettle = time.Minute

// ErrSettle marks a --settle value that cannot be used.
var ErrSettle = fmt.Errorf("%w: settle", ErrSpec)

// DefaultSettle is --settle's bound when --cpu or --cgroup is given. The
// leftover work of a run (nginx round-robin's queue, origin and PostgreSQL
// work still running, background refreshes the edge started) drains in
// well under a second at the rates this box serves; 2 s leaves room for a
// slow drain on a loaded machine, and because the wait ends as soon as the
// processes are quiet it costs a few SettleWindows per run, not 2 s.
const DefaultSettle = 2 * time.Second

// ParseSettle reads --settle: "auto" (DefaultSettle when CPU is measured,
// else 0), or a duration within [0, MaxSettle]. measured says whether
// --cpu or --cgroup was given.
func ParseSettle(s string, measured bool) (time.Duration, error) {
	if strings.TrimSpace(s) == "auto" {
		if measured {
			return DefaultSettle, nil
		}
		return 0, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%w: --settle %q is not a duration or auto", ErrSettle, s)
	}
	if d < 0 || d > MaxSettle {
		return 0, fmt.Errorf("%w: --settle %s must be within [0, %s]", ErrSettle, d, MaxSettle)
	}
	return d, nil
}

// Settled is the outcome of one Settle.
type Settled struct {
	// Reading is the sources' CPU time when the wait ended.
	Reading Reading
	// Waited is how long it waited.
	Waited time.Duration
	// Quiet is false when the bound (or ctx) ended the wait first.
	Quiet bool
}

// Settle waits, window by window, until the meter's sources together use
// less than QuietCores over one SettleWindow and none of their threads is
// runnable (Runnable), at most bound (the last
// window is shortened to fit), or until ctx ends. It returns the reading
// at the end of the wait, so the caller can close one run's account and
// open the next one's with it. window <= 0 means SettleWindow.
func (m *Meter) Settle(ctx context.Context, bound, window time.Duration) (Settled, error) {
	if window <= 0 {
		window = SettleWindow
	}
	start := time.Now()
	prev, err := m.Sample()
	if err != nil {
		return Settled{}, err
	}
	if bound <= 0 {
		return Settled{Reading: prev}, nil
	}
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for {
		left := bound - time.Since(start)
		if left <= 0 {
			return Settled{Reading: prev, Waited: time.Since(start)}, nil
		}
		w := min(window, left)
		from := time.Now()
		t.Reset(w)
		select {
		case <-ctx.Done():
			return Settled{Reading: prev, Waited: time.Since(start)}, nil
		case <-t.C:
		}
		cur, err := m.Sample()
		if err != nil {
			return Settled{}, err
		}
		var used time.Duration
		for _, d := range Delta(prev, cur) {
			used += d
		}
		prev = cur
		// Only a full window decides quiet: a clipped last one is too short
		// for the 10 ms tick to say anything.
		elapsed := time.Since(from)
		// A runnable thread is not quiet whatever its rate: on a loaded
		// machine a starved process uses little CPU while its work waits.
		if w == window && float64(used) <= QuietCores*float64(elapsed) && !m.Runnable() {
			return Settled{Reading: cur, Waited: time.Since(start), Quiet: true}, nil
		}
	}
}
