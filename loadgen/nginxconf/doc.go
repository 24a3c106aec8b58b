// Package nginxconf renders the nginx.conf of the peer that every benchmark
// compares the edge with: one worker, round-robin over the same origins with
// upstream keep-alive on Listen, and a proxy_cache variant on CacheListen that
// honours the origins' Cache-Control.
//
// The template lives in nginx.conf.tmpl and is kept byte-identical to
// configs/nginx.conf (a test checks it), so operators can read and start the
// peer without Go. The rendered file runs in the foreground (daemon off) and
// writes only under the paths it is given: it must never refer to a root-owned
// default path (/var/log/nginx, /var/lib/nginx, /run), so an unprivileged user
// or a test can start it.
//
// This package must never start nginx itself: the local stack launcher does.
package nginxconf
