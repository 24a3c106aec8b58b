package proxy

import (
	"bytes"
	"sync"

	"github.com/VictoriaMetrics/metrics"
	"github.com/cespare/xxhash/v2"
	"github.com/novashop/edge/proxy/config"
	"github.com/valyala/fasthttp"
)

// Response compression. It runs at the end of the handler, after the cache
// answered or the origin did, so the cache keeps one identity copy per entry
// and its keys do not fragment by Accept-Encoding. A compressed body is kept
// in a small memo keyed by the identity body's hash, its length and the
// encoding, so a cache hit (or any repeated answer) is compressed once and
// then costs one hash of the body. Eligible: 200 answers to GET (not HEAD, not
// a Range request), not already encoded, no Cache-Control: no-transform, a
// configured type, at least min_bytes; not private and not setting a cookie
// unless compression.compress_private (BREACH). Every eligible answer says
// Vary: Accept-Encoding, compressed or not. A strong ETag becomes weak on a
// compressed answer (the bytes differ from the identity representation's).

// coding is one content coding the edge produces.
type coding struct {
	name     string
	token    []byte
	id       uint8
	compress func(dst, src []byte) []byte
	count    *metrics.Counter
}

var codings = map[string]func(dst, src []byte) []byte{
	// Levels for answers compressed once and reused: brotli 5 and zstd's
	// default give most of the ratio for a fraction of the top levels' CPU.
	"br": func(dst, src []byte) []byte { return fasthttp.AppendBrotliBytesLevel(dst, src, 5) },
	"zstd": func(dst, src []byte) []byte {
		return fasthttp.AppendZstdBytesLevel(dst, src, fasthttp.CompressZstdDefault)
	},
	"gzip": func(dst, src []byte) []byte {
		return fasthttp.AppendGzipBytesLevel(dst, src, fasthttp.CompressDefaultCompression)
	},
}

type compressor struct {
	codings  []*coding // the edge's preference order
	minBytes int
	exact    [][]byte // media types
	prefix   [][]byte // "text/" for "text/*"
	private  bool
	memo     *compressMemo
	memoHits *metrics.Counter
}

func (s *Server) setupCompression(cfg config.Compression) {
	if len(cfg.Encodings) == 0 {
		return
	}
	c := &compressor{minBytes: cfg.MinBytes, private: cfg.CompressPrivate}
	for i, name := range cfg.Encodings {
		c.codings = append(c.codings, &coding{name: name, token: []byte(name), id: uint8(i), compress: codings[name],
			count: s.metrics.set.NewCounter(`edge_compressed_total{encoding="` + name + `"}`)})
	}
	for _, t := range cfg.Types {
		t = asciiLower(t)
		if p, ok := bytesCutSuffix(t, "/*"); ok {
			c.prefix = append(c.prefix, []byte(p+"/"))
		} else {
			c.exact = append(c.exact, []byte(t))
		}
	}
	if cfg.MemoBytes > 0 {
		c.memo = &compressMemo{max: cfg.MemoBytes, m: map[memoKey][]byte{}}
		c.memoHits = s.metrics.set.NewCounter("edge_compression_memo_hits_total")
	}
	s.comp = c
}

func asciiLower(s string) string { return string(bytes.ToLower([]byte(s))) }

func bytesCutSuffix(s, suffix string) (string, bool) {
	if len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix {
		return s[:len(s)-len(suffix)], true
	}
	return s, false
}

var (
	strVary           = []byte("Vary")
	strAcceptEncoding = []byte("Accept-Encoding")
	strNoTransform    = []byte("no-transform")
	strPrivate        = []byte("private")
)

// apply compresses ctx's answer when it is eligible (see the file comment).
func (c *compressor) apply(ctx *fasthttp.RequestCtx) {
	resp := &ctx.Response
	h := &resp.Header
	if resp.StatusCode() != fasthttp.StatusOK || !ctx.IsGet() || resp.IsBodyStream() || len(h.ContentEncoding()) > 0 {
		return
	}
	body := resp.Body()
	if len(body) < c.minBytes || !c.typeOK(h.ContentType()) {
		return
	}
	cc := h.Peek(fasthttp.HeaderCacheControl)
	if hasToken(cc, strNoTransform) {
		return
	}
	if !c.private {
		if hasToken(cc, strPrivate) {
			return
		}
		for range h.Cookies() {
			return
		}
	}
	if len(ctx.Request.Header.Peek(fasthttp.HeaderRange)) > 0 {
		// Ranges address the identity bytes the cache stores (RFC 9110 §14);
		// answer them uncompressed.
		return
	}
	addVary(h)
	cd := c.choose(ctx.Request.Header.Peek(fasthttp.HeaderAcceptEncoding))
	if cd == nil {
		return
	}
	var out []byte
	var key memoKey
	if c.memo != nil {
		key = memoKey{sum: xxhash.Sum64(body), n: len(body), id: cd.id}
		out = c.memo.get(key)
		if out != nil {
			c.memoHits.Inc()
		}
	}
	if out == nil {
		out = cd.compress(make([]byte, 0, len(body)/3+64), body)
		if len(out) >= len(body) {
			out = noGain // remembered so that it is not tried again
		}
		if c.memo != nil {
			c.memo.put(key, out)
		}
	}
	if len(out) == 0 {
		return
	}
	cd.count.Inc()
	h.SetContentEncodingBytes(cd.token)
	if et := h.Peek(fasthttp.HeaderETag); len(et) > 0 && et[0] == '"' {
		h.Set(fasthttp.HeaderETag, "W/"+string(et))
	}
	// Memo bodies are never written; fasthttp drops the reference after the
	// write, as for the cache's own bodies.
	resp.SetBodyRaw(out)
}

// typeOK reports whether the media type (parameters ignored) is configured.
func (c *compressor) typeOK(ct []byte) bool {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = bytes.TrimSpace(ct)
	for _, t := range c.exact {
		if bytes.EqualFold(ct, t) {
			return true
		}
	}
	for _, p := range c.prefix {
		if len(ct) > len(p) && bytes.EqualFold(ct[:len(p)], p) {
			return true
		}
	}
	return false
}

// addVary adds Accept-Encoding to Vary unless it is there (or Vary is *).
func addVary(h *fasthttp.ResponseHeader) {
	v := h.PeekBytes(strVary)
	if len(v) == 0 {
		h.SetCanonical(strVary, strAcceptEncoding)
		return
	}
	if bytes.Equal(bytes.TrimSpace(v), []byte("*")) || hasToken(v, strAcceptEncoding) {
		return
	}
	h.SetCanonical(strVary, append(append(append([]byte(nil), v...), ", "...), strAcceptEncoding...))
}

// hasToken reports whether the comma-separated list holds tok (case-insensitive,
// parameters such as "=x" ignored).
func hasToken(list, tok []byte) bool {
	for len(list) > 0 {
		var item []byte
		if i := bytes.IndexByte(list, ','); i >= 0 {
			item, list = list[:i], list[i+1:]
		} else {
			item, list = list, nil
		}
		if i := bytes.IndexAny(item, "=;"); i >= 0 {
			item = item[:i]
		}
		if bytes.EqualFold(bytes.TrimSpace(item), tok) {
			return true
		}
	}
	return false
}

// choose picks the coding for an Accept-Encoding value (RFC 9110 §12.5.3): the
// highest q among the edge's codings, "*" covering those not named, ties in
// the edge's order; nil when none is acceptable (identity is then sent).
func (c *compressor) choose(ae []byte) *coding {
	if len(ae) == 0 {
		return nil
	}
	var best *coding
	bestQ := 0
	for _, cd := range c.codings {
		q := codingQ(ae, cd.token)
		if q > bestQ {
			best, bestQ = cd, q
		}
	}
	return best
}

// codingQ is the q-value (×1000) that ae gives name, or "*"'s when name is not
// listed; 0 when neither is.
func codingQ(ae, name []byte) int {
	star := -1
	for len(ae) > 0 {
		var item []byte
		if i := bytes.IndexByte(ae, ','); i >= 0 {
			item, ae = ae[:i], ae[i+1:]
		} else {
			item, ae = ae, nil
		}
		tok, params, _ := bytes.Cut(item, []byte(";"))
		tok = bytes.TrimSpace(tok)
		q := parseQ(params)
		switch {
		case bytes.EqualFold(tok, name):
			return q
		case len(tok) == 1 && tok[0] == '*':
			star = q
		}
	}
	return max(star, 0)
}

// parseQ reads "q=0.5" among the parameters; 1000 when absent, 0 when malformed.
func parseQ(params []byte) int {
	for len(params) > 0 {
		var p []byte
		if i := bytes.IndexByte(params, ';'); i >= 0 {
			p, params = params[:i], params[i+1:]
		} else {
			p, params = params, nil
		}
		p = bytes.TrimSpace(p)
		if len(p) < 2 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=' {
			continue
		}
		v := p[2:]
		if len(v) == 0 || len(v) > 5 {
			return 0
		}
		if v[0] == '1' {
			return 1000
		}
		if v[0] != '0' {
			return 0
		}
		if len(v) == 1 {
			return 0
		}
		if v[1] != '.' {
			return 0
		}
		q, mult := 0, 100
		for _, d := range v[2:] {
			if d < '0' || d > '9' {
				return 0
			}
			q += int(d-'0') * mult
			mult /= 10
		}
		return q
	}
	return 1000
}

// noGain marks a body that compression does not shrink.
var noGain = []byte{}

type memoKey struct {
	sum uint64
	n   int
	id  uint8
}

// compressMemo keeps compressed bodies up to max bytes; when full it drops
// entries at random (Go's map order) until the new one fits.
type compressMemo struct {
	mu    sync.Mutex
	m     map[memoKey][]byte
	bytes int64
	max   int64
}

func (m *compressMemo) get(k memoKey) []byte {
	m.mu.Lock()
	v := m.m[k]
	m.mu.Unlock()
	return v
}

func (m *compressMemo) put(k memoKey, v []byte) {
	size := int64(len(v)) + 64
	if size > m.max/8 {
		return // one body may not take the memo over
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.m[k]; ok {
		return
	}
	for mk, mv := range m.m {
		if m.bytes+size <= m.max {
			break
		}
		delete(m.m, mk)
		m.bytes -= int64(len(mv)) + 64
	}
	m.m[k] = v
	m.bytes += size
}
