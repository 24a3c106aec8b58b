// Package health decides which origin hosts take traffic and writes that verdict into
// the upstream.Pool.
//
// Two signals feed it. Active checks GET a path on every host at an interval; Fall
// consecutive failures take a host down and Rise consecutive passes bring it back.
// Passive ejection watches real traffic: PassiveFailures consecutive failed requests
// eject a host for an exponentially growing back-off, never more than
// MaxEjectedPercent of the hosts at once. A host that comes back ramps its weight up
// over SlowStart.
//
// It must never pick hosts or forward client requests, and never block the request
// path: Passive is a few atomic loads unless a host crosses the failure threshold.
// Every goroutine it starts recovers from panics and logs them.
package health
