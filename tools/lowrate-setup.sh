# Sourced by the lowrate-*.sh tools: a work directory $W with $W/one.yaml (a
# loadgen campaign of one cacheable product at $RATE req/s, default 500, for
# 10 s), Redis on 127.0.0.1:19379 and one fixed origin on 127.0.0.1:19101
# answering a cacheable 13 KB catalog page (from $B), both stopped on exit.
W=$(mktemp -d)
cat >$W/one.yaml <<YAML
name: one
description: one cacheable product, constant rate
duration: 10s
timeout: 5s
rate:
  - profile: constant
    rps: ${RATE:-500}
requests:
  - {name: product, weight: 1, path: /api/products/1/}
YAML
redis-server --port 19379 --save '' --appendonly no >/dev/null 2>&1 &
R=$!
$B/stack fixed-origin --listen 127.0.0.1:19101 --size 13000 --name f1 --cacheable --catalog >/dev/null 2>&1 &
O1=$!
trap 'kill $O1 $R 2>/dev/null' EXIT
sleep 1
