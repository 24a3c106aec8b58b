package server_test

import (
	"context"
	"testing"

	"github.com/redis/rueidis"

	"github.com/novashop/edge/cachekeys"
)

func tagVersion(t *testing.T, rdb rueidis.Client, tag string) int64 {
	t.Helper()
	v, err := rdb.Do(context.Background(), rdb.B().Get().Key(cachekeys.TagVersionKey(tag)).Build()).AsInt64()
	if rueidis.IsRedisNil(err) {
		return 0
	}
	if err != nil {
		t.Fatalf("redis get %s: %v", tag, err)
	}
	return v
}
