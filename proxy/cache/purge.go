package cache

import (
	"context"
	"fmt"
	"strings"

	"github.com/novashop/edge/cachekeys"
)

// Purge removes or (soft) marks stale stored responses and reports how many
// it affected. It backs POST /admin/purge.
//
//   - keys: each is a cache key as cachekeys.Key spells it ("GET host/path"),
//     an absolute URL ("https://host/path?q", normalised like a request), or
//     a bare path with query ("/path?q"), which matches that path on every
//     host (found with SCAN). Variants of a key are purged with it.
//   - tags: a hard purge bumps each tag's version (INCR), which every edge
//     sees at once through tracking; it counts one per tag. A soft purge
//     marks the entries recorded in the tag's index stale.
//   - prefix: a path prefix ("/api/products/"); every stored key whose path
//     starts with it, on every host, is purged. Redis SCAN walks the cache
//     namespace, so this costs time in proportion to the number of entries;
//     it is meant for rare admin use.
//
// Hard purges delete; soft purges mark entries stale so they are served
// stale while one background request revalidates them (unless they are
// must-revalidate or no-cache). Errors wrap ErrBadPurge (the request is
// wrong) or ErrUnavailable (Redis is down: retry later); on error the count
// is what was purged before it.
func (c *Cache) Purge(ctx context.Context, keys, tags []string, prefix string, soft bool) (int, error) {
	if len(keys) == 0 && len(tags) == 0 && prefix == "" {
		return 0, fmt.Errorf("%w: give at least one of keys, tags or prefix", ErrBadPurge)
	}
	for _, t := range tags {
		if !cachekeys.ValidTag(t) {
			return 0, fmt.Errorf("%w: tag %q must be 1-%d bytes of [A-Za-z0-9:._-]", ErrBadPurge, t, cachekeys.MaxTagLen)
		}
	}
	if prefix != "" && !strings.HasPrefix(prefix, "/") {
		return 0, fmt.Errorf("%w: prefix %q must be a path starting with '/'", ErrBadPurge, prefix)
	}
	type target struct {
		key    string // exact primary key (without namespace), or
		path   string // path with query on any host
		prefix bool   // path is a prefix
	}
	var targets []target
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, "/"):
			nk, err := cachekeys.Key("GET", "", k)
			if err != nil {
				return 0, fmt.Errorf("%w: key %q: %v", ErrBadPurge, k, err)
			}
			_, _, pq, _ := cachekeys.SplitKey(nk)
			targets = append(targets, target{path: pq})
		case strings.HasPrefix(strings.ToLower(k), "http://"), strings.HasPrefix(strings.ToLower(k), "https://"):
			rest := k[strings.Index(k, "://")+3:]
			host, uri := rest, "/"
			if i := strings.IndexAny(rest, "/?#"); i >= 0 {
				host, uri = rest[:i], rest[i:]
				if uri[0] != '/' {
					uri = "/" + uri
				}
			}
			nk, err := cachekeys.Key("GET", host, uri)
			if err != nil {
				return 0, fmt.Errorf("%w: key %q: %v", ErrBadPurge, k, err)
			}
			targets = append(targets, target{key: nk})
		default:
			m, h, pq, ok := cachekeys.SplitKey(k)
			if !ok {
				return 0, fmt.Errorf("%w: key %q is neither a cache key (\"GET host/path\"), a URL nor a path", ErrBadPurge, k)
			}
			nk, err := cachekeys.Key(m, h, pq)
			if err != nil {
				return 0, fmt.Errorf("%w: key %q: %v", ErrBadPurge, k, err)
			}
			targets = append(targets, target{key: nk})
		}
	}
	if prefix != "" {
		nk, err := cachekeys.Key("GET", "", prefix)
		if err != nil {
			return 0, fmt.Errorf("%w: prefix %q: %v", ErrBadPurge, prefix, err)
		}
		_, _, pq, _ := cachekeys.SplitKey(nk)
		if strings.HasSuffix(prefix, "?") {
			pq += "?"
		}
		targets = append(targets, target{path: pq, prefix: true})
	}
	cli, err := c.t.cli()
	if err != nil {
		return 0, err
	}
	n := 0
	// purgeKey deletes or marks one Redis key (entry, variant or index).
	purgeKey := func(rk string) error {
		if soft {
			ok, err := c.t.softPurge(ctx, rk)
			if ok {
				n++
			}
			// Our own SETRANGE is not pushed back to us (NOLOOP): drop
			// the local copy so the next hit reads the marked entry.
			c.local.invalidate(rk)
			return err
		}
		res, err := c.t.do(cli.B().Del().Key(rk).Build())
		if err != nil {
			return err
		}
		if d, _ := res[0].AsInt64(); d > 0 {
			n++
		}
		c.local.invalidate(rk)
		return nil
	}
	ns := c.cfg.Namespace
	for _, t := range targets {
		var err error
		switch {
		case t.key != "":
			// The primary key, then its variants (soft purges must reach
			// them; hard purges delete them rather than orphan them).
			if err = purgeKey(ns + t.key); err == nil {
				err = c.t.scan(ctx, globEscape(ns+t.key+string(cachekeys.VarySep))+"*", purgeKey)
			}
		default:
			err = c.t.scan(ctx, globEscape(ns)+"*"+globEscape(t.path)+"*", func(rk string) error {
				_, _, pq, ok := cachekeys.SplitKey(strings.TrimPrefix(rk, ns))
				if !ok || !strings.HasPrefix(rk, ns) {
					return nil
				}
				if (t.prefix && strings.HasPrefix(pq, t.path)) || (!t.prefix && pq == t.path) {
					return purgeKey(rk)
				}
				return nil
			})
		}
		if err != nil {
			return n, purgeErr(err)
		}
	}
	for _, tag := range tags {
		if soft {
			res, err := c.t.do(cli.B().Smembers().Key(c.cfg.TagIndexNamespace + tag).Build())
			if err != nil {
				return n, purgeErr(err)
			}
			members, _ := res[0].AsStrSlice()
			for _, rk := range members {
				if err := purgeKey(rk); err != nil {
					return n, purgeErr(err)
				}
			}
			continue
		}
		k := cachekeys.TagVersionKey(tag)
		// Apply the new version here at once (as after a write), so this
		// edge never reads the old one from rueidis before the push lands.
		// The ticket is taken before the INCR: if any other bump's push
		// arrives first, the insert is refused rather than keeping an older
		// version.
		tk := c.local.beginWrite(k)
		res, err := c.t.do(cli.B().Incr().Key(k).Build())
		if err != nil {
			return n, purgeErr(err)
		}
		if v, verr := res[0].AsInt64(); verr == nil {
			c.local.insert(k, &record{isTag: true, version: v, size: int64(len(k)) + 96}, tk, c.now()>>30)
		} else {
			c.local.invalidate(k)
		}
		n++
	}
	return n, nil
}

func purgeErr(err error) error {
	return fmt.Errorf("%w: purge: %v", ErrUnavailable, err)
}

// globEscape escapes Redis glob metacharacters (SCAN MATCH).
func globEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
