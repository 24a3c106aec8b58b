package config

import (
	"fmt"
	"strings"
)

// Compression configures response compression at the edge (proxy/compress.go).
// An empty Encodings list turns it off, the default.
type Compression struct {
	// Encodings are the content codings the edge produces, in its order of
	// preference among those a client accepts with equal q: br, zstd, gzip.
	Encodings []string `yaml:"encodings"`
	// MinBytes is the smallest body compressed.
	MinBytes int `yaml:"min_bytes"`
	// Types are the media types compressed ("text/*" matches every text type).
	Types []string `yaml:"types"`
	// CompressPrivate also compresses answers that are Cache-Control: private
	// or set a cookie. Off by default against BREACH-style attacks, which read
	// secrets from the compressed size of a page that mixes them with
	// attacker-chosen text.
	CompressPrivate bool `yaml:"compress_private"`
	// MemoBytes bounds the memory of compressed bodies kept for reuse, so a
	// repeated answer (a cache hit) is compressed once; 0 turns the memo off.
	MemoBytes int64 `yaml:"memo_bytes"`
}

func compressionDefaults() Compression {
	return Compression{
		MinBytes: 1024,
		Types: []string{"text/*", "application/json", "application/javascript", "application/xml",
			"application/manifest+json", "image/svg+xml"},
		MemoBytes: 32 << 20,
	}
}

func (c Config) compressionProblems() []string {
	var p []string
	seen := map[string]bool{}
	for i, e := range c.Compression.Encodings {
		switch e {
		case "br", "zstd", "gzip":
		default:
			p = append(p, fmt.Sprintf("compression.encodings[%d] %q must be br, zstd or gzip", i, e))
		}
		if seen[e] {
			p = append(p, fmt.Sprintf("compression.encodings[%d] %q is listed twice", i, e))
		}
		seen[e] = true
	}
	if c.Compression.MinBytes < 0 {
		p = append(p, "compression.min_bytes must not be negative")
	}
	if c.Compression.MemoBytes < 0 {
		p = append(p, "compression.memo_bytes must not be negative")
	}
	for i, t := range c.Compression.Types {
		if !strings.Contains(t, "/") || strings.ContainsAny(t, " ;") {
			p = append(p, fmt.Sprintf("compression.types[%d] %q is not a media type", i, t))
		}
	}
	return p
}
