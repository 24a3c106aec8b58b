package pipeline

import (
	"context"
	"testing"
	"time"
)

// TestRelayWakesOnNotify checks that the outbox trigger's NOTIFY, not the
// poll, relays a row: every poll and the sweep are a minute apart, so a row
// marked sent within the test's deadline was relayed because the relay
// heard of it. The relay is first seen LISTENing in pg_stat_activity, so
// the row is not merely picked up by the relay's first look at start.
func TestRelayWakesOnNotify(t *testing.T) {
	cases := []struct {
		name string
		// unsent makes an outbox row unsent and returns its id.
		unsent func(e *env, relayed func(id int64) bool) int64
	}{
		{"a new order's row", func(e *env, _ func(int64) bool) int64 {
			return e.outboxRow(TopicOrderCreated, `{"order_id": 1}`)
		}},
		{"a row requeued by an operator", func(e *env, relayed func(int64) bool) int64 {
			id := e.outboxRow(TopicOrderCreated, `{"order_id": 2}`)
			e.waitFor("the row's first relay", 10*time.Second, func() bool { return relayed(id) })
			if _, err := e.db.Exec(context.Background(), `UPDATE outbox SET sent_at = NULL WHERE id = $1`, id); err != nil {
				e.t.Fatal(err)
			}
			return id
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "")
			e.cfg.PollInterval = time.Minute
			e.cfg.ListenPollInterval = time.Minute
			e.cfg.RedeliverAfter = 2 * time.Minute
			r := e.relay()
			run(t, r.Run)
			// A cold machine may take a while to connect: generous.
			e.waitFor("the relay LISTENing", 30*time.Second, func() bool {
				return e.count(`SELECT count(*) FROM pg_stat_activity
					WHERE datname = current_database() AND query = 'LISTEN `+ListenChannel+`'`) == 1
			})
			relayed := func(id int64) bool {
				return e.count(`SELECT count(*) FROM outbox WHERE id = $1 AND sent_at IS NOT NULL`, id) == 1
			}
			id := tc.unsent(e, relayed)
			e.waitFor("the row relayed without a poll", 10*time.Second, func() bool { return relayed(id) })
			if n := e.count(`SELECT count(*) FROM pipeline_inflight WHERE outbox_id = $1`, id); n != 1 {
				t.Fatalf("in-flight records of the row: %d, want 1", n)
			}
		})
	}
}
