// Package workercmd is the `origin worker` command line: flags (each also
// read from an environment variable), connecting to PostgreSQL and Redis,
// running the pipeline until SIGTERM, the --metrics-listen endpoint, and the
// dead-letter subcommands (--dead-letters, --requeue).
//
// It holds no pipeline logic of its own (that is origin/pipeline), and it
// must never print a secret: URLs are redacted in every message.
package workercmd
