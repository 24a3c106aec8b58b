package cache

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/novashop/edge/cachekeys"
)

func sampleEntry() *entry {
	return &entry{
		status: 200, flags: 0, opts: optMustRevalidate,
		reqTime: 1, respTime: 2, date: 3, ageValue: 4,
		lifetime: time.Minute, swr: time.Second, sie: time.Hour, lastMod: 5,
		etag:   []byte(`"v1"`),
		vary:   []string{"accept-encoding"},
		tags:   []tagVersion{{tag: "product:1", key: cachekeys.TagVersionKey("product:1"), version: 7}},
		header: []kv{{[]byte("Content-Type"), []byte("application/json")}, {[]byte("X-A"), []byte("")}},
		body:   []byte(`{"id":1}`),
	}
}

// TestEntryRoundTrip is the encoder's round-trip property.
func TestEntryRoundTrip(t *testing.T) {
	e := sampleEntry()
	got, v, err := decodeRecord(encodeEntry(e))
	if err != nil || v != nil {
		t.Fatalf("decode: %v %v", err, v)
	}
	got.size = 0
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, e)
	}
	idx := &varyIndex{gen: 42, names: []string{"accept", "accept-encoding"}}
	_, gv, err := decodeRecord(encodeVaryIndex(idx))
	if err != nil || !reflect.DeepEqual(gv, idx) {
		t.Fatalf("vary index round trip: %+v %v", gv, err)
	}
}

func TestDecodeRejectsCorruption(t *testing.T) {
	enc := encodeEntry(sampleEntry())
	cases := map[string][]byte{
		"empty":          nil,
		"unknown kind":   append([]byte{'X'}, enc[1:]...),
		"other version":  append([]byte{'E', 9}, enc[2:]...),
		"truncated":      enc[:len(enc)-3],
		"trailing bytes": append(append([]byte(nil), enc...), 0),
	}
	for name, b := range cases {
		if _, _, err := decodeRecord(b); !errors.Is(err, ErrCorruptEntry) {
			t.Errorf("%s: err = %v, want ErrCorruptEntry", name, err)
		}
	}
}

// TestSoftPurgeOffset pins the flag byte the purge script rewrites.
func TestSoftPurgeOffset(t *testing.T) {
	enc := encodeEntry(sampleEntry())
	enc[offsetFlags] = flagSoftPurged
	e, _, err := decodeRecord(enc)
	if err != nil || !e.softPurged() || !e.mustRevalidate() {
		t.Fatalf("flag byte %d is not the soft-purge flag: %+v %v", offsetFlags, e, err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeEntry(sampleEntry()))
	f.Add(encodeVaryIndex(&varyIndex{gen: 1, names: []string{"a"}}))
	f.Add([]byte("E\x01\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, v, err := decodeRecord(b)
		if err != nil {
			return
		}
		if e != nil {
			// Whatever decodes re-encodes to the same bytes.
			if got := encodeEntry(e); string(got) != string(b) {
				t.Fatalf("re-encode differs")
			}
		}
		if e == nil && v == nil {
			t.Fatal("no error and no record")
		}
	})
}

// TestEntrySizeCountsRawPlan: an entry's accounted size covers its encoded
// record and the raw-hit plan its first raw hit makes (both heads), so the
// local tier's byte bound holds for entries served raw.
func TestEntrySizeCountsRawPlan(t *testing.T) {
	for _, fields := range []int{1, 8, 40} {
		e := sampleEntry()
		e.opts = 0
		e.header = []kv{{[]byte("Date"), []byte("Mon, 07 Dec 2026 02:00:00 GMT")}, {[]byte("Content-Type"), []byte("application/json")}}
		for i := 0; i < fields; i++ {
			e.header = append(e.header, kv{[]byte("X-Field-Name-" + string(rune('a'+i%26))), []byte("a value of some forty bytes, as seen ok")})
		}
		rec := encodeEntry(e)
		got, _, err := decodeRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		p := got.wirePlan()
		if !p.ok {
			t.Fatalf("%d fields: no raw plan", fields)
		}
		if need := int64(len(rec) + len(p.ok200) + len(p.ok304)); got.size < need {
			t.Errorf("%d fields: size %d < record %d + heads %d + %d", fields, got.size, len(rec), len(p.ok200), len(p.ok304))
		}
	}
}
