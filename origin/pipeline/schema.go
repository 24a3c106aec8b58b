package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotMigrated means the database lacks the pipeline's tables; run
// `origin migrate` against it first.
var ErrNotMigrated = errors.New("pipeline: database not migrated (run `origin migrate` first)")

// CheckSchema fails fast with ErrNotMigrated when the tables the worker
// needs are missing, instead of failing every message later.
func CheckSchema(ctx context.Context, db *pgxpool.Pool) error {
	var missing []string
	for _, table := range []string{"outbox", "orders", "pipeline_processed", "pipeline_inflight",
		"pipeline_failures", "pipeline_dead_letters", "notifications"} {
		var ok bool
		if err := db.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&ok); err != nil {
			return fmt.Errorf("pipeline: check schema: %w", err)
		}
		if !ok {
			missing = append(missing, table)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing tables %v", ErrNotMigrated, missing)
	}
	return nil
}
