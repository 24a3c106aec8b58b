package catalog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"testing"

	"github.com/novashop/edge/origin/catalog"
	"github.com/novashop/edge/origin/origintest"
)

func stdJSON(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// TestAppendJSONMatchesStore: the hot handlers' append-style JSON is byte
// for byte encoding/json's output of Store.Product and Store.List, over
// every ordering, the filters, awkward text, and whole cursor walks.
func TestAppendJSONMatchesStore(t *testing.T) {
	_, pool := origintest.DB(t)
	origintest.Seed(t, pool, 3, 45, 0)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `UPDATE products SET name = 'Tom & "Jerry" <3> é' || chr(8232), description = E'tab\there\nnew line \\ back'
		WHERE id IN (3, 17)`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE categories SET name = 'Books & <Games>' WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	store := &catalog.Store{Pool: pool}

	for id := int64(1); id <= 45; id++ {
		p, err := store.Product(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		got, catID, err := store.AppendProductJSON(ctx, []byte("prefix"), id)
		if err != nil {
			t.Fatal(err)
		}
		if want := append([]byte("prefix"), stdJSON(t, p)...); !bytes.Equal(got, want) || catID != p.Category.ID {
			t.Fatalf("product %d:\n got %s (category %d)\nwant %s", id, got, catID, want)
		}
	}
	if _, _, err := store.AppendProductJSON(ctx, nil, 4567); !errors.Is(err, catalog.ErrProductNotFound) {
		t.Fatalf("unknown product: %v", err)
	}

	queries := []string{"", "ordering=price", "ordering=-price&limit=7", "ordering=name&limit=4", "ordering=-created&limit=6",
		"category=2&ordering=price&limit=5", "min_price=10&max_price=500&in_stock=1", "limit=100", "search=a&limit=3",
		"category=99"}
	for _, qs := range queries {
		t.Run(qs, func(t *testing.T) {
			q, err := catalog.ParseListQuery(values(t, qs))
			if err != nil {
				t.Fatal(err)
			}
			for pages := 0; ; pages++ {
				page, err := store.List(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				got, err := store.AppendListJSON(ctx, nil, q)
				if err != nil {
					t.Fatal(err)
				}
				if want := stdJSON(t, page); !bytes.Equal(got, want) {
					t.Fatalf("page %d:\n got %s\nwant %s", pages, got, want)
				}
				if page.Next == nil || pages > 50 {
					return
				}
				c, err := catalog.DecodeCursor(*page.Next, q.Ordering)
				if err != nil {
					t.Fatalf("next cursor: %v", err)
				}
				q.After = &c
			}
		})
	}
}

func values(t *testing.T, qs string) url.Values {
	t.Helper()
	v, err := url.ParseQuery(qs)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
