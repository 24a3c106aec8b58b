package pipeline

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Defaults, used by Config.withDefaults and as the worker command's flag
// defaults.
const (
	DefaultStream           = "novashop:orders"
	DefaultGroup            = "order-workers"
	DefaultDeadLetterStream = "novashop:orders:dead"
	DefaultBatchSize        = 100
	DefaultBlock            = time.Second
	DefaultPollInterval     = 100 * time.Millisecond
	DefaultListenPoll       = 5 * time.Second
	DefaultClaimTimeout     = 30 * time.Second
	DefaultMaxDeliveries    = 5
	DefaultRedeliverAfter   = 10 * time.Second
	DefaultMaxLen           = 1_000_000
	DefaultStatsInterval    = 5 * time.Second
	DefaultProcessTimeout   = 10 * time.Second
)

// Config tunes a relay and a consumer. The zero value of every field means
// its default; call Validate (New does) before use.
type Config struct {
	// Stream is the Redis Stream orders travel on.
	Stream string
	// Group is the consumer group every worker joins; each message goes to
	// one member of the group.
	Group string
	// DeadLetterStream receives a copy of each dead letter, for operators
	// who watch Redis; the durable record is the pipeline_dead_letters table.
	DeadLetterStream string
	// Consumer names this worker inside the group. It must be unique among
	// live workers and stable across restarts of the same worker, so its
	// own pending messages are retried first. Default: hostname-pid.
	Consumer string
	// BatchSize bounds the outbox rows relayed per transaction and the
	// entries read or reclaimed per round trip.
	BatchSize int
	// Block is how long one XREADGROUP waits for new entries; it also
	// bounds how long shutdown waits for an idle consumer.
	Block time.Duration
	// PollInterval is how often the relay looks for unsent outbox rows when
	// the last look found none and it cannot LISTEN (its notification
	// connection is down). It bounds the added latency of an order then.
	PollInterval time.Duration
	// ListenPollInterval is how often the relay looks anyway while it
	// LISTENs for the outbox trigger's notifications (ListenChannel): a
	// safety net only, since a notification wakes it at each new row. An idle
	// shop then costs one look per interval instead of ten a second.
	ListenPollInterval time.Duration
	// ClaimTimeout is how long a message may stay pending (read, not
	// acknowledged) before another worker reclaims it with XAUTOCLAIM. It
	// must exceed the longest processing time, or live workers' messages
	// are processed twice (harmless, but wasted work).
	ClaimTimeout time.Duration
	// MaxDeliveries is how many times a message is delivered before it is
	// dead-lettered instead of processed again.
	MaxDeliveries int
	// RedeliverAfter is how old a relayed-but-unprocessed outbox row must be
	// before the sweeper checks that its stream entry still exists and
	// relays it again if not (Redis restarted without persistence).
	RedeliverAfter time.Duration
	// MaxLen caps the stream approximately (XADD MAXLEN ~). Trimming is
	// safe: an unprocessed entry trimmed away is relayed again by the
	// sweeper. Zero or negative: the stream is never trimmed.
	MaxLen int64
	// StatsInterval is how often stream lag, pending and outbox backlog
	// gauges are refreshed.
	StatsInterval time.Duration
	// ProcessTimeout bounds one message's database transaction; it is also
	// how long shutdown waits for the message in hand.
	ProcessTimeout time.Duration
}

// withDefaults fills zero fields; it is the one place defaults are applied.
func (c Config) withDefaults() Config {
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	if c.DeadLetterStream == "" {
		c.DeadLetterStream = DefaultDeadLetterStream
	}
	if c.Consumer == "" {
		c.Consumer = DefaultConsumerName()
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Block == 0 {
		c.Block = DefaultBlock
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.ListenPollInterval == 0 {
		c.ListenPollInterval = DefaultListenPoll
	}
	if c.ClaimTimeout == 0 {
		c.ClaimTimeout = DefaultClaimTimeout
	}
	if c.MaxDeliveries == 0 {
		c.MaxDeliveries = DefaultMaxDeliveries
	}
	if c.RedeliverAfter == 0 {
		c.RedeliverAfter = DefaultRedeliverAfter
	}
	if c.StatsInterval == 0 {
		c.StatsInterval = DefaultStatsInterval
	}
	if c.ProcessTimeout == 0 {
		c.ProcessTimeout = DefaultProcessTimeout
	}
	return c
}

// Validate reports every out-of-range field at once, after defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []string
	if c.Stream == c.DeadLetterStream {
		errs = append(errs, "the dead-letter stream must differ from the stream")
	}
	if strings.ContainsAny(c.Consumer, " \t\r\n") {
		errs = append(errs, fmt.Sprintf("consumer name %q must not contain spaces", c.Consumer))
	}
	if c.BatchSize < 1 || c.BatchSize > 10000 {
		errs = append(errs, fmt.Sprintf("batch size %d must be 1..10000", c.BatchSize))
	}
	if c.Block < time.Millisecond || c.Block > time.Minute {
		errs = append(errs, fmt.Sprintf("block %s must be 1ms..1m", c.Block))
	}
	if c.PollInterval < time.Millisecond {
		errs = append(errs, fmt.Sprintf("poll interval %s must be at least 1ms", c.PollInterval))
	}
	if c.ListenPollInterval < time.Millisecond || c.ListenPollInterval > time.Hour {
		errs = append(errs, fmt.Sprintf("listen poll interval %s must be 1ms..1h", c.ListenPollInterval))
	}
	if c.ClaimTimeout < 10*time.Millisecond {
		errs = append(errs, fmt.Sprintf("claim timeout %s must be at least 10ms", c.ClaimTimeout))
	}
	if c.MaxDeliveries < 1 || c.MaxDeliveries > 1000 {
		errs = append(errs, fmt.Sprintf("max deliveries %d must be 1..1000", c.MaxDeliveries))
	}
	if c.RedeliverAfter < 10*time.Millisecond {
		errs = append(errs, fmt.Sprintf("redeliver-after %s must be at least 10ms", c.RedeliverAfter))
	}
	if c.StatsInterval < 10*time.Millisecond {
		errs = append(errs, fmt.Sprintf("stats interval %s must be at least 10ms", c.StatsInterval))
	}
	if c.ProcessTimeout < 10*time.Millisecond {
		errs = append(errs, fmt.Sprintf("process timeout %s must be at least 10ms", c.ProcessTimeout))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrBadConfig, strings.Join(errs, "; "))
	}
	return nil
}

// DefaultConsumerName is hostname-pid: unique per process on a host, and in
// a container the hostname is the container id or pod name.
func DefaultConsumerName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "worker"
	}
	return h + "-" + strconv.Itoa(os.Getpid())
}

// errJoin keeps the first error and counts the rest, so a batch with many
// failures logs one readable line.
func errJoin(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return fmt.Errorf("%w (and %d more)", errs[0], len(errs)-1)
}
