package pipeline

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"
	"go.uber.org/zap"
)

// Worker is what one `origin worker` process runs: a relay, a consumer and
// a stats poller sharing one Config and one Metrics.
type Worker struct {
	Relay    *Relay
	Consumer *Consumer
	cfg      Config
	db       *pgxpool.Pool
	rdb      rueidis.Client
	log      *zap.Logger
	m        *Metrics
}

// NewWorker checks cfg and makes a Worker. m and log may be nil.
func NewWorker(cfg Config, db *pgxpool.Pool, rdb rueidis.Client, log *zap.Logger, m *Metrics) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	if m == nil {
		m = NewMetrics()
	}
	r, err := NewRelay(cfg, db, rdb, log, m)
	if err != nil {
		return nil, err
	}
	c, err := NewConsumer(cfg, db, rdb, log, m)
	if err != nil {
		return nil, err
	}
	return &Worker{Relay: r, Consumer: c, cfg: cfg, db: db, rdb: rdb, log: log, m: m}, nil
}

// Config is the worker's configuration with defaults applied.
func (w *Worker) Config() Config { return w.cfg }

// Run runs the relay, the consumer and the stats poller until ctx is done,
// then waits for the message in hand (at most ProcessTimeout). If one of
// them fails (a panic), the others are stopped and the error returned.
func (w *Worker) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	fail := func(err error) {
		if err != nil {
			once.Do(func() { first = err })
			cancel()
		}
	}
	wg.Add(3)
	go func() { defer wg.Done(); fail(w.Relay.Run(ctx)) }()
	go func() { defer wg.Done(); fail(w.Consumer.Run(ctx)) }()
	go func() { defer wg.Done(); fail(w.pollStats(ctx)) }()
	wg.Wait()
	return first
}

// Stats is a snapshot of the pipeline's backlog.
type Stats struct {
	GroupStats
	// OutboxUnsent is outbox rows not yet relayed.
	OutboxUnsent int64
	// Inflight is relayed rows not yet processed.
	Inflight int64
}

// ReadStats reads the backlog from PostgreSQL and Redis.
func (w *Worker) ReadStats(ctx context.Context) (Stats, error) {
	var s Stats
	if err := w.db.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM outbox WHERE sent_at IS NULL),
		(SELECT count(*) FROM pipeline_inflight)`).Scan(&s.OutboxUnsent, &s.Inflight); err != nil {
		return s, fmt.Errorf("pipeline: stats: %w", err)
	}
	g, err := groupStats(ctx, w.rdb, w.cfg)
	if err != nil {
		return s, err
	}
	s.GroupStats = g
	return s, nil
}

// pollStats refreshes the backlog gauges every StatsInterval.
func (w *Worker) pollStats(ctx context.Context) (err error) {
	defer recoverLog(w.log, "stats poller", &err)
	t := time.NewTicker(w.cfg.StatsInterval)
	defer t.Stop()
	for {
		if s, err := w.ReadStats(ctx); err == nil {
			w.m.StreamLag.Set(float64(s.Lag))
			w.m.Pending.Set(float64(s.Pending))
			w.m.OutboxUnsent.Set(float64(s.OutboxUnsent))
			w.m.Inflight.Set(float64(s.Inflight))
		} else if ctx.Err() == nil {
			w.log.Debug("pipeline: stats unavailable", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
