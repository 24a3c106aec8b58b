package tagbump_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/novashop/edge/cachekeys"
	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/origin/origintest"
	"github.com/novashop/edge/origin/tagbump"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func rows(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM tag_bumps`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func stage(t *testing.T, b *tagbump.Bumper, pool *pgxpool.Pool, tags ...string) tagbump.Pending {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.Stage(ctx, tx, tags...)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStageApplyRetry(t *testing.T) {
	_, pool := origintest.DB(t)
	red := testenv.FreshRedis(t)
	rdb := origintest.Redis(t, red.URL)
	ctx := context.Background()
	b := tagbump.New(pool, rdb, nil)
	b.MinAge = 0
	b.Timeout = 300 * time.Millisecond

	p := stage(t, b, pool, "products", "catalog", "products", "")
	if len(p.Tags) != 2 || p.ID == 0 {
		t.Fatalf("pending %+v: want deduped tags and a row", p)
	}
	if err := b.Apply(ctx, p); err != nil {
		t.Fatal(err)
	}
	if rows(t, pool) != 0 {
		t.Fatal("row left after apply")
	}
	v, err := rdb.Do(ctx, rdb.B().Get().Key(cachekeys.TagVersionKey("products")).Build()).AsInt64()
	if err != nil || v != 1 {
		t.Fatalf("version %d %v", v, err)
	}

	red.Kill()
	p = stage(t, b, pool, "product:9")
	if err := b.Apply(ctx, p); !errors.Is(err, tagbump.ErrRedis) {
		t.Fatalf("apply with redis down: %v", err)
	}
	if n, err := b.RetryOnce(ctx); n != 0 || err == nil {
		t.Fatalf("retry with redis down: %d %v", n, err)
	}
	if rows(t, pool) != 1 {
		t.Fatal("row lost while redis is down")
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := red.Start(sctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		n, err := b.RetryOnce(ctx)
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retry never succeeded: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if rows(t, pool) != 0 {
		t.Fatal("row left after retry")
	}
}

func TestNoRedisStagesNothing(t *testing.T) {
	_, pool := origintest.DB(t)
	b := tagbump.New(pool, nil, nil)
	p := stage(t, b, pool, "products")
	if p.ID != 0 || len(p.Tags) != 1 || rows(t, pool) != 0 {
		t.Fatalf("pending %+v", p)
	}
	if err := b.Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}
