package feeder

import (
	"errors"
	"strconv"
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
