package feeder

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// seqRand returns 0, 1, 2, ... modulo n: deterministic picks for tests.
type seqRand struct{ i int }

func (s *seqRand) IntN(n int) int { v := s.i % n; s.i++; return v }

func TestRange(t *testing.T) {
	tests := []struct {
		name     string
		min, max int
		want     []string
	}{
		{"single", 5, 5, []string{"5", "5"}},
		{"small", 1, 3, []string{"1", "2", "3", "1"}},
		{"negative", -1, 0, []string{"-1", "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRange(tt.min, tt.max, &seqRand{})
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range tt.want {
				if got, _ := r.Next(); got != w {
					t.Errorf("draw %d = %s, want %s", i, got, w)
				}
			}
		})
	}
	if _, err := NewRange(3, 1, &seqRand{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty range: err = %v", err)
	}
}

func TestRangeStaysInBounds(t *testing.T) {
	r, err := NewRange(1, 8, NewRand(1))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 1000 {
		v, _ := r.Next()
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 8 {
			t.Fatalf("draw %q outside [1, 8]", v)
		}
		seen[v] = true
	}
	if len(seen) != 8 {
		t.Errorf("1000 draws saw %d of 8 values", len(seen))
	}
}

func TestSeededIsDeterministic(t *testing.T) {
	a, _ := NewRange(1, 1000, NewRand(42))
	b, _ := NewRange(1, 1000, NewRand(42))
	for range 100 {
		x, _ := a.Next()
		y, _ := b.Next()
		if x != y {
			t.Fatal("two feeders with the same seed diverged")
		}
	}
}

func TestUsers(t *testing.T) {
	u, err := NewUsers("user", 3, &seqRand{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"user1", "user2", "user3", "user1"} {
		if got, _ := u.Next(); got != w {
			t.Errorf("got %s, want %s", got, w)
		}
	}
	for _, n := range []int{0, -1} {
		if _, err := NewUsers("user", n, &seqRand{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("count %d: err = %v", n, err)
		}
	}
	if _, err := NewList(nil, &seqRand{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty list: err = %v", err)
	}
}

func TestPool(t *testing.T) {
	p, err := NewPool(2, &seqRand{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Next(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty pool: err = %v", err)
	}
	p.Put("a")
	p.Put("b")
	p.Put("c") // evicts "a"
	if p.Len() != 2 {
		t.Fatalf("Len = %d, want 2", p.Len())
	}
	got := map[string]bool{}
	for range 4 {
		v, err := p.Next()
		if err != nil {
			t.Fatal(err)
		}
		got[v] = true
	}
	if got["a"] || !got["b"] || !got["c"] {
		t.Errorf("pool yielded %v, want b and c only", got)
	}
}

func TestPoolConcurrent(t *testing.T) {
	p, _ := NewPool(16, NewRand(7))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				p.Put(strconv.Itoa(i*1000 + j))
				if _, err := p.Next(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkRange(b *testing.B) {
	r, _ := NewRange(1, 2000, NewRand(1))
	b.ReportAllocs()
	for b.Loop() {
		_, _ = r.Next()
	}
}

// Shards of a range or of the users never share a value, and together
// cover it.
func TestShardsAreDisjoint(t *testing.T) {
	for _, tc := range []struct{ min, max, n int }{{1, 10, 3}, {5, 5, 1}, {1, 1000, 7}, {3, 5, 3}} {
		seen := map[string]int{}
		for i := range tc.n {
			r, err := NewRangeShard(tc.min, tc.max, i, tc.n, NewRand(uint64(i)))
			if err != nil {
				t.Fatal(err)
			}
			u, err := NewUsersShard("user", tc.max, i, tc.n, NewRand(1))
			if err != nil {
				t.Fatal(err)
			}
			for range 20 * (tc.max - tc.min + 1) {
				v, _ := r.Next()
				if s, ok := seen[v]; ok && s != i {
					t.Fatalf("[%d,%d]/%d: %s drawn by shards %d and %d", tc.min, tc.max, tc.n, v, s+1, i+1)
				}
				seen[v] = i
				name, _ := u.Next()
				id, _ := strconv.Atoi(strings.TrimPrefix(name, "user"))
				if (id-1)%tc.n != i || id < 1 || id > tc.max {
					t.Fatalf("users shard %d/%d drew %s", i+1, tc.n, name)
				}
			}
		}
		if len(seen) != tc.max-tc.min+1 {
			t.Errorf("[%d,%d]/%d: shards cover %d values", tc.min, tc.max, tc.n, len(seen))
		}
	}
	for _, bad := range []struct{ min, max, i, n int }{{1, 2, 0, 3}, {1, 10, 3, 3}, {1, 10, -1, 3}, {1, 10, 0, 0}, {5, 1, 0, 1}} {
		if _, err := NewRangeShard(bad.min, bad.max, bad.i, bad.n, NewRand(1)); err == nil {
			t.Errorf("NewRangeShard(%v) accepted", bad)
		}
	}
}
