package cache

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/novashop/edge/cachekeys"
	"github.com/novashop/edge/internal/testenv"
)

func plainClient(t *testing.T, url string) rueidis.Client {
	t.Helper()
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	return rc
}

// TestUnreadableTagVersionIsNotFresh: a tag version that is not an integer
// cannot be compared, so the entry is not served as fresh.
func TestUnreadableTagVersionIsNotFresh(t *testing.T) {
	url := testenv.Redis(t)
	c := newTestCache(t, url, randName(t), nil)
	tag := "u-" + randName(t)
	o := newOrigin(static(200, "x", "Cache-Control", "max-age=600", "Cache-Tag", tag))
	do(c, o, "GET", "/u")
	eventually(t, 2*time.Second, "hit", func() bool { return isHit(do(c, o, "GET", "/u")) })
	rc := plainClient(t, url)
	if err := rc.Do(context.Background(), rc.B().Set().Key(cachekeys.TagVersionKey(tag)).Value("garbage").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "the entry to stop being fresh", func() bool { return !isHit(do(c, o, "GET", "/u")) })
	for i := 0; i < 3; i++ {
		if r := do(c, o, "GET", "/u"); isHit(r) {
			t.Fatalf("served as fresh with an unreadable tag version: %q", cacheStatus(r))
		}
	}
}

// TestCorruptValueIsAMiss: a value this build cannot decode is a miss and
// gets overwritten by the next fill.
func TestCorruptValueIsAMiss(t *testing.T) {
	url, ns := testenv.Redis(t), randName(t)
	c := newTestCache(t, url, ns, nil)
	rc := plainClient(t, url)
	key := c.cfg.Namespace + "GET shop.test/corrupt"
	if err := rc.Do(context.Background(), rc.B().Set().Key(key).Value("E\x01garbage").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	o := newOrigin(static(200, "fine", "Cache-Control", "max-age=600"))
	r := do(c, o, "GET", "/corrupt")
	if string(r.Body()) != "fine" || !strings.Contains(cacheStatus(r), "stored") {
		t.Fatalf("corrupt value: %q %q", r.Body(), cacheStatus(r))
	}
	eventually(t, 2*time.Second, "hit", func() bool { return isHit(do(c, o, "GET", "/corrupt")) })
}

// TestPersonalHeadNeverStoresEmptyGet: a personal HEAD goes upstream as
// HEAD, and its empty body must not become the stored GET.
func TestPersonalHeadNeverStoresEmptyGet(t *testing.T) {
	c := newTestCache(t, testenv.Redis(t), randName(t), nil)
	o := newOrigin(static(200, "", "Cache-Control", "public, max-age=600"))
	do(c, o, "HEAD", "/ph", "Authorization", "Bearer a")
	full := newOrigin(static(200, "full body", "Cache-Control", "public, max-age=600"))
	if r := do(c, full, "GET", "/ph"); string(r.Body()) != "full body" {
		t.Fatalf("GET after a personal HEAD got %q (%q)", r.Body(), cacheStatus(r))
	}
}

// TestOtherHostLocationNotInvalidated: RFC 9111 section 4.4 forbids
// invalidating a Location on another host.
func TestOtherHostLocationNotInvalidated(t *testing.T) {
	c := newTestCache(t, testenv.Redis(t), randName(t), nil)
	get := newOrigin(static(200, "a", "Cache-Control", "max-age=600"))
	do(c, get, "GET", "/keep/")
	eventually(t, 2*time.Second, "hit", func() bool { return isHit(do(c, get, "GET", "/keep/")) })
	post := newOrigin(static(201, "", "Location", "http://evil.example/keep/", "Content-Location", "http://shop.test/keep/x"))
	do(c, post, "POST", "/other/")
	if r := do(c, get, "GET", "/keep/"); !isHit(r) {
		t.Fatalf("an entry was invalidated through another host's Location: %q", cacheStatus(r))
	}
}
