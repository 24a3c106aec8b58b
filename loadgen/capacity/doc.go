// Package capacity finds, for one target, the highest request rate whose
// p99 latency stays within a bound and whose success ratio stays at or
// above a floor: doubling from a start rate until a trial fails, then
// bisecting between the last pass and the first failure, within a bounded
// number of trials.
//
// The search is pure (it calls the run function it is given), so its maths
// is tested without traffic. It must never exceed Config.Max nor
// Config.Trials.
package capacity
