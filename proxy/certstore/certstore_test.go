package certstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/novashop/edge/internal/testenv"
	"github.com/redis/rueidis"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func newStorage(t *testing.T, prefix string, o Options) *Storage {
	t.Helper()
	opt, err := rueidis.ParseURL(testenv.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	o.Prefix = prefix
	return New(rc, o)
}

func TestFiles(t *testing.T) {
	ctx := context.Background()
	s := newStorage(t, fmt.Sprintf("cs-%d:", time.Now().UnixNano()), Options{})
	files := map[string]string{
		"acme/ca/users/a@shop.test/a.json":     "user",
		"certificates/ca/shop.test/shop.crt":   "crt",
		"certificates/ca/shop.test/shop.key":   "key",
		"certificates/ca/other.test/other.crt": "crt2",
	}
	for k, v := range files {
		if err := s.Store(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if b, err := s.Load(ctx, "certificates/ca/shop.test/shop.key"); err != nil || string(b) != "key" {
		t.Fatalf("Load: %q %v", b, err)
	}
	if _, err := s.Load(ctx, "nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of a missing key: %v, want fs.ErrNotExist", err)
	}
	cases := []struct {
		key      string
		exists   bool
		terminal bool
	}{
		{"certificates/ca/shop.test/shop.crt", true, true},
		{"certificates/ca/shop.test", true, false},
		{"certificates", true, false},
		{"certificates/ca/shop", false, false}, // a name prefix is not a directory
		{"missing", false, false},
	}
	for _, tc := range cases {
		st, err := s.Stat(ctx, tc.key)
		if s.Exists(ctx, tc.key) != tc.exists || (err == nil) != tc.exists || (tc.exists && st.IsTerminal != tc.terminal) {
			t.Errorf("%s: exists %v, stat %+v %v", tc.key, s.Exists(ctx, tc.key), st, err)
		}
		if !tc.exists && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v, want fs.ErrNotExist", tc.key, err)
		}
	}
	if st, _ := s.Stat(ctx, "certificates/ca/shop.test/shop.crt"); st.Size != 3 || time.Since(st.Modified) > time.Minute {
		t.Errorf("stat %+v", st)
	}
	got, _ := s.List(ctx, "certificates/ca", false)
	if want := []string{"certificates/ca/other.test", "certificates/ca/shop.test"}; !slices.Equal(got, want) {
		t.Errorf("List non-recursive %v, want %v", got, want)
	}
	got, _ = s.List(ctx, "certificates", true)
	if len(got) != 3 {
		t.Errorf("List recursive %v", got)
	}
	if err := s.Delete(ctx, "certificates/ca/shop.test"); err != nil {
		t.Fatal(err)
	}
	if s.Exists(ctx, "certificates/ca/shop.test/shop.key") || !s.Exists(ctx, "certificates/ca/other.test/other.crt") {
		t.Error("Delete of a directory removed the wrong keys")
	}
	if err := s.Delete(ctx, "never-there"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
}

// TestLocks: two storages (two edges) exclude each other; Unlock hands over;
// a holder that stops refreshing (a crash) loses the lock after LockTTL; a
// waiting Lock honours its context.
func TestLocks(t *testing.T) {
	ctx := context.Background()
	prefix := fmt.Sprintf("cl-%d:", time.Now().UnixNano())
	a := newStorage(t, prefix, Options{LockTTL: 600 * time.Millisecond, Poll: 20 * time.Millisecond})
	b := newStorage(t, prefix, Options{LockTTL: 600 * time.Millisecond, Poll: 20 * time.Millisecond})
	if err := a.Lock(ctx, "issue_cert_shop.test"); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.TryLock(ctx, "issue_cert_shop.test"); ok || err != nil {
		t.Fatalf("TryLock of a held lock: %v %v", ok, err)
	}
	// Held past its TTL: refreshing keeps it.
	time.Sleep(time.Second)
	if ok, _ := b.TryLock(ctx, "issue_cert_shop.test"); ok {
		t.Fatal("a refreshed lock expired")
	}
	got := make(chan error, 1)
	go func() { got <- b.Lock(ctx, "issue_cert_shop.test") }()
	select {
	case <-got:
		t.Fatal("Lock did not wait for the holder")
	case <-time.After(100 * time.Millisecond):
	}
	if err := a.Unlock(ctx, "issue_cert_shop.test"); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	// b "crashes": a gets the lock after the TTL.
	b.abandon("issue_cert_shop.test")
	start := time.Now()
	if err := a.Lock(ctx, "issue_cert_shop.test"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("stale lock took %v to expire", d)
	}
	// A waiter gives up with its context.
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := b.Lock(cctx, "issue_cert_shop.test"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock under a deadline: %v", err)
	}
	if err := b.Unlock(ctx, "issue_cert_shop.test"); err == nil {
		t.Fatal("Unlock of a lock not held succeeded")
	}
	_ = a.Unlock(ctx, "issue_cert_shop.test")
}
