#!/bin/bash
# usage: lowrate-ab.sh ROUNDS EDGE_A EDGE_B -- two edge binaries on the
# event-loop core, A B A B ... per loop count (LOOPS, default "1 2"): an edge
# with Redis in front of one fixed origin answering a cacheable 13 KB catalog
# page, loadgen attack at RATE (500) req/s for 10 s, every request a hit; per
# request from perf stat on the edge: CPU µs (task-clock), context switches
# and the system calls that make up a wake-up. Run under flock
# /tmp/novashop-bench.lock. loadgen and the origin from $B (the checkout's bin/).
B=${B:-$(cd "$(dirname "$0")/.." && pwd)/bin}
ROUNDS=${1:-3}
A=$2
BB=$3
LOOPS=${LOOPS:-"1 2"}
RATE=${RATE:-500}
. "$(dirname "$0")/lowrate-setup.sh"
EV=task-clock,context-switches,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_poll,syscalls:sys_enter_futex,syscalls:sys_enter_nanosleep,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_writev
echo "round loops build requests us_per_req switches epoll_pwait poll futex nanosleep read write writev"
for r in $(seq 1 $ROUNDS); do
  for loops in $LOOPS; do
    for build in A B; do
      bin=$A; [ $build = B ] && bin=$BB
      EDGE_ACCESS_LOG=off $bin --listen 127.0.0.1:19100 --admin-listen 127.0.0.1:19199 \
        --redis-url redis://127.0.0.1:19379/0 --io eventloop --io-loops $loops --upstream f1=http://127.0.0.1:19101 >$W/edge.log 2>&1 &
      E=$!
      for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:19100/api/products/1/ && break; sleep 0.1; done
      curl -s -o /dev/null http://127.0.0.1:19100/api/products/1/
      sleep 1
      perf stat -x, -e $EV -p $E -o $W/p -- \
        $B/loadgen attack --campaign $W/one.yaml --target edge=http://127.0.0.1:19100 --quiet --output /dev/null >/dev/null 2>&1
      n=$((RATE * 10))
      awk -v r=$r -v b=$build -v l=$loops -v n=$n -F, '
        $3=="task-clock"{t=$1} $3=="context-switches"{cs=$1}
        $3 ~ /epoll_pwait/{ep=$1} $3 ~ /enter_poll$/{po=$1} $3 ~ /futex/{fu=$1} $3 ~ /nanosleep/{ns=$1}
        $3 ~ /enter_read$/{rd=$1} $3 ~ /enter_write$/{wr=$1} $3 ~ /writev/{wv=$1}
        END{printf "%d %d %s %d %.1f %.2f %.2f %.2f %.2f %.2f %.2f %.2f %.2f\n", r,l,b,n,t*1000/n,cs/n,ep/n,po/n,fu/n,ns/n,rd/n,wr/n,wv/n}' $W/p
      kill $E; wait $E 2>/dev/null
    done
  done
done
