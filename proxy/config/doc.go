// Package config is the edge's configuration: the YAML file (configs/edge.yaml), its
// defaults (all in Default) and one Validate that reports every problem at once.
//
// It only describes and checks settings. It must never open sockets, read key files,
// start goroutines or touch process state: package proxy and cmd/edge turn a valid
// Config into a running server.
package config
