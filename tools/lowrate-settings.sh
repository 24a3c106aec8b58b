#!/bin/bash
# usage: lowrate-settings.sh ROUNDS -- edge CPU per hit and context switches per
# request at 500 req/s (loadgen, 10 s) and at saturation (wrk -c16, 5 s), per Go
# runtime setting (env) and I/O core, settings interleaved A B C A B C ... so a
# shared machine's drift hits each setting alike. Run under flock
# /tmp/novashop-bench.lock. Binaries from $B (default: the checkout's bin/).
B=${B:-$(cd "$(dirname "$0")/.." && pwd)/bin}
ROUNDS=${1:-3}
SETTINGS=${SETTINGS:-"default GOMAXPROCS=1 GOGC=400"}
CORES=${CORES:-"goroutine eventloop"}
. "$(dirname "$0")/lowrate-setup.sh"
# perf stat -x, fields: value,unit,event,...
stat() { awk -F, -v e="$1" '$3==e {print $1}' "$2"; }
echo "round setting core rate requests us_per_req switches_per_req migrations"
for r in $(seq 1 $ROUNDS); do
  for core in $CORES; do
    for s in $SETTINGS; do
      envs=(); [ "$s" != default ] && envs=(${s//+/ })
      env "${envs[@]}" EDGE_ACCESS_LOG=off $B/edge --listen 127.0.0.1:19100 --admin-listen 127.0.0.1:19199 \
        --redis-url redis://127.0.0.1:19379/0 --io $core --upstream f1=http://127.0.0.1:19101 >$W/edge.log 2>&1 &
      E=$!
      for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:19100/api/products/1/ && break; sleep 0.1; done
      curl -s -o /dev/null http://127.0.0.1:19100/api/products/1/
      sleep 1
      perf stat -x, -e task-clock,context-switches,cpu-migrations -p $E -o $W/p500 -- \
        $B/loadgen attack --campaign $W/one.yaml --target edge=http://127.0.0.1:19100 --quiet --output $W/lg.json >/dev/null 2>&1
      n=5000
      awk -v r=$r -v s=$s -v c=$core -v n=$n -F, '$3=="task-clock"{t=$1} $3=="context-switches"{cs=$1} $3=="cpu-migrations"{m=$1}
        END{printf "%d %s %s 500 %d %.1f %.2f %d\n", r,s,c,n,t*1000/n,cs/n,m}' $W/p500
      perf stat -x, -e task-clock,context-switches,cpu-migrations -p $E -o $W/psat -- \
        wrk -t1 -c16 -d5s http://127.0.0.1:19100/api/products/1/ >$W/wrk.out 2>&1
      n=$(awk '/requests in/{print $1}' $W/wrk.out)
      awk -v r=$r -v s=$s -v c=$core -v n=$n -F, '$3=="task-clock"{t=$1} $3=="context-switches"{cs=$1} $3=="cpu-migrations"{m=$1}
        END{printf "%d %s %s sat %d %.1f %.2f %d\n", r,s,c,n,t*1000/n,cs/n,m}' $W/psat
      kill $E; wait $E 2>/dev/null
    done
  done
done
