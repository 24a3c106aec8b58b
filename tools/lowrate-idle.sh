#!/bin/bash
# usage: lowrate-idle.sh EDGE_A EDGE_B -- idle CPU of two edge binaries side by
# side (event-loop core, LOOPS loops, default 2), each in front of one fixed
# origin with a shared Redis: one request each, then perf stat on both for 20 s
# (CPU ms per second, context switches and wake-up system calls per second).
# Loopback ports 19200-19299, 19479; binaries for Redis' neighbour from $B.
B=${B:-$(cd "$(dirname "$0")/.." && pwd)/bin}
A=$1
BB=$2
LOOPS=${LOOPS:-2}
W=$(mktemp -d)
redis-server --port 19479 --save '' --appendonly no >/dev/null 2>&1 &
R=$!
$B/stack fixed-origin --listen 127.0.0.1:19201 --size 13000 --name f1 --cacheable --catalog >/dev/null 2>&1 &
O=$!
sleep 1
EDGE_ACCESS_LOG=off $A --listen 127.0.0.1:19200 --admin-listen 127.0.0.1:19299 --redis-url redis://127.0.0.1:19479/0 \
  --io eventloop --io-loops $LOOPS --upstream f1=http://127.0.0.1:19201 >$W/a.log 2>&1 &
EA=$!
EDGE_ACCESS_LOG=off $BB --listen 127.0.0.1:19210 --admin-listen 127.0.0.1:19298 --redis-url redis://127.0.0.1:19479/0 \
  --io eventloop --io-loops $LOOPS --upstream f1=http://127.0.0.1:19201 >$W/b.log 2>&1 &
EB=$!
trap 'kill $EA $EB $O $R 2>/dev/null' EXIT
for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:19200/api/products/1/ && curl -s -o /dev/null http://127.0.0.1:19210/api/products/1/ && break; sleep 0.1; done
sleep 2
EV=task-clock,context-switches,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_futex,syscalls:sys_enter_nanosleep
perf stat -x, -e $EV -p $EA -o $W/a.stat -- sleep 20 &
P=$!
perf stat -x, -e $EV -p $EB -o $W/b.stat -- sleep 20
wait $P
for f in a b; do
  echo "$f: $(awk -F, '$3!=""{printf "%s %.1f/s  ", $3, $1/20}' $W/$f.stat)"
done
