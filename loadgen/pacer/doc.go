// Package pacer implements the rate profiles of a campaign (constant, linear
// ramp, steps, sine, and sequences of them) as vegeta.Pacer values.
//
// Beyond vegeta's interface a Profile answers At(n): the intended send time
// of hit n. The attack uses it to count each request's latency from when it
// should have been sent, not from when a busy load generator got round to
// sending it, so a stalled server cannot hide its stalls (no coordinated
// omission).
//
// It must never read the clock or sleep: time is passed in, so the maths is
// tested exactly.
package pacer
