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

// TestLocalTableOwnWrites: our own SETs are not pushed back to us (NOLOOP),
// so the table itself must keep a read that began before one of our writes
// from putting the value it replaced back over it. Without that, a refresh
// that stored a new answer could be undone by a concurrent read of the old,
// soft-purged one, which then stayed in the local tier with no refresh ever
// coming (revalidatedSince skips copies older than the last refresh).
func TestLocalTableOwnWrites(t *testing.T) {
	old, fresh := &record{version: 1, size: 100}, &record{version: 2, size: 100}
	cases := []struct {
		name string
		// run does the steps in order and returns the record the table
		// must hold for "k" at the end (nil: none).
		run func(tb *localTable) *record
	}{
		{"read lands after our write", func(tb *localTable) *record {
			rd := tb.begin("k")
			wr := tb.beginWrite("k")
			if !tb.insert("k", fresh, wr, 1) {
				t.Error("the writer's insert was refused")
			}
			if tb.insert("k", old, rd, 1) {
				t.Error("a read that began before our write inserted the old value")
			}
			return fresh
		}},
		{"read lands before our write", func(tb *localTable) *record {
			rd := tb.begin("k")
			wr := tb.beginWrite("k")
			tb.insert("k", old, rd, 1)
			if !tb.insert("k", fresh, wr, 1) {
				t.Error("the writer's insert was refused")
			}
			return fresh
		}},
		{"read began between our write's start and its insert", func(tb *localTable) *record {
			wr := tb.beginWrite("k")
			rd := tb.begin("k")
			tb.insert("k", fresh, wr, 1)
			if tb.insert("k", old, rd, 1) {
				t.Error("a read that began before our insert inserted after it")
			}
			return fresh
		}},
		{"read after our write", func(tb *localTable) *record {
			tb.insert("k", fresh, tb.beginWrite("k"), 1)
			if !tb.insert("k", fresh, tb.begin("k"), 1) {
				t.Error("a read that began after our write was refused")
			}
			return fresh
		}},
		{"two of our writes overlap", func(tb *localTable) *record {
			tb.insert("k", old, tb.begin("k"), 1)
			w1 := tb.beginWrite("k")
			w2 := tb.beginWrite("k")
			tb.insert("k", fresh, w2, 1)
			tb.insert("k", old, w1, 1)
			return nil
		}},
		{"push after our write began", func(tb *localTable) *record {
			wr := tb.beginWrite("k")
			tb.invalidate("k")
			if tb.insert("k", fresh, wr, 1) {
				t.Error("the writer inserted over another edge's change")
			}
			return nil
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := newLocalTable(1 << 20)
			want := c.run(tb)
			if got := tb.getString("k", 1); got != want {
				t.Errorf("table holds %+v, want %+v", got, want)
			}
			if want == nil && tb.bytes() != 0 {
				t.Errorf("table accounts %d bytes for no record", tb.bytes())
			}
		})
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
