package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/novashop/edge/internal/stack"
)

type stackFlags struct {
	origins, categories, products, users int
	balancer                             string
	noCache, noNginx, https              bool
}

func (f *stackFlags) register(fs *flag.FlagSet, products int) {
	fs.IntVar(&f.origins, "origins", 2, "number of origin servers")
	fs.IntVar(&f.categories, "categories", 20, "categories to seed")
	fs.IntVar(&f.products, "products", products, "products to seed")
	fs.IntVar(&f.users, "users", 200, "users to seed (user1..userN, password shopper123)")
	fs.StringVar(&f.balancer, "balancer", "p2c-ewma", "edge balancing policy")
	fs.BoolVar(&f.noCache, "no-cache", false, "run the edge without its Redis cache")
	fs.BoolVar(&f.noNginx, "no-nginx", false, "do not start nginx")
	fs.BoolVar(&f.https, "https", true, "give the edge an HTTPS listener (HTTP/2, HTTP/3) with a certificate from a throwaway local CA")
}

func (f *stackFlags) options(log io.Writer) stack.LocalOptions {
	o := stack.LocalOptions{
		BinDir: binDir(), Origins: f.origins, Categories: f.categories, Products: f.products,
		Users: f.users, Balancer: f.balancer, NoCache: f.noCache, HTTPS: f.https, Log: log,
	}
	if !f.noNginx {
		o.NginxConf = nginxConf
	}
	return o
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("stack "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

func cmdUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("up", stderr)
	var f stackFlags
	f.register(fs, 20000)
	if err := parse(fs, args); err != nil {
		return err
	}
	l, err := stack.StartLocal(ctx, f.options(stdout))
	if err != nil {
		return err
	}
	defer l.Stop()
	printURLs(stdout, l)
	fmt.Fprintln(stdout, "stack: running; Ctrl-C stops everything")
	<-ctx.Done()
	fmt.Fprintln(stdout, "stack: stopping")
	return nil
}

func printURLs(w io.Writer, l *stack.Local) {
	fmt.Fprintf(w, "\n  shop through the edge:  %s/\n", l.EdgeURL)
	if l.EdgeHTTPSURL != "" {
		fmt.Fprintf(w, "  ... over HTTPS:         %s/  (HTTP/2, HTTP/3)\n", l.EdgeHTTPSURL)
		fmt.Fprintf(w, "  local CA:               %s  (curl --cacert %s %s/)\n", l.CA.CAFile, l.CA.CAFile, l.EdgeHTTPSURL)
		fmt.Fprintf(w, "  Chromium without a warning: chromium --user-data-dir=$(mktemp -d) --ignore-certificate-errors-spki-list=%s %s/\n", l.CA.SPKIHash, l.EdgeHTTPSURL)
	}
	fmt.Fprintf(w, "  edge admin:             %s/admin/upstreams\n", l.AdminURL)
	for _, o := range l.Origins {
		fmt.Fprintf(w, "  %-23s http://%s/\n", o.Name+":", o.Addr)
	}
	for i, u := range l.NginxURLs {
		name := "nginx (round-robin):"
		if i == 1 {
			name = "nginx (proxy_cache):"
		}
		fmt.Fprintf(w, "  %-23s %s/\n", name, u)
	}
	fmt.Fprintf(w, "  PostgreSQL:             %s\n", l.DatabaseURL)
	fmt.Fprintf(w, "  Redis:                  %s\n", l.Redis.URL)
	fmt.Fprintf(w, "  log in as user1 / shopper123 (staff: admin / admin123)\n\n")
}
