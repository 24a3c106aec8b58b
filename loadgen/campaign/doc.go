// Package campaign reads the YAML campaign files of configs/campaigns: the
// weighted request mix, the journeys (sequences of requests that carry state
// such as a login token from step to step), the feeders that fill
// ${placeholders}, the rate profile and the duration.
//
// Parse reports every problem of a file at once, with defaults applied in
// one place (applyDefaults). It must never send a request or read anything
// but the bytes it is given.
package campaign
