// Command origin is the Novashop shop server: `origin migrate`, `origin seed`
// and `origin serve` (see `origin --help`).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "origin: "+oneLine(err.Error()))
	if errors.Is(err, errUsage) {
		os.Exit(2)
	}
	os.Exit(1)
}

// oneLine folds a multi-line error (pgx lists every address it tried) into
// the one line an operator reads.
func oneLine(s string) string {
	parts := strings.Split(s, "\n")
	out := parts[:0]
	seen := map[string]bool{}
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p != "" && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}
