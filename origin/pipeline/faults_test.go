package pipeline

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/novashop/edge/internal/testenv"
)

// TestRedisRestart kills Redis (no persistence: the stream and the group
// are lost) twice: once with relayed orders nobody had read yet, and once
// in the middle of a run with two workers and orders still arriving.
// Afterwards every order is confirmed exactly once.
func TestRedisRestart(t *testing.T) {
	rs := testenv.FreshRedis(t)
	e := newEnv(t, rs.URL)
	u := e.user()
	ctx := context.Background()

	// Phase 1: relayed, then lost with Redis before any worker read them.
	lost := e.orders(u, 20)
	if n, err := e.relay().RelayOnce(ctx); err != nil || n != 20 {
		t.Fatalf("relay = %d, %v", n, err)
	}
	rs.Kill()
	if err := rs.Start(ctx); err != nil {
		t.Fatalf("restart Redis: %v", err)
	}

	var workers []*Worker
	for _, name := range []string{"w1", "w2"} {
		cfg := e.cfg
		cfg.Consumer = name
		w, err := NewWorker(cfg, e.db, e.rdb, e.log, nil)
		if err != nil {
			t.Fatal(err)
		}
		workers = append(workers, w)
		run(t, w.Run)
	}
	e.waitFor("orders lost with Redis confirmed", 30*time.Second, e.allConfirmed(lost))

	// Phase 2: Redis dies while orders keep coming.
	var mu sync.Mutex
	all := append([]int64(nil), lost...)
	placeCtx, stopPlacing := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for placeCtx.Err() == nil {
			ids := e.orders(u, 3)
			mu.Lock()
			all = append(all, ids...)
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	time.Sleep(500 * time.Millisecond)
	rs.Kill()
	time.Sleep(700 * time.Millisecond) // orders placed now stay in the outbox
	if n := e.count(`SELECT count(*) FROM outbox WHERE sent_at IS NULL`); n == 0 {
		t.Errorf("no unsent outbox rows while Redis was down: the relay cannot have failed as expected")
	}
	if err := rs.Start(ctx); err != nil {
		t.Fatalf("restart Redis: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	stopPlacing()
	wg.Wait()

	e.waitFor("every order confirmed", 40*time.Second, e.allConfirmed(all))
	e.waitFor("in-flight rows cleared", 20*time.Second, func() bool {
		return e.count(`SELECT count(*) FROM pipeline_inflight`) == 0
	})
	e.assertExactlyOnce(all)
	var redelivered, relayErrors uint64
	for _, w := range workers {
		redelivered += w.m.Redelivered.Get()
		relayErrors += w.m.RelayErrors.Get()
	}
	if redelivered < uint64(len(lost)) {
		t.Errorf("redelivered = %d, want at least the %d entries lost in phase 1", redelivered, len(lost))
	}
	if relayErrors == 0 {
		t.Errorf("relay errors = 0, want some while Redis was down")
	}
	t.Logf("%d orders, %d relayed again, %d relay errors", len(all), redelivered, relayErrors)
}

// TestBadMessages: entries that can never succeed are dead-lettered at
// once (one delivery), with a reason naming the problem.
func TestBadMessages(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	unknown := e.outboxRow("order.shipped", `{"order_id": 1}`)
	noOrder := e.outboxRow(TopicOrderCreated, `{"order_id": 987654}`)
	badPayload := e.outboxRow(TopicOrderCreated, `{"order": "x"}`)
	if n, err := e.relay().RelayOnce(ctx); err != nil || n != 3 {
		t.Fatalf("relay = %d, %v", n, err)
	}
	// Entries no relay would write: forged or corrupted.
	for _, fields := range [][]string{
		{"garbage", "1"},
		{FieldOutboxID, "424242", FieldTopic, TopicOrderCreated, FieldPayload, `{"order_id": 1}`},
	} {
		if err := e.rdb.Do(ctx, xadd(e.rdb, e.cfg.Stream, 0, fields)).Error(); err != nil {
			t.Fatal(err)
		}
	}
	c := e.consumer("c1")
	if n, err := c.ConsumeOnce(ctx); err != nil || n != 5 {
		t.Fatalf("consume = %d, %v", n, err)
	}
	dls, err := ListDeadLetters(ctx, e.db, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 5 {
		t.Fatalf("dead letters = %d, want 5: %+v", len(dls), dls)
	}
	want := map[string]string{
		"unknown topic":                    "order.shipped",
		"order not found":                  "order 987654",
		"malformed payload":                "no order_id",
		"has no outbox_id field":           "",
		"outbox row 424242 does not exist": "",
	}
	for frag := range want {
		found := false
		for _, d := range dls {
			if strings.Contains(d.Reason, frag) && strings.Contains(d.Reason, want[frag]) {
				found = true
				if d.Deliveries != 1 {
					t.Errorf("%q dead-lettered after %d deliveries, want 1", frag, d.Deliveries)
				}
			}
		}
		if !found {
			t.Errorf("no dead letter with reason containing %q", frag)
		}
	}
	for _, ob := range []int64{unknown, noOrder, badPayload} {
		if n := e.count(`SELECT count(*) FROM pipeline_processed WHERE outbox_id = $1 AND outcome = 'dead-lettered'`, ob); n != 1 {
			t.Errorf("outbox %d: processed records = %d, want 1 dead-lettered", ob, n)
		}
	}
	st, err := groupStats(ctx, e.rdb, e.cfg)
	if err != nil || st.Pending != 0 {
		t.Errorf("pending after dead-lettering = %+v, %v", st, err)
	}
	// A dead letter without an outbox row cannot be requeued.
	for _, d := range dls {
		if d.OutboxID == nil {
			if err := Requeue(ctx, e.db, d.ID); err == nil || !strings.Contains(err.Error(), "names no outbox row") {
				t.Errorf("requeue of a forged entry: %v", err)
			}
		}
	}
}

// TestSweepRelaysVanishedEntries: an entry trimmed or lost before any
// worker read it is relayed again; one still in the stream is not.
func TestSweepRelaysVanishedEntries(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	ids := e.orders(e.user(), 4)
	r := e.relay()
	if n, err := r.RelayOnce(ctx); err != nil || n != 4 {
		t.Fatalf("relay = %d, %v", n, err)
	}
	var gone []string
	rows, err := e.db.Query(ctx, `SELECT stream_id FROM pipeline_inflight ORDER BY outbox_id LIMIT 2`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		gone = append(gone, s)
	}
	rows.Close()
	if err := e.rdb.Do(ctx, e.rdb.B().Xdel().Key(e.cfg.Stream).Id(gone...).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if n, err := r.SweepOnce(ctx); err != nil || n != 0 {
		t.Fatalf("sweep before RedeliverAfter = %d, %v; want 0", n, err)
	}
	time.Sleep(e.cfg.RedeliverAfter + 50*time.Millisecond)
	if n, err := r.SweepOnce(ctx); err != nil || n != 2 {
		t.Fatalf("sweep = %d, %v; want the 2 deleted entries", n, err)
	}
	xlen, err := e.rdb.Do(ctx, e.rdb.B().Xlen().Key(e.cfg.Stream).Build()).AsInt64()
	if err != nil || xlen != 4 {
		t.Fatalf("stream length = %d, %v; want 4", xlen, err)
	}
	c := e.consumer("c1")
	run(t, c.Run)
	e.waitFor("orders confirmed", 10*time.Second, e.allConfirmed(ids))
	e.assertExactlyOnce(ids)
	if n, err := r.SweepOnce(ctx); err != nil || n != 0 {
		t.Errorf("sweep after processing = %d, %v; want 0", n, err)
	}
}

// TestConcurrentRelaysSendEachRowOnce: SKIP LOCKED batches keep several
// relays from sending the same row.
func TestConcurrentRelaysSendEachRowOnce(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	e.orders(e.user(), 300)
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 3 {
		r := e.relay()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n, err := r.RelayOnce(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 {
					return
				}
				mu.Lock()
				total += n
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	xlen, err := e.rdb.Do(ctx, e.rdb.B().Xlen().Key(e.cfg.Stream).Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	if total != 300 || xlen != 300 {
		t.Errorf("relayed %d rows, stream holds %d entries; want 300 and 300", total, xlen)
	}
}
