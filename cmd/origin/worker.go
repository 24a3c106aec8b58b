package main

import (
	"context"
	"errors"
	"io"

	"github.com/novashop/edge/origin/pipeline/workercmd"
)

// runWorkerCommand is `origin worker`: the asynchronous order pipeline
// (origin/pipeline), or its dead-letter subcommands. The command line lives
// in workercmd so its tests need no main package; this only maps its usage
// errors onto the exit status the other commands use.
func runWorkerCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	err := workercmd.Run(ctx, args, stdout, stderr)
	if errors.Is(err, workercmd.ErrUsage) {
		return usagef("%s", err.Error())
	}
	return err
}
