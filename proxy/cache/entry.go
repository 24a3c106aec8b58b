package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/novashop/edge/cachekeys"
)

// ErrCorruptEntry means a Redis value under the cache namespace could not
// be decoded; the cache treats it as a miss and overwrites it on the next
// fill. It appears when an edge of an incompatible build shares the Redis.
var ErrCorruptEntry = errors.New("cache: corrupt entry in Redis")

// Record kinds and flags, the first two bytes of every value.
const (
	kindEntry     = 'E'
	kindVaryIndex = 'V'
	formatVersion = 1

	// flagSoftPurged marks an entry a soft purge made stale. It sits at
	// byte offsetFlags so a purge can set it in Redis with SETRANGE.
	flagSoftPurged = 1
	offsetFlags    = 2
)

// Entry option bits.
const (
	optMustRevalidate = 1 << iota // must-revalidate or proxy-revalidate
	optNoCache
	// optSMaxAge: s-maxage was present, which implies proxy-revalidate
	// for the configured stale-on-error grace (RFC 9111 section 5.2.2.10).
	optSMaxAge
	// optHasSIE: the answer carried stale-if-error, which then replaces
	// the configured stale-on-error bound (sie may be 0).
	optHasSIE
)

// kv is one stored header field.
type kv struct{ k, v []byte }

// tagVersion is a tag the entry depends on and its version when the fill
// began; key is cachekeys.TagVersionKey(tag), kept to avoid building it on
// every hit.
type tagVersion struct {
	tag, key string
	version  int64
}

// entry is a stored response, decoded once per process.
type entry struct {
	status   int
	flags    byte
	opts     byte
	reqTime  int64 // unix ns: when the request that got this response was sent
	respTime int64 // unix ns: when the response arrived
	date     int64 // unix s: the response's Date, 0 when absent
	ageValue int64 // s: the response's Age
	lifetime time.Duration
	swr, sie time.Duration
	lastMod  int64 // unix s: Last-Modified, 0 when absent
	etag     []byte
	vary     []string
	tags     []tagVersion
	header   []kv
	body     []byte
	// size approximates the memory this entry holds.
	size int64
	// borrowed marks an entry built by newEntry from a fetch's pooled
	// response, whose buffers are reused after the fill returns: such an
	// entry's body is copied into an answer, never referenced by it.
	borrowed bool
	// plan is hitPlan's answer, made on the first hit.
	plan atomic.Pointer[[]fieldMode]
	// wire is wirePlan's answer, made on the first hit served raw.
	wire atomic.Pointer[wirePlan]
}

func (e *entry) softPurged() bool     { return e.flags&flagSoftPurged != 0 }
func (e *entry) mustRevalidate() bool { return e.opts&optMustRevalidate != 0 }
func (e *entry) noCache() bool        { return e.opts&optNoCache != 0 }
func (e *entry) sMaxAge() bool        { return e.opts&optSMaxAge != 0 }
func (e *entry) hasSIE() bool         { return e.opts&optHasSIE != 0 }

// age is the entry's current age (RFC 9111 section 4.2.3) at now (unix ns).
func (e *entry) age(now int64) time.Duration {
	return currentAge(e.ageValue, e.date, e.reqTime, e.respTime, now)
}

// varyIndex is stored under a primary key whose response carried Vary: it
// names the request headers that select a variant, and a random generation
// that is part of every variant key, so replacing or purging the index makes
// all its old variants unreachable at once.
type varyIndex struct {
	gen   uint64
	names []string
}

// appendVariantKey appends the variant key for the request's values of the
// index's headers. It allocates nothing.
func (v *varyIndex) appendVariantKey(dst []byte, rh *fasthttp.RequestHeader) []byte {
	dst = append(dst, cachekeys.VarySep)
	dst = binary.BigEndian.AppendUint64(dst, v.gen)
	for _, n := range v.names {
		dst = cachekeys.AppendVary(dst, n, rh.Peek(n))
	}
	return dst
}

// encodeEntry renders e for Redis.
func encodeEntry(e *entry) []byte {
	n := 64 + len(e.body) + len(e.etag)
	for _, h := range e.header {
		n += len(h.k) + len(h.v) + 4
	}
	for _, t := range e.tags {
		n += len(t.tag) + 12
	}
	b := make([]byte, 0, n)
	b = append(b, kindEntry, formatVersion, e.flags, e.opts)
	b = binary.BigEndian.AppendUint16(b, uint16(e.status))
	for _, x := range []int64{e.reqTime, e.respTime, e.date, e.ageValue, int64(e.lifetime), int64(e.swr), int64(e.sie), e.lastMod} {
		b = binary.BigEndian.AppendUint64(b, uint64(x))
	}
	b = appendBytes(b, e.etag)
	b = binary.AppendUvarint(b, uint64(len(e.vary)))
	for _, v := range e.vary {
		b = appendBytes(b, []byte(v))
	}
	b = binary.AppendUvarint(b, uint64(len(e.tags)))
	for _, t := range e.tags {
		b = appendBytes(b, []byte(t.tag))
		b = binary.BigEndian.AppendUint64(b, uint64(t.version))
	}
	b = binary.AppendUvarint(b, uint64(len(e.header)))
	for _, h := range e.header {
		b = appendBytes(b, h.k)
		b = appendBytes(b, h.v)
	}
	b = appendBytes(b, e.body)
	return b
}

// encodeVaryIndex renders v for Redis.
func encodeVaryIndex(v *varyIndex) []byte {
	b := []byte{kindVaryIndex, formatVersion, 0, 0}
	b = binary.BigEndian.AppendUint64(b, v.gen)
	b = binary.AppendUvarint(b, uint64(len(v.names)))
	for _, n := range v.names {
		b = appendBytes(b, []byte(n))
	}
	return b
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads a value; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = ErrCorruptEntry
	}
	d.b = nil
}

func (d *decoder) u64() uint64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) count(limit int) int {
	v, n := binary.Uvarint(d.b)
	if n <= 0 || v > uint64(limit) {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return int(v)
}

func (d *decoder) bytes() []byte {
	n := d.count(len(d.b))
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		// The length fit before its own varint bytes were consumed.
		d.fail()
		return nil
	}
	s := d.b[:n:n]
	d.b = d.b[n:]
	return s
}

// decodeRecord decodes a value written by encodeEntry or encodeVaryIndex.
// The returned record aliases b, which must not change afterwards.
func decodeRecord(b []byte) (*entry, *varyIndex, error) {
	if len(b) < 4 || b[1] != formatVersion {
		return nil, nil, fmt.Errorf("%w: bad header", ErrCorruptEntry)
	}
	d := decoder{b: b[4:]}
	switch b[0] {
	case kindVaryIndex:
		v := &varyIndex{gen: d.u64()}
		n := d.count(len(d.b))
		for i := 0; i < n && d.err == nil; i++ {
			v.names = append(v.names, string(d.bytes()))
		}
		if d.err != nil || len(d.b) != 0 {
			return nil, nil, fmt.Errorf("%w: vary index", ErrCorruptEntry)
		}
		return nil, v, nil
	case kindEntry:
	default:
		return nil, nil, fmt.Errorf("%w: unknown kind %q", ErrCorruptEntry, b[0])
	}
	e := &entry{flags: b[2], opts: b[3]}
	if len(d.b) < 2 {
		return nil, nil, fmt.Errorf("%w: short entry", ErrCorruptEntry)
	}
	e.status = int(binary.BigEndian.Uint16(d.b))
	d.b = d.b[2:]
	e.reqTime = int64(d.u64())
	e.respTime = int64(d.u64())
	e.date = int64(d.u64())
	e.ageValue = int64(d.u64())
	e.lifetime = time.Duration(d.u64())
	e.swr = time.Duration(d.u64())
	e.sie = time.Duration(d.u64())
	e.lastMod = int64(d.u64())
	e.etag = d.bytes()
	if len(e.etag) == 0 {
		e.etag = nil
	}
	n := d.count(len(d.b))
	for i := 0; i < n && d.err == nil; i++ {
		e.vary = append(e.vary, string(d.bytes()))
	}
	n = d.count(len(d.b))
	for i := 0; i < n && d.err == nil; i++ {
		tag := string(d.bytes())
		e.tags = append(e.tags, tagVersion{tag: tag, key: cachekeys.TagVersionKey(tag), version: int64(d.u64())})
	}
	n = d.count(len(d.b))
	var fieldBytes int64
	for i := 0; i < n && d.err == nil; i++ {
		k := d.bytes()
		e.header = append(e.header, kv{k, d.bytes()})
		fieldBytes += int64(len(k) + len(e.header[len(e.header)-1].v) + 4)
	}
	e.body = d.bytes()
	if d.err != nil || len(d.b) != 0 {
		return nil, nil, fmt.Errorf("%w: entry fields", ErrCorruptEntry)
	}
	if e.status < 100 || e.status > 999 || e.lifetime < 0 || e.swr < 0 || e.sie < 0 || e.ageValue < 0 {
		return nil, nil, fmt.Errorf("%w: entry values out of range", ErrCorruptEntry)
	}
	// The raw-hit plan (wire.go), made on the first hit served raw, holds
	// the stored fields serialized twice (the 200 and the 304 head) plus two
	// status lines: counted from the start, so the local tier's byte bound
	// holds whether or not the entry is ever served raw.
	e.size = int64(len(b)) + 256 + int64(len(e.tags))*48 + int64(len(e.header))*48 + 2*fieldBytes + 64
	return e, nil, nil
}
