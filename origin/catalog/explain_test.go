package catalog_test

import (
	"context"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/novashop/edge/internal/testenv"
	"github.com/novashop/edge/origin/catalog"
	"github.com/novashop/edge/origin/origintest"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// bigCatalog is seeded once per test binary: 100,000 products.
var (
	bigOnce sync.Once
	bigPool *pgxpool.Pool
)

const bigProducts = 100_000

func bigCatalogPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	bigOnce.Do(func() {
		// The database outlives this test: it belongs to the test binary,
		// and testenv drops the server when the binary ends.
		_, pool := origintest.DB(noCleanup{t})
		start := time.Now()
		origintest.Seed(t, pool, 20, bigProducts, 10)
		t.Logf("seeded %d products in %s", bigProducts, time.Since(start).Round(time.Millisecond))
		bigPool = pool
	})
	if bigPool == nil {
		t.Fatal("big catalog unavailable: the test that seeded it failed")
	}
	return bigPool
}

// noCleanup runs cleanups never, so the shared database survives the test
// that created it.
type noCleanup struct{ *testing.T }

func (noCleanup) Cleanup(func()) {}

// TestExplainHotQueriesUseIndexes fails on any sequential scan of products
// for the list's hot queries, on a 100,000-product catalog.
func TestExplainHotQueriesUseIndexes(t *testing.T) {
	pool := bigCatalogPool(t)
	ctx := context.Background()
	store := &catalog.Store{Pool: pool}

	// Deep cursors: walk to a position far into each ordering.
	deep := func(ordering string) string {
		var id int64
		var cents int64
		var name string
		var created time.Time
		err := pool.QueryRow(ctx, `SELECT id, (price*100)::bigint, name, created_at FROM products
			ORDER BY id OFFSET 90000 LIMIT 1`).Scan(&id, &cents, &name, &created)
		if err != nil {
			t.Fatal(err)
		}
		c := catalog.Cursor{Ordering: ordering, ID: id}
		switch ordering {
		case catalog.OrderPrice, catalog.OrderPriceDsc:
			c.Price = cents
		case catalog.OrderName:
			c.Name = name
		case catalog.OrderNewest:
			c.Created = created.UnixMicro()
		}
		return catalog.EncodeCursor(c)
	}

	tests := []struct{ name, query string }{
		{"default first page", ""},
		{"category + price order", "category=7&ordering=price"},
		{"category + -price order", "category=7&ordering=-price"},
		{"category + name order", "category=7&ordering=name"},
		{"category + newest", "category=7&ordering=-created"},
		{"category only", "category=7"},
		{"price range", "min_price=100&max_price=110"},
		{"price range ordered", "min_price=100&max_price=110&ordering=price"},
		{"price order", "ordering=price"},
		{"in stock", "in_stock=1"},
		{"in stock by price", "in_stock=1&ordering=price"},
		{"search", "search=laptop"},
		{"search prefix two words", "search=class+lap"},
		{"search in category", "search=kettle&category=3"},
		{"newest", "ordering=-created"},
		{"name order", "ordering=name"},
		{"deep cursor price", "ordering=price&cursor=" + deep(catalog.OrderPrice)},
		{"deep cursor -price", "ordering=-price&cursor=" + deep(catalog.OrderPriceDsc)},
		{"deep cursor name", "ordering=name&cursor=" + deep(catalog.OrderName)},
		{"deep cursor newest", "ordering=-created&cursor=" + deep(catalog.OrderNewest)},
		{"deep cursor default", "cursor=" + deep(catalog.OrderID)},
		{"deep cursor category price", "category=7&ordering=price&cursor=" + deep(catalog.OrderPrice)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			q, err := catalog.ParseListQuery(v)
			if err != nil {
				t.Fatalf("parse %q: %v", tt.query, err)
			}
			sql, args := catalog.ListSQL(q)
			var plan strings.Builder
			rows, err := pool.Query(ctx, "EXPLAIN "+sql, args...)
			if err != nil {
				t.Fatalf("explain: %v", err)
			}
			for rows.Next() {
				var line string
				if err := rows.Scan(&line); err != nil {
					t.Fatal(err)
				}
				plan.WriteString(line + "\n")
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(plan.String(), "Seq Scan on products") {
				t.Fatalf("sequential scan of products for %q:\n%s", tt.query, plan.String())
			}
			// The query itself runs and returns a page.
			page, err := store.List(ctx, q)
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			if len(page.Results) == 0 && !strings.Contains(tt.query, "search") {
				t.Fatalf("empty page for %q", tt.query)
			}
		})
	}
}

// TestCursorWalkDeep pages far with cursors and checks order and coverage.
func TestCursorWalkDeep(t *testing.T) {
	pool := bigCatalogPool(t)
	store := &catalog.Store{Pool: pool}
	ctx := context.Background()
	q := catalog.ListQuery{MinCents: -1, MaxCents: -1, Ordering: catalog.OrderPrice, Limit: 100, Category: 4}
	seen := map[int64]bool{}
	var lastPrice int64 = -1
	var lastID int64
	for pages := 0; ; pages++ {
		page, err := store.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page.Results {
			if seen[p.ID] {
				t.Fatalf("product %d twice", p.ID)
			}
			seen[p.ID] = true
			if p.PriceCents < lastPrice || (p.PriceCents == lastPrice && p.ID <= lastID) {
				t.Fatalf("order broken at %d", p.ID)
			}
			lastPrice, lastID = p.PriceCents, p.ID
		}
		if page.Next == nil {
			break
		}
		c, err := catalog.DecodeCursor(*page.Next, q.Ordering)
		if err != nil {
			t.Fatal(err)
		}
		q.After = &c
	}
	if len(seen) != bigProducts/20 {
		t.Fatalf("walked %d products of category 4, want %d", len(seen), bigProducts/20)
	}
}
