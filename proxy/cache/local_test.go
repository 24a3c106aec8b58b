package cache

import (
	"fmt"
	"testing"
)

// TestLocalTableContract pins the table's contract: a read under a ticket
// may insert only while no invalidation or flush touched its shard, and the
// table never holds more bytes than its bound.
func TestLocalTableContract(t *testing.T) {
	cases := []struct {
		name   string
		before func(tb *localTable)
		stored bool
	}{
		{"quiet shard", func(*localTable) {}, true},
		{"invalidation of the key after the ticket", func(tb *localTable) { tb.invalidate("k") }, false},
		{"flush after the ticket", func(tb *localTable) { tb.flush() }, false},
	}
	for _, c := range cases {
		tb := newLocalTable(1 << 20)
		tk := tb.begin("k")
		c.before(tb)
		ok := tb.insert("k", &record{version: 1, size: 100}, tk, 1)
		if ok != c.stored || (tb.getString("k", 1) != nil) != c.stored {
			t.Errorf("%s: inserted %v, want %v", c.name, ok, c.stored)
		}
	}
}

func TestLocalTableBound(t *testing.T) {
	const max = 64 << 10
	tb := newLocalTable(max)
	for i := 0; i < 5000; i++ {
		k := fmt.Sprintf("key-%d", i)
		tb.insert(k, &record{size: 1000}, tb.begin(k), int64(i))
		if tb.bytes() > max {
			t.Fatalf("after %d inserts the table holds %d bytes, bound %d", i+1, tb.bytes(), max)
		}
	}
	// Recently used records survive eviction better than old ones.
	if tb.getString("key-4999", 5000) == nil {
		t.Fatal("the newest record was evicted")
	}
	if big := (&record{size: max}); tb.insert("big", big, tb.begin("big"), 1) {
		t.Fatal("a record larger than a quarter of the bound was accepted")
	}
}
