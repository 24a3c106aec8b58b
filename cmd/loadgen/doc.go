// Command loadgen measures the Novashop edge against its peers (nginx, the
// origins direct) with vegeta campaigns: compare, capacity, tune, attack,
// report and coherence. Each subcommand lives in its own file with its own
// flag.FlagSet; main only wires signals and exit codes.
//
// It must never print a stack trace for bad input: one line on stderr and a
// non-zero exit.
package main
