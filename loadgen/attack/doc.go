// Package attack runs one campaign against one target: campaign → targeter
// → pacer → vegeta.Attacker → metrics, with a live progress line and a clean
// stop on context cancellation (Ctrl-C) that still returns what ran.
//
// The load is open-model: requests leave on the pacer's schedule whether or
// not earlier ones were answered, and each result's latency is counted from
// its intended send time (pacer.Profile.At), so a stalled server cannot
// hide its stalls by slowing the load generator down (no coordinated
// omission).
//
// It must never print except on the progress writer it is given, and never
// decide pass or fail: callers do.
package attack
