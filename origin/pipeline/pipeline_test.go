package pipeline

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"
)

// TestWorkerConfirmsEveryOrder is the happy path: a whole Worker confirms
// orders placed before and while it runs, notifying each once.
func TestWorkerConfirmsEveryOrder(t *testing.T) {
	e := newEnv(t, "")
	u := e.user()
	ids := e.orders(u, 30)
	w, err := NewWorker(e.cfg, e.db, e.rdb, e.log, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, w.Run)
	ids = append(ids, e.orders(u, 30)...)
	e.waitFor("all orders confirmed", 20*time.Second, e.allConfirmed(ids))
	e.waitFor("in-flight rows cleared", 10*time.Second, func() bool {
		return e.count(`SELECT count(*) FROM pipeline_inflight`) == 0
	})
	stop()
	e.assertExactlyOnce(ids)
	if got := w.m.Processed.Get(); got != uint64(len(ids)) {
		t.Errorf("processed metric = %d, want %d", got, len(ids))
	}
	if n := e.count(`SELECT count(*) FROM outbox WHERE sent_at IS NULL`); n != 0 {
		t.Errorf("unsent outbox rows: %d", n)
	}
	st, err := w.ReadStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 0 || st.Lag != 0 || st.OutboxUnsent != 0 || st.Inflight != 0 {
		t.Errorf("stats after the run = %+v, want all zero", st)
	}
	var subject, recipient string
	if err := e.db.QueryRow(context.Background(), `SELECT subject, recipient FROM notifications WHERE order_id = $1`, ids[0]).
		Scan(&subject, &recipient); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(subject, "is confirmed") || !strings.HasSuffix(recipient, "@example.test") {
		t.Errorf("notification = %q to %q", subject, recipient)
	}
}

// TestDuplicateChangesNothing delivers the same outbox row twice, as a relay
// that crashed between XADD and commit would.
func TestDuplicateChangesNothing(t *testing.T) {
	e := newEnv(t, "")
	ids := e.orders(e.user(), 1)
	r := e.relay()
	if n, err := r.RelayOnce(context.Background()); err != nil || n != 1 {
		t.Fatalf("relay = %d, %v", n, err)
	}
	// The crash: the row is sent but the relay did not record it.
	if _, err := e.db.Exec(context.Background(), `UPDATE outbox SET sent_at = NULL`); err != nil {
		t.Fatal(err)
	}
	if n, err := r.RelayOnce(context.Background()); err != nil || n != 1 {
		t.Fatalf("second relay = %d, %v", n, err)
	}
	c := e.consumer("c1")
	var handled int
	for i := 0; i < 10 && handled < 2; i++ {
		n, err := c.ConsumeOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		handled += n
	}
	if handled != 2 {
		t.Fatalf("handled %d messages, want 2", handled)
	}
	e.assertExactlyOnce(ids)
	if got := c.m.Duplicates.Get(); got != 1 {
		t.Errorf("duplicates metric = %d, want 1", got)
	}
	if got := c.m.Processed.Get(); got != 1 {
		t.Errorf("processed metric = %d, want 1", got)
	}
}

// TestKillWorkerMidBatch stops a consumer after it read a batch and before
// it processed or acknowledged any of it; a second consumer reclaims the
// batch after ClaimTimeout and every order is confirmed exactly once.
func TestKillWorkerMidBatch(t *testing.T) {
	e := newEnv(t, "")
	ids := e.orders(e.user(), 40)
	if n, err := e.relay().RelayOnce(context.Background()); err != nil || n != 40 {
		t.Fatalf("relay = %d, %v", n, err)
	}
	dying := e.consumer("dying")
	var read int
	dying.afterRead = func(es []rueidis.XRangeEntry) bool { read = len(es); return false }
	if err := dying.Run(context.Background()); !errors.Is(err, errStopped) {
		t.Fatalf("dying consumer: %v, want errStopped", err)
	}
	if read == 0 {
		t.Fatal("the dying consumer read nothing")
	}
	if n := e.count(`SELECT count(*) FROM orders WHERE status = 'confirmed'`); n != 0 {
		t.Fatalf("%d orders confirmed by a consumer that died before processing", n)
	}
	survivor := e.consumer("survivor")
	run(t, survivor.Run)
	e.waitFor("all orders confirmed", 20*time.Second, e.allConfirmed(ids))
	e.waitFor("nothing pending", 10*time.Second, func() bool {
		st, err := groupStats(context.Background(), e.rdb, e.cfg)
		return err == nil && st.Pending == 0
	})
	e.assertExactlyOnce(ids)
	if got := survivor.m.Reclaimed.Get(); got < uint64(read) {
		t.Errorf("reclaimed %d, want at least the %d the dying consumer read", got, read)
	}
}

// TestCrashAfterCommitBeforeAck: the effect committed but the ack never
// happened (process killed in between); the reclaimed message is found
// processed and only acknowledged.
func TestCrashAfterCommitBeforeAck(t *testing.T) {
	e := newEnv(t, "")
	ids := e.orders(e.user(), 5)
	if _, err := e.relay().RelayOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := e.consumer("first")
	if err := ensureGroup(context.Background(), e.rdb, e.cfg.Stream, e.cfg.Group); err != nil {
		t.Fatal(err)
	}
	es, err := readNew(context.Background(), e.rdb, first.cfg)
	if err != nil || len(es) != 5 {
		t.Fatalf("read %d, %v", len(es), err)
	}
	for _, en := range es {
		m, err := ParseEntry(en.ID, en.FieldValues)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := first.apply(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	second := e.consumer("second")
	run(t, second.Run)
	e.waitFor("pending list drained", 10*time.Second, func() bool {
		st, err := groupStats(context.Background(), e.rdb, e.cfg)
		return err == nil && st.Pending == 0
	})
	e.assertExactlyOnce(ids)
	if got := second.m.Duplicates.Get(); got != 5 {
		t.Errorf("duplicates = %d, want 5", got)
	}
}

// TestInjectedFailures fails every third order's first two deliveries
// (transient: all orders end confirmed) and every delivery of two poison orders (they
// end in the dead-letter table and stream with the injected reason).
func TestInjectedFailures(t *testing.T) {
	e := newEnv(t, "")
	u := e.user()
	ids := e.orders(u, 30)
	poison := e.orders(u, 2)
	poisonOutbox := map[int64]bool{}
	for _, id := range poison {
		var ob int64
		if err := e.db.QueryRow(context.Background(), `SELECT id FROM outbox WHERE (payload->>'order_id')::bigint = $1`, id).Scan(&ob); err != nil {
			t.Fatal(err)
		}
		poisonOutbox[ob] = true
	}
	w, err := NewWorker(e.cfg, e.db, e.rdb, e.log, nil)
	if err != nil {
		t.Fatal(err)
	}
	attempts := map[int64]int{} // only the consumer goroutine touches it
	var healed atomic.Bool
	w.Consumer.beforeCommit = func(m Message) error {
		attempts[m.OutboxID]++
		if healed.Load() {
			return nil
		}
		if poisonOutbox[m.OutboxID] {
			return errors.New("injected: notification service rejected the order")
		}
		// Every third order fails its first two deliveries and succeeds
		// on the third, the last one MaxDeliveries (3) allows.
		if m.OutboxID%3 == 0 && attempts[m.OutboxID] <= 2 {
			return errors.New("injected: transient failure")
		}
		return nil
	}
	run(t, w.Run)
	e.waitFor("all good orders confirmed", 30*time.Second, e.allConfirmed(ids))
	e.waitFor("poison orders dead-lettered", 30*time.Second, func() bool {
		return e.count(`SELECT count(*) FROM pipeline_dead_letters`) == 2
	})
	if n := e.count(`SELECT count(*) FROM notifications WHERE order_id = ANY($1)`, ids); n != int64(len(ids)) {
		t.Errorf("notifications = %d, want %d", n, len(ids))
	}
	if n := e.count(`SELECT count(*) FROM orders WHERE id = ANY($1) AND status = 'pending'`, poison); n != 2 {
		t.Errorf("poison orders still pending = %d, want 2", n)
	}
	dls, err := ListDeadLetters(context.Background(), e.db, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dls {
		if d.OutboxID == nil || !poisonOutbox[*d.OutboxID] {
			t.Errorf("unexpected dead letter %+v", d)
		}
		if !strings.Contains(d.Reason, "notification service rejected") || d.Deliveries <= int(e.cfg.MaxDeliveries) {
			t.Errorf("dead letter reason %q after %d deliveries", d.Reason, d.Deliveries)
		}
	}
	if w.m.Retried.Get() == 0 || w.m.DeadLettered.Get() != 2 {
		t.Errorf("retried = %d, dead-lettered = %d", w.m.Retried.Get(), w.m.DeadLettered.Get())
	}
	xlen, err := e.rdb.Do(context.Background(), e.rdb.B().Xlen().Key(e.cfg.DeadLetterStream).Build()).AsInt64()
	if err != nil || xlen != 2 {
		t.Errorf("dead-letter stream length = %d, %v; want 2", xlen, err)
	}

	// The cause is fixed: requeued dead letters go through.
	healed.Store(true)
	for _, d := range dls {
		if err := Requeue(context.Background(), e.db, d.ID); err != nil {
			t.Fatal(err)
		}
	}
	e.waitFor("requeued orders confirmed", 20*time.Second, e.allConfirmed(poison))
	e.assertExactlyOnce(append(ids, poison...))
	if err := Requeue(context.Background(), e.db, dls[0].ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("requeue of a requeued dead letter: %v, want ErrNotFound", err)
	}
}

// TestConcurrentDuplicates: two workers apply the same outbox row at the
// same moment; the idempotency record lets exactly one of them confirm.
func TestConcurrentDuplicates(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	ids := e.orders(e.user(), 20)
	rows, err := e.db.Query(ctx, `SELECT id, payload::text FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []Message
	for rows.Next() {
		var m Message
		var p string
		if err := rows.Scan(&m.OutboxID, &p); err != nil {
			t.Fatal(err)
		}
		m.Topic, m.Payload, m.StreamID = TopicOrderCreated, []byte(p), "0-1"
		msgs = append(msgs, m)
	}
	rows.Close()
	a, b := e.consumer("a"), e.consumer("b")
	var wg sync.WaitGroup
	var firsts atomic.Int64
	for _, m := range msgs {
		for _, c := range []*Consumer{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				dup, err := c.apply(ctx, m)
				if err != nil {
					t.Error(err)
				}
				if !dup {
					firsts.Add(1)
				}
			}()
		}
	}
	wg.Wait()
	if got := firsts.Load(); got != int64(len(msgs)) {
		t.Errorf("%d applications took effect, want %d (one per outbox row)", got, len(msgs))
	}
	e.assertExactlyOnce(ids)
}

// TestKillWorkerPartWayThroughBatch: a consumer commits 10 messages of a
// 40-message batch, dies inside the 11th transaction (rolled back) and
// never touches the rest; the survivor finishes the batch, confirming each
// order exactly once.
func TestKillWorkerPartWayThroughBatch(t *testing.T) {
	e := newEnv(t, "")
	ids := e.orders(e.user(), 40)
	if n, err := e.relay().RelayOnce(context.Background()); err != nil || n != 40 {
		t.Fatalf("relay = %d, %v", n, err)
	}
	dying := e.consumer("dying")
	ctx, kill := context.WithCancel(context.Background())
	commits := 0
	dying.beforeCommit = func(Message) error {
		if commits == 10 {
			kill()
			return errors.New("killed mid-transaction")
		}
		commits++
		return nil
	}
	if err := dying.Run(ctx); err != nil {
		t.Fatalf("dying consumer: %v", err)
	}
	if n := e.count(`SELECT count(*) FROM orders WHERE status = 'confirmed'`); n != 10 {
		t.Fatalf("%d orders confirmed before the kill, want 10", n)
	}
	st, err := groupStats(context.Background(), e.rdb, e.cfg)
	if err != nil || st.Pending != 30 {
		t.Fatalf("pending after the kill = %+v, %v; want 30", st, err)
	}
	survivor := e.consumer("survivor")
	run(t, survivor.Run)
	e.waitFor("all orders confirmed", 20*time.Second, e.allConfirmed(ids))
	e.waitFor("nothing pending", 10*time.Second, func() bool {
		st, err := groupStats(context.Background(), e.rdb, e.cfg)
		return err == nil && st.Pending == 0
	})
	e.assertExactlyOnce(ids)
	if got := survivor.m.Processed.Get(); got != 30 {
		t.Errorf("survivor processed %d, want the 30 left", got)
	}
}
