package h1

import "testing"

// TestRuns checks the word-at-a-time scans against the byte tables for every
// byte value at every position of a word.
func TestRuns(t *testing.T) {
	for c := range 256 {
		for pos := range 20 {
			b := []byte("abcdefghijklmnopqrstuvwxyz")
			b[pos] = byte(c)
			want := len(b)
			if !fieldChar[c] {
				want = pos
			}
			if got := fieldRun(b); got != want {
				t.Fatalf("fieldRun with %#x at %d = %d, want %d", c, pos, got, want)
			}
			want = len(b)
			if !targetChar[c] {
				want = pos
			}
			if got := targetRun(b); got != want {
				t.Fatalf("targetRun with %#x at %d = %d, want %d", c, pos, got, want)
			}
		}
	}
}
