//go:build race

package api

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation counts of pooled code are only asserted without it.
const raceEnabled = true
