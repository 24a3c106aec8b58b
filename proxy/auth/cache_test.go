package auth

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestCacheNeverServesPastExp(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret, Leeway: 10 * time.Second})
	tok := []byte(sign(t, jwt.SigningMethodHS256, testSecret, "", claimsAt(now)))
	exp := now.Add(15 * time.Minute)
	if _, err := v.Verify(tok, now); err != nil {
		t.Fatal(err)
	}
	if _, ok := v.cache.get(tok, now.Add(time.Minute).UnixNano(), 0); !ok {
		t.Fatal("verified token not cached")
	}
	if _, ok := v.cache.get(tok, exp.UnixNano(), 0); ok {
		t.Fatal("cache answered at exp")
	}
	if _, ok := v.cache.get(tok, now.Add(-time.Second).UnixNano(), 0); ok {
		t.Fatal("cache answered for a time before the verification")
	}
	// Inside the leeway the full check still accepts; past it, it refuses,
	// even though the token was cached a moment before.
	if _, err := v.Verify(tok, exp.Add(5*time.Second)); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	if _, err := v.Verify(tok, exp.Add(11*time.Second)); !errors.Is(err, ErrExpired) {
		t.Fatalf("past exp+leeway: %v, want ErrExpired", err)
	}
}

func TestCacheTamperedTokenMisses(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret})
	good := sign(t, jwt.SigningMethodHS256, testSecret, "", claimsAt(now))
	if _, err := v.Verify([]byte(good), now); err != nil {
		t.Fatal(err)
	}
	// Every one-byte change of a cached token is refused: no prefix,
	// hash-bucket or length coincidence lets it share the good entry.
	alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
	for i := 0; i < len(good); i++ {
		b := []byte(good)
		for _, c := range []byte(alphabet) {
			if c == good[i] {
				continue
			}
			b[i] = c
			if id, err := v.Verify(b, now); err == nil {
				t.Fatalf("token changed at byte %d to %q verified as %+v", i, c, id)
			}
		}
	}
	for _, variant := range []string{good + " ", " " + good, good[:len(good)-1], good + "."} {
		if _, err := v.Verify([]byte(variant), now); err == nil {
			t.Fatalf("variant %q of a cached token verified", variant)
		}
	}
}

func TestCacheBounded(t *testing.T) {
	const size = 64
	v := newVerifier(t, Config{Secret: testSecret, CacheSize: size})
	for i := 0; i < 10*size; i++ {
		tok := sign(t, jwt.SigningMethodHS256, testSecret, "", with(claimsAt(now), "sub", strconv.Itoa(i)))
		id, err := v.Verify([]byte(tok), now)
		if err != nil || id.UserID != strconv.Itoa(i) {
			t.Fatalf("token %d: %+v, %v", i, id, err)
		}
	}
	if n := v.cache.len(); n > size || n < size/2 {
		t.Fatalf("cache holds %d entries, want between %d and %d", n, size/2, size)
	}
}

func TestCacheEvictsExpiredFirst(t *testing.T) {
	for round := 0; round < 50; round++ { // map order is random: repeat
		c := newTokenCache(2 * cacheShards) // two entries per shard
		// Three tokens that land in the same shard (the seed is per cache).
		var toks [][]byte
		for i := 0; len(toks) < 3; i++ {
			tok := []byte("t" + strconv.Itoa(i))
			if len(toks) == 0 || c.shard(tok) == c.shard(toks[0]) {
				toks = append(toks, tok)
			}
		}
		c.put(toks[0], cacheEntry{id: Identity{UserID: "expired"}, from: 0, until: 10})
		c.put(toks[1], cacheEntry{id: Identity{UserID: "live"}, from: 0, until: 100})
		c.put(toks[2], cacheEntry{id: Identity{UserID: "new"}, from: 20, until: 100})
		if _, ok := c.get(toks[1], 50, 0); !ok {
			t.Fatal("a live entry was evicted while an expired one was there")
		}
		if _, ok := c.get(toks[2], 50, 0); !ok {
			t.Fatal("new entry missing")
		}
		if c.len() != 2 {
			t.Fatalf("cache holds %d entries, want 2", c.len())
		}
	}
}

func TestCacheDisabled(t *testing.T) {
	v := newVerifier(t, Config{Secret: testSecret, CacheSize: -1})
	if v.cache != nil {
		t.Fatal("negative CacheSize left a cache")
	}
	tok := []byte(sign(t, jwt.SigningMethodHS256, testSecret, "", claimsAt(now)))
	for i := 0; i < 2; i++ {
		if _, err := v.Verify(tok, now); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVerifyCachedDoesNotAllocate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		tok  string
	}{
		{"HS256", Config{Secret: testSecret}, sign(t, jwt.SigningMethodHS256, testSecret, "", claimsAt(now))},
		{"EdDSA", Config{PublicKeyFile: writeFile(t, "ed.pem", pemPublic(t, edKey("o").Public()))},
			sign(t, jwt.SigningMethodEdDSA, edKey("o"), "", claimsAt(now))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifier(t, tc.cfg)
			tok := []byte(tc.tok)
			if _, err := v.Verify(tok, now); err != nil {
				t.Fatal(err)
			}
			allocs := testing.AllocsPerRun(1000, func() {
				if _, err := v.Verify(tok, now); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Fatalf("cached Verify allocates %v times, want 0", allocs)
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	edPath := writeFile(b, "ed.pem", pemPublic(b, edKey("o").Public()))
	for _, tc := range []struct {
		name string
		cfg  Config
		tok  string
	}{
		{"HS256", Config{Secret: testSecret}, sign(b, jwt.SigningMethodHS256, testSecret, "", claimsAt(now))},
		{"EdDSA", Config{PublicKeyFile: edPath}, sign(b, jwt.SigningMethodEdDSA, edKey("o"), "", claimsAt(now))},
	} {
		tok := []byte(tc.tok)
		b.Run(tc.name+"/cold", func(b *testing.B) {
			cfg := tc.cfg
			cfg.CacheSize = -1
			v := newVerifier(b, cfg)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(tok, now); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/cached", func(b *testing.B) {
			v := newVerifier(b, tc.cfg)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(tok, now); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/cached-parallel", func(b *testing.B) {
			v := newVerifier(b, tc.cfg)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := v.Verify(tok, now); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
