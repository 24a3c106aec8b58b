package cachekeys

import (
	"strconv"
	"strings"
)

// Tag names. An origin lists the tags a response depends on in its Cache-Tag
// header (comma-separated); after a write commits it bumps the version of
// every tag the write affects. The edge records the tag versions it read
// before fetching and never serves an entry whose recorded versions are stale.
const (
	// TagCatalog covers every catalog page (home, category pages, lists).
	TagCatalog = "catalog"
	// TagProducts covers every product list (any filter, order or cursor).
	TagProducts = "products"
	// TagCategories covers the category list.
	TagCategories = "categories"
)

// TagProduct covers one product's page and JSON.
func TagProduct(id int64) string { return "product:" + strconv.FormatInt(id, 10) }

// TagCategory covers one category's page and JSON.
func TagCategory(id int64) string { return "category:" + strconv.FormatInt(id, 10) }

// TagReviews covers the reviews of one product.
func TagReviews(productID int64) string { return "reviews:" + strconv.FormatInt(productID, 10) }

// TagVersionPrefix is the Redis key prefix of tag versions.
const TagVersionPrefix = "novashop:tagv:"

// TagVersionKey is the Redis key holding a tag's version (an integer that
// only grows; a missing key is version 0).
func TagVersionKey(tag string) string { return TagVersionPrefix + tag }

// HeaderCacheTag is the response header in which the origin lists tags.
const HeaderCacheTag = "Cache-Tag"

// JoinTags renders tags for the Cache-Tag header.
func JoinTags(tags ...string) string { return strings.Join(tags, ",") }

// ParseTags splits a Cache-Tag header value into tags, trimming spaces and
// dropping empty and invalid ones. At most MaxTags are kept.
func ParseTags(v string) []string {
	var out []string
	for _, t := range strings.Split(v, ",") {
		t = strings.TrimSpace(t)
		if t == "" || !ValidTag(t) {
			continue
		}
		out = append(out, t)
		if len(out) == MaxTags {
			break
		}
	}
	return out
}

// MaxTags bounds the tags one response may carry, and MaxTagLen one tag.
const (
	MaxTags   = 64
	MaxTagLen = 128
)

// ValidTag reports whether t is a well-formed tag: 1..MaxTagLen bytes of
// [A-Za-z0-9:._-].
func ValidTag(t string) bool {
	if len(t) == 0 || len(t) > MaxTagLen {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == ':', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// HeaderInvalidate is the response header in which the origin lists, on a
// successful write, the tags that write bumped. The edge that relayed the
// write bumps them too (idempotent: versions only grow), so a write is
// invalidated even while the origin itself cannot reach Redis; the edge
// strips the header before answering the client.
const HeaderInvalidate = "Cache-Invalidate"

// HeaderEdgeCacheControl is the Cache-Control the origin addresses to the
// edge alone (a cache-specific targeted field in the sense of RFC 9213
// section 2, like Surrogate-Control): the edge prefers it to
// CDN-Cache-Control and Cache-Control and strips it from every answer. It
// exists because the edge, unlike a browser, nginx or another CDN, is
// purged by tag within milliseconds of a write, so it may keep a page far
// longer than the shared s-maxage those caches must live with.
const HeaderEdgeCacheControl = "Novashop-Edge-Cache-Control"
