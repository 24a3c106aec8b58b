// Package compare runs one campaign against several targets in interleaved
// rounds (round 1 runs each target in turn, then round 2, ...), so slow
// drifts of the machine (page cache, CPU frequency, noisy neighbours) hit
// every target alike, and reports each target's merged figures with the
// ratios between targets as min, median and max over rounds.
//
// It must never run two targets at the same time: they would compete for
// the same CPU and the comparison would mean nothing.
package compare
