#!/bin/bash
# usage: lowrate-profile.sh CORE [ENV...] -- perf record -g of the edge over 10 s of
# 500 req/s hits (same set-up as lowrate-settings.sh); GODEBUG=gctrace=1 counts GCs.
# Writes $OUT/perf-CORE.data and $OUT/gctrace-CORE.txt. Run under the bench lock.
B=${B:-$(cd "$(dirname "$0")/.." && pwd)/bin}
OUT=${OUT:-/tmp}
CORE=${1:-eventloop}; shift
. "$(dirname "$0")/lowrate-setup.sh"
env "$@" GODEBUG=gctrace=1 EDGE_ACCESS_LOG=off $B/edge --listen 127.0.0.1:19100 --admin-listen 127.0.0.1:19199 \
  --redis-url redis://127.0.0.1:19379/0 --io $CORE --upstream f1=http://127.0.0.1:19101 >$W/edge.log 2>&1 &
E=$!
for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:19100/api/products/1/ && break; sleep 0.1; done
sleep 1
grep -c '^gc ' $W/edge.log >$OUT/gc-before-$CORE.txt
perf record -q -g -F 2000 -p $E -o $OUT/perf-$CORE.data -- \
  $B/loadgen attack --campaign $W/one.yaml --target edge=http://127.0.0.1:19100 --quiet --output /dev/null >/dev/null 2>&1
cp $W/edge.log $OUT/gctrace-$CORE.txt
kill $E
