package main

import (
	"context"
	"fmt"
	"io"

	"github.com/novashop/edge/origin/db"
)

func runMigrate(ctx context.Context, args []string, stdout io.Writer) error {
	const summary = "Applies the shop's schema (embedded goose migrations). Safe to run twice."
	fs := newFlagSet("migrate")
	url := fs.String("database-url", env("DATABASE_URL", ""), "PostgreSQL URL [DATABASE_URL]")
	if done, err := parse(fs, summary, args, stdout); done || err != nil {
		return err
	}
	if *url == "" {
		return usagef("migrate: --database-url (or DATABASE_URL) is required")
	}
	if err := db.Migrate(ctx, *url); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "origin: schema up to date")
	return nil
}
