package money

import (
	"errors"
	"math"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"129.99", 12999, false},
		{"129.9", 12990, false},
		{"129", 12900, false},
		{"0", 0, false},
		{"0.01", 1, false},
		{"99999999.99", MaxCents, false},
		{"100000000", 0, true},
		{"", 0, true},
		{".5", 0, true},
		{"5.", 0, true},
		{"1.234", 0, true},
		{"-1", 0, true},
		{"1e3", 0, true},
		{"+1", 0, true},
		{"1,50", 0, true},
		{" 1", 0, true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("Parse(%q) err = %v, want error %v", tt.in, err, tt.err)
			continue
		}
		if err != nil && !errors.Is(err, ErrBadPrice) {
			t.Errorf("Parse(%q) err = %v, want ErrBadPrice", tt.in, err)
		}
		if got != tt.want {
			t.Errorf("Parse(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestFormat(t *testing.T) {
	tests := map[int64]string{0: "0.00", 1: "0.01", 10: "0.10", 12999: "129.99", MaxCents: "99999999.99", -150: "-1.50"}
	for in, want := range tests {
		if got := Format(in); got != want {
			t.Errorf("Format(%d) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"129.99", "0", "1.2", "abc", "1..2", "99999999.99", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			return
		}
		if c < 0 || c > MaxCents {
			t.Fatalf("Parse(%q) = %d out of range", s, c)
		}
		back, err := Parse(Format(c))
		if err != nil || back != c {
			t.Fatalf("round trip %q -> %d -> %q -> %d, %v", s, c, Format(c), back, err)
		}
	})
}

func TestAppend(t *testing.T) {
	for _, tt := range []struct {
		in   int64
		want string
	}{{0, "0.00"}, {5, "0.05"}, {12999, "129.99"}, {-150, "-1.50"}, {MaxCents, "99999999.99"},
		{math.MinInt64, "-92233720368547758.08"}} {
		if got := string(Append([]byte("x"), tt.in)); got != "x"+tt.want {
			t.Errorf("Append(%d) = %q, want %q", tt.in, got, "x"+tt.want)
		}
	}
	buf := make([]byte, 0, 32)
	if n := testing.AllocsPerRun(100, func() { buf = Append(buf[:0], 12999) }); n != 0 {
		t.Fatalf("Append allocates %v times", n)
	}
}
