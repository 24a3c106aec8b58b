package workercmd

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/novashop/edge/internal/metricshelp"
	"github.com/redis/rueidis"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/novashop/edge/origin/db"
	"github.com/novashop/edge/origin/pipeline"
)

// ErrUsage marks a bad command line (exit status 2 by convention); the
// message says which flag is wrong.
var ErrUsage = errors.New("worker: bad command line")

// ErrUnreachable means PostgreSQL or Redis did not answer at start-up.
var ErrUnreachable = errors.New("worker: unreachable")

const usage = `usage: origin worker [flags]

Runs the asynchronous order pipeline: relays outbox rows to a Redis Stream
and, as one member of a consumer group, confirms orders and records their
notifications. Run as many as you like; stop with SIGTERM (graceful).

  origin worker --dead-letters [--limit N] [--json]   list dead letters and exit
  origin worker --requeue ID                          send a dead letter again and exit

Flags (environment variable in brackets):
`

// options are the parsed flags.
type options struct {
	databaseURL, redisURL, metricsListen, logLevel string
	cfg                                            pipeline.Config
	deadLetters, jsonOut                           bool
	limit                                          int
	requeue                                        int64
}

func newFlagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("origin worker", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned as one line; --help prints usage itself
	env := func(name, def string) string {
		if v, ok := os.LookupEnv(name); ok {
			return v
		}
		return def
	}
	fs.StringVar(&o.databaseURL, "database-url", env("DATABASE_URL", ""), "PostgreSQL URL [DATABASE_URL]")
	fs.StringVar(&o.redisURL, "redis-url", env("REDIS_URL", ""), "Redis URL, redis://host:port/db [REDIS_URL]")
	fs.StringVar(&o.metricsListen, "metrics-listen", env("WORKER_METRICS_LISTEN", ""),
		"serve /metrics and /healthz on this address, e.g. :9100 (empty: off) [WORKER_METRICS_LISTEN]")
	fs.StringVar(&o.logLevel, "log-level", env("LOG_LEVEL", "info"), "debug, info, warn or error [LOG_LEVEL]")
	fs.StringVar(&o.cfg.Consumer, "consumer", env("WORKER_CONSUMER", ""),
		"name in the consumer group; unique per live worker, stable across its restarts (default hostname-pid) [WORKER_CONSUMER]")
	fs.IntVar(&o.cfg.BatchSize, "batch-size", pipeline.DefaultBatchSize, "outbox rows per relay transaction and entries per read")
	fs.DurationVar(&o.cfg.ClaimTimeout, "claim-timeout", pipeline.DefaultClaimTimeout,
		"reclaim a message left unacknowledged this long (a dead or stuck worker's)")
	fs.IntVar(&o.cfg.MaxDeliveries, "max-deliveries", pipeline.DefaultMaxDeliveries, "deliveries before a message is dead-lettered")
	fs.DurationVar(&o.cfg.Block, "block", pipeline.DefaultBlock, "longest wait of one stream read")
	fs.DurationVar(&o.cfg.PollInterval, "poll-interval", pipeline.DefaultPollInterval, "how often the relay looks for new outbox rows while it cannot LISTEN for them")
	fs.DurationVar(&o.cfg.ListenPollInterval, "listen-poll-interval", pipeline.DefaultListenPoll, "how often the relay looks anyway while it LISTENs for new outbox rows (a safety net; notifications wake it at once)")
	fs.DurationVar(&o.cfg.RedeliverAfter, "redeliver-after", pipeline.DefaultRedeliverAfter,
		"relay again an unprocessed row this old whose stream entry vanished (Redis restart)")
	fs.DurationVar(&o.cfg.StatsInterval, "stats-interval", pipeline.DefaultStatsInterval, "how often lag and pending gauges are refreshed")
	fs.Int64Var(&o.cfg.MaxLen, "stream-max-len", pipeline.DefaultMaxLen, "approximate stream length cap (0: never trim)")
	fs.StringVar(&o.cfg.Stream, "stream", pipeline.DefaultStream, "Redis Stream of orders")
	fs.StringVar(&o.cfg.Group, "group", pipeline.DefaultGroup, "consumer group name")
	fs.StringVar(&o.cfg.DeadLetterStream, "dead-letter-stream", pipeline.DefaultDeadLetterStream, "Redis Stream receiving dead letters")
	fs.BoolVar(&o.deadLetters, "dead-letters", false, "list dead letters (newest first) and exit; needs only --database-url")
	fs.IntVar(&o.limit, "limit", 100, "with --dead-letters: how many")
	fs.BoolVar(&o.jsonOut, "json", false, "with --dead-letters: JSON lines instead of a table")
	fs.Int64Var(&o.requeue, "requeue", 0, "put dead letter ID back on the outbox and exit")
	return fs
}

// Run is `origin worker`. --help prints the usage to stdout and returns
// nil; every failure is returned as an error of one line.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	fs := newFlagSet(&o)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, fs)
			return nil
		}
		return fmt.Errorf("%w: %v (see origin worker --help)", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q (see origin worker --help)", ErrUsage, fs.Arg(0))
	}
	if o.databaseURL == "" {
		return fmt.Errorf("%w: --database-url (or DATABASE_URL) is required", ErrUsage)
	}
	var level zapcore.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", ErrUsage, o.logLevel)
	}
	if o.requeue < 0 {
		return fmt.Errorf("%w: --requeue %d: want a dead letter id", ErrUsage, o.requeue)
	}
	if o.deadLetters || o.requeue > 0 {
		return runAdmin(ctx, o, stdout)
	}
	if o.redisURL == "" {
		return fmt.Errorf("%w: --redis-url (or REDIS_URL) is required", ErrUsage)
	}
	if err := o.cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	log := newLogger(stderr, level)
	defer func() { _ = log.Sync() }()
	return runWorker(ctx, o, log)
}

func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, usage)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

func newLogger(w io.Writer, level zapcore.Level) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), level)
	return zap.New(core).With(zap.String("service", "worker"))
}

// openDB connects and checks the schema, with the URL's password kept out
// of the error.
func openDB(ctx context.Context, dbURL string) (*pgxpool.Pool, error) {
	pool, err := db.Open(ctx, dbURL, db.Options{MaxConns: 8})
	if err != nil {
		if errors.Is(err, db.ErrBadURL) {
			return nil, fmt.Errorf("%w: --database-url: %v", ErrUsage, err)
		}
		return nil, fmt.Errorf("%w: PostgreSQL at %s: %v", ErrUnreachable, redact(dbURL), oneLine(err))
	}
	if err := pipeline.CheckSchema(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

func runAdmin(ctx context.Context, o options, stdout io.Writer) error {
	pool, err := openDB(ctx, o.databaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if o.requeue > 0 {
		if err := pipeline.Requeue(ctx, pool, o.requeue); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "dead letter %d requeued: the relay sends it again\n", o.requeue)
		return nil
	}
	dls, err := pipeline.ListDeadLetters(ctx, pool, o.limit)
	if err != nil {
		return err
	}
	return writeDeadLetters(stdout, dls, o.jsonOut)
}

// writeDeadLetters prints a table (or JSON lines) an operator can act on.
func writeDeadLetters(w io.Writer, dls []pipeline.DeadLetter, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, d := range dls {
			if err := enc.Encode(d); err != nil {
				return err
			}
		}
		return nil
	}
	if len(dls) == 0 {
		_, err := fmt.Fprintln(w, "no dead letters")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tOUTBOX\tTOPIC\tDELIVERIES\tFAILED AT\tREASON")
	for _, d := range dls {
		ob := "-"
		if d.OutboxID != nil {
			ob = strconv.FormatInt(*d.OutboxID, 10)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", d.ID, ob, orDash(d.Topic), d.Deliveries,
			d.FailedAt.UTC().Format(time.RFC3339), oneLine(errors.New(d.Reason)))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newRedis(ctx context.Context, redisURL string) (rueidis.Client, error) {
	opt, err := rueidis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("%w: --redis-url %s: %v", ErrUsage, redact(redisURL), err)
	}
	// Streams need no client-side cache; tracking would only cost memory.
	opt.DisableCache = true
	opt.Dialer.Timeout = 5 * time.Second
	opt.ConnWriteTimeout = 10 * time.Second
	c, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("%w: Redis at %s: %v", ErrUnreachable, redact(redisURL), oneLine(err))
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Do(pctx, c.B().Ping().Build()).Error(); err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: Redis at %s: %v", ErrUnreachable, redact(redisURL), oneLine(err))
	}
	return c, nil
}

func runWorker(ctx context.Context, o options, log *zap.Logger) error {
	var ln net.Listener
	if o.metricsListen != "" {
		var err error
		if ln, err = net.Listen("tcp", o.metricsListen); err != nil {
			return fmt.Errorf("%w: --metrics-listen %s: %v", ErrUsage, o.metricsListen, err)
		}
		defer ln.Close()
	}
	pool, err := openDB(ctx, o.databaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	rdb, err := newRedis(ctx, o.redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	m := pipeline.NewMetrics()
	w, err := pipeline.NewWorker(o.cfg, pool, rdb, log, m)
	if err != nil {
		return err
	}
	cfg := w.Config()
	if ln != nil {
		srv := metricsServer(m)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("worker: metrics endpoint stopped", zap.Error(err))
			}
		}()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
	}
	log.Info("worker: running", zap.String("consumer", cfg.Consumer), zap.String("stream", cfg.Stream),
		zap.String("group", cfg.Group), zap.Int("batch_size", cfg.BatchSize),
		zap.Duration("claim_timeout", cfg.ClaimTimeout), zap.Int("max_deliveries", cfg.MaxDeliveries),
		zap.String("metrics", addrOf(ln)))
	err = w.Run(ctx)
	log.Info("worker: stopped")
	return err
}

func addrOf(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

// metricsServer serves the pipeline's series plus Go and process metrics
// on /metrics, and /healthz for container health checks.
func metricsServer(m *pipeline.Metrics) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		if !readOnly(w, r) {
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		metricshelp.Write(w, nil, func(w io.Writer) {
			m.WritePrometheus(w)
			metrics.WriteProcessMetrics(w)
		})
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if readOnly(w, r) {
			writeJSON(w, http.StatusOK, `{"status":"ok"}`)
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, `{"error":"not found: try /metrics or /healthz"}`)
	})
	return &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
}

// readOnly answers anything but GET and HEAD with a JSON 405.
func readOnly(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	writeJSON(w, http.StatusMethodNotAllowed, `{"error":"method not allowed: use GET"}`)
	return false
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body+"\n")
}

// redact hides a URL's password.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// oneLine folds a multi-line error (pgx lists every address it tried, often
// the same one twice) into one line without repeats.
func oneLine(err error) string {
	seen := map[string]bool{}
	var out []string
	for _, l := range strings.Split(err.Error(), "\n") {
		l = strings.Join(strings.Fields(l), " ")
		if l != "" && !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return strings.Join(out, " ")
}
