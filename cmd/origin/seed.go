package main

import (
	"context"
	"fmt"
	"io"

	"github.com/novashop/edge/origin/db"
	"github.com/novashop/edge/origin/seed"
)

func runSeed(ctx context.Context, args []string, stdout io.Writer) error {
	const summary = "Fills an empty, migrated database with deterministic demo data: users user1..userN\n" +
		"(password shopper123), staff user admin (password admin123), categories and products."
	fs := newFlagSet("seed")
	url := fs.String("database-url", env("DATABASE_URL", ""), "PostgreSQL URL [DATABASE_URL]")
	o := seed.Options{}
	fs.IntVar(&o.Categories, "categories", 20, "number of categories")
	fs.IntVar(&o.Products, "products", 10000, "number of products")
	fs.IntVar(&o.Users, "users", 100, "number of shoppers user1..userN")
	fs.StringVar(&o.UserPassword, "user-password", seed.DefaultUserPassword, "password of every seeded shopper")
	fs.StringVar(&o.AdminPassword, "admin-password", seed.DefaultAdminPassword, "password of the staff user admin")
	if done, err := parse(fs, summary, args, stdout); done || err != nil {
		return err
	}
	if *url == "" {
		return usagef("seed: --database-url (or DATABASE_URL) is required")
	}
	if err := o.Validate(); err != nil {
		return usagef("%v", err)
	}
	pool, err := db.Open(ctx, *url, db.Options{})
	if err != nil {
		return err
	}
	defer pool.Close()
	res, err := seed.Run(ctx, pool, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "origin: seeded %d categories, %d products, %d users + admin in %s\n",
		res.Categories, res.Products, res.Users, res.Took.Round(1e6))
	return nil
}
