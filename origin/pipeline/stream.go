package pipeline

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/rueidis"
)

// redisErr prefixes a Redis failure with what was being done.
func redisErr(op string, err error) error {
	return fmt.Errorf("%w: %s: %v", ErrRedis, op, err)
}

// isNoGroup reports Redis's NOGROUP error: the stream or the group is gone,
// which after start-up means Redis restarted without persistence.
func isNoGroup(err error) bool {
	e, ok := rueidis.IsRedisErr(err)
	return ok && strings.HasPrefix(e.Error(), "NOGROUP")
}

// ensureGroup creates the stream and the consumer group reading it from
// the very beginning ("0", not "$"): after a Redis restart the relay may
// have added entries before any worker recreated the group, and "$" would
// skip them.
func ensureGroup(ctx context.Context, rdb rueidis.Client, stream, group string) error {
	err := rdb.Do(ctx, rdb.B().XgroupCreate().Key(stream).Group(group).Id("0").Mkstream().Build()).Error()
	if err == nil {
		return nil
	}
	if e, ok := rueidis.IsRedisErr(err); ok && e.IsBusyGroup() {
		return nil
	}
	return redisErr("XGROUP CREATE", err)
}

// xadd builds the XADD of one message, trimming approximately (MAXLEN ~,
// cheap: whole macro nodes only) when maxLen is positive.
func xadd(rdb rueidis.Client, stream string, maxLen int64, fields []string) rueidis.Completed {
	args := make([]string, 0, len(fields)+4)
	if maxLen > 0 {
		args = append(args, "MAXLEN", "~", strconv.FormatInt(maxLen, 10))
	}
	args = append(args, "*")
	args = append(args, fields...)
	return rdb.B().Arbitrary("XADD").Keys(stream).Args(args...).Build()
}

// toEntries drops the empty entries, skipping the nil entries
// Redis 6.2 returns for deleted ids.
func toEntries(in []rueidis.XRangeEntry) []rueidis.XRangeEntry {
	out := in[:0]
	for _, e := range in {
		if e.ID != "" {
			out = append(out, e)
		}
	}
	return out
}

// readNew reads up to count never-delivered entries for consumer, waiting
// up to block for the first one.
func readNew(ctx context.Context, rdb rueidis.Client, c Config) ([]rueidis.XRangeEntry, error) {
	cmd := rdb.B().Xreadgroup().Group(c.Group, c.Consumer).Count(int64(c.BatchSize)).
		Block(c.Block.Milliseconds()).Streams().Key(c.Stream).Id(">").Build()
	res, err := rdb.Do(ctx, cmd).AsXRead()
	if rueidis.IsRedisNil(err) {
		return nil, nil
	}
	if err != nil {
		if isNoGroup(err) {
			return nil, err
		}
		return nil, redisErr("XREADGROUP", err)
	}
	return toEntries(res[c.Stream]), nil
}

// autoclaim takes over up to count entries idle for longer than the claim
// timeout, from any consumer of the group, starting at cursor. It returns
// the next cursor ("0-0" when the pending list was scanned to its end).
func autoclaim(ctx context.Context, rdb rueidis.Client, c Config, cursor string) ([]rueidis.XRangeEntry, string, error) {
	cmd := rdb.B().Xautoclaim().Key(c.Stream).Group(c.Group).Consumer(c.Consumer).
		MinIdleTime(strconv.FormatInt(c.ClaimTimeout.Milliseconds(), 10)).Start(cursor).
		Count(int64(c.BatchSize)).Build()
	arr, err := rdb.Do(ctx, cmd).ToArray()
	if err != nil {
		if isNoGroup(err) {
			return nil, "0-0", err
		}
		return nil, "0-0", redisErr("XAUTOCLAIM", err)
	}
	if len(arr) < 2 {
		return nil, "0-0", redisErr("XAUTOCLAIM", fmt.Errorf("reply has %d elements, want 2 or 3", len(arr)))
	}
	next, err := arr[0].ToString()
	if err != nil {
		return nil, "0-0", redisErr("XAUTOCLAIM cursor", err)
	}
	raw, err := arr[1].ToArray()
	if err != nil {
		return nil, "0-0", redisErr("XAUTOCLAIM entries", err)
	}
	out := make([]rueidis.XRangeEntry, 0, len(raw))
	for i := range raw {
		if raw[i].IsNil() {
			continue
		}
		e, err := raw[i].AsXRangeEntry()
		if err != nil {
			return nil, "0-0", redisErr("XAUTOCLAIM entry", err)
		}
		out = append(out, e)
	}
	return out, next, nil
}

// deliveryCounts returns how many times each id was delivered, from the
// group's pending list (XPENDING with a one-id range, pipelined).
func deliveryCounts(ctx context.Context, rdb rueidis.Client, c Config, ids []string) (map[string]int64, error) {
	cmds := make(rueidis.Commands, 0, len(ids))
	for _, id := range ids {
		cmds = append(cmds, rdb.B().Xpending().Key(c.Stream).Group(c.Group).Start(id).End(id).Count(1).Build())
	}
	out := make(map[string]int64, len(ids))
	for i, r := range rdb.DoMulti(ctx, cmds...) {
		arr, err := r.ToArray()
		if err != nil {
			return nil, redisErr("XPENDING", err)
		}
		if len(arr) == 0 {
			continue // acknowledged meanwhile
		}
		row, err := arr[0].ToArray()
		if err != nil || len(row) < 4 {
			return nil, redisErr("XPENDING", fmt.Errorf("bad row for %s", ids[i]))
		}
		n, err := row[3].AsInt64()
		if err != nil {
			return nil, redisErr("XPENDING count", err)
		}
		out[ids[i]] = n
	}
	return out, nil
}

// ack acknowledges ids in the group.
func ack(ctx context.Context, rdb rueidis.Client, c Config, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := rdb.Do(ctx, rdb.B().Xack().Key(c.Stream).Group(c.Group).Id(ids...).Build()).Error(); err != nil {
		return redisErr("XACK", err)
	}
	return nil
}

// entriesExist reports, per id, whether the stream still holds the entry.
func entriesExist(ctx context.Context, rdb rueidis.Client, stream string, ids []string) ([]bool, error) {
	cmds := make(rueidis.Commands, 0, len(ids))
	for _, id := range ids {
		cmds = append(cmds, rdb.B().Xrange().Key(stream).Start(id).End(id).Build())
	}
	out := make([]bool, len(ids))
	for i, r := range rdb.DoMulti(ctx, cmds...) {
		es, err := r.AsXRange()
		if err != nil {
			return nil, redisErr("XRANGE", err)
		}
		out[i] = len(es) > 0
	}
	return out, nil
}

// GroupStats is the consumer group's view of the stream.
type GroupStats struct {
	// Lag is entries not yet delivered to any consumer (-1: Redis cannot
	// tell, e.g. after entries were deleted).
	Lag int64
	// Pending is entries delivered and not yet acknowledged.
	Pending int64
}

// groupStats reads lag and pending from XINFO GROUPS.
func groupStats(ctx context.Context, rdb rueidis.Client, c Config) (GroupStats, error) {
	arr, err := rdb.Do(ctx, rdb.B().XinfoGroups().Key(c.Stream).Build()).ToArray()
	if err != nil {
		return GroupStats{}, redisErr("XINFO GROUPS", err)
	}
	for i := range arr {
		m, err := arr[i].AsMap()
		if err != nil {
			return GroupStats{}, redisErr("XINFO GROUPS", err)
		}
		name := m["name"]
		if n, _ := name.ToString(); n != c.Group {
			continue
		}
		st := GroupStats{Lag: -1}
		if v, ok := m["pending"]; ok {
			st.Pending, _ = v.AsInt64()
		}
		if v, ok := m["lag"]; ok {
			if n, err := v.AsInt64(); err == nil {
				st.Lag = n
			}
		}
		return st, nil
	}
	return GroupStats{Lag: -1}, nil
}
