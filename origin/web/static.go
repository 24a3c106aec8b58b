package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"path"
	"strings"

	"github.com/valyala/fasthttp"
)

//go:embed static templates
var files embed.FS

// staticCacheControl lets browsers and caches keep an asset for a year
// without revalidating (RFC 8246 immutable): its name changes with its bytes.
const staticCacheControl = "public, max-age=31536000, immutable"

// asset is one embedded static file under its content-addressed name.
type asset struct {
	body  []byte
	ctype string
}

// assets maps "app.1a2b3c4d5e6f.css" to its file, and assetURL maps the
// plain name ("app.css") to its URL, for the templates.
type assetSet struct {
	byName map[string]asset
	url    map[string]string
}

func loadAssets() (assetSet, error) {
	s := assetSet{byName: map[string]asset{}, url: map[string]string{}}
	err := fs.WalkDir(files, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		base := path.Base(p)
		ext := path.Ext(base)
		name := strings.TrimSuffix(base, ext) + "." + hex.EncodeToString(sum[:6]) + ext
		ct := mime.TypeByExtension(ext)
		if ct == "" {
			ct = "application/octet-stream"
		}
		s.byName[name] = asset{body: b, ctype: ct}
		s.url[base] = "/static/" + name
		return nil
	})
	return s, err
}

// serve answers GET /static/{name}.
func (s assetSet) serve(ctx *fasthttp.RequestCtx) {
	name, _ := ctx.UserValue("name").(string)
	a, ok := s.byName[name]
	if !ok {
		ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		ctx.SetBodyString("no such asset\n")
		return
	}
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, staticCacheControl)
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	ctx.SetContentType(a.ctype)
	ctx.SetBody(a.body)
}
