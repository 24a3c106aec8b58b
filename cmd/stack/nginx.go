package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/novashop/edge/internal/stack"
	"github.com/novashop/edge/loadgen/nginxconf"
)

// nginxConf renders the nginx peer (round-robin and proxy_cache servers over
// the same upstreams) into dir and returns the file and its two addresses.
func nginxConf(dir string, upstreams []string) (string, []string, error) {
	var addrs []string
	for i := 0; i < 2; i++ {
		p, err := stack.FreePort()
		if err != nil {
			return "", nil, err
		}
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(p))
	}
	for _, d := range []string{"cache", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o777); err != nil {
			return "", nil, err
		}
	}
	// nginx's worker drops to "nobody" when the master runs as root, and
	// must still reach and write its cache and temp files: open the path
	// from the temporary directory down (MkdirTemp makes 0700 folders).
	openPath(dir)
	conf := filepath.Join(dir, "nginx.conf")
	f, err := os.Create(conf)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	err = nginxconf.Render(f, nginxconf.Params{
		Listen: addrs[0], CacheListen: addrs[1], Upstreams: upstreams,
		CacheDir: filepath.Join(dir, "cache"), PidFile: filepath.Join(dir, "nginx.pid"),
		ErrorLog: filepath.Join(dir, "error.log"), TempDir: filepath.Join(dir, "tmp"),
	})
	if err != nil {
		return "", nil, err
	}
	return conf, addrs, f.Close()
}

// openPath makes dir and its parents below the system temporary directory
// traversable by other users.
func openPath(dir string) {
	tmp := filepath.Clean(os.TempDir())
	for d := filepath.Clean(dir); strings.HasPrefix(d, tmp+"/"); d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o755)
	}
}
