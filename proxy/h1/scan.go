package h1

import "encoding/binary"

// Eight bytes at a time (SWAR): long header values and targets are checked a
// word per step, and only a word holding a suspect byte is looked at byte by
// byte. The tests are exact for "is there such a byte in the word": a borrow
// only propagates from a byte that matched.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// hasLess reports a byte below n (n <= 128) among x's bytes below 0x80.
func hasLess(x, n uint64) bool { return (x-ones*n)&^x&highs != 0 }

// hasByte reports a byte equal to c.
func hasByte(x, c uint64) bool { v := x ^ (ones * c); return (v-ones)&^v&highs != 0 }

// fieldRun returns how many bytes at the start of b are field value bytes
// (field-vchar, obs-text, SP, HTAB).
func fieldRun(b []byte) int {
	j := 0
	for {
		for j+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[j:])
			if hasLess(x, 0x20) || hasByte(x, 0x7f) {
				break // a control byte, or a tab
			}
			j += 8
		}
		end := min(j+8, len(b))
		for j < end && fieldChar[b[j]] {
			j++
		}
		if j < end || j == len(b) {
			return j
		}
	}
}

// targetRun returns how many bytes at the start of b are visible ASCII.
func targetRun(b []byte) int {
	j := 0
	for j+8 <= len(b) {
		x := binary.LittleEndian.Uint64(b[j:])
		if x&highs != 0 || hasLess(x, 0x21) || hasByte(x, 0x7f) {
			break
		}
		j += 8
	}
	for j < len(b) && targetChar[b[j]] {
		j++
	}
	return j
}
