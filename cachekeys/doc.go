// Package cachekeys is the one place that defines the edge cache's keys and
// invalidation tags, so the edge (which stores and looks up) and the origin
// (which emits Cache-Tag headers and bumps tag versions after writes) always
// agree.
//
// It is pure: it imports neither proxy nor origin, does no I/O and keeps no
// state. It must never change a key or tag spelling without updating the
// golden files in testdata/, because edges and origins of different builds
// may share one Redis during a rolling deploy.
package cachekeys
