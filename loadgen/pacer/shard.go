package pacer

import (
	"fmt"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Shard is shard I (from 0) of N of a Profile: it sends the profile's hits
// whose number is ≡ I mod N, at their times. The N shards together send
// exactly the profile's hits, interleaved (not N bursts at the same
// instants), and each sends a 1/N share of the rate whatever its shape.
type Shard struct {
	P    *Profile
	I, N uint64
}

var _ vegeta.Pacer = (*Shard)(nil)

// At returns the intended send time of the shard's hit n.
func (s *Shard) At(n uint64) (time.Duration, bool) { return s.P.At(n*s.N + s.I) }

// Pace implements vegeta.Pacer like Profile.Pace.
func (s *Shard) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	at, ok := s.At(hits)
	if !ok {
		return 0, true
	}
	if wait := at - elapsed; wait > 0 {
		return wait, false
	}
	return 0, false
}

// Rate implements vegeta.Pacer.
func (s *Shard) Rate(elapsed time.Duration) float64 { return s.P.Rate(elapsed) / float64(s.N) }

func (s *Shard) String() string {
	return fmt.Sprintf("shard %d/%d (1/%d of: %s)", s.I+1, s.N, s.N, s.P.String())
}
