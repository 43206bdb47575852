#!/usr/bin/env bash
# Builds the benchmark drivers, starts a throwaway node on loopback and measures send/delivery
# latency. Usage: bench/run.sh [COUNT] [BODY_BYTES]   (defaults 2000 and 256)
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-2000}
BODY=${2:-256}
cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DPARLEY_TESTS=OFF -DPARLEY_BENCH=ON >/dev/null
cmake --build build-bench -j "$(nproc)" --target parleyd send_bench >/dev/null
WORK=$(mktemp -d /tmp/parley-bench.XXXXXX)
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$WORK"' EXIT
PORT=$((20000 + RANDOM % 20000))
D=build-bench/cli/parleyd
$D --data "$WORK/node" init --name bench.local --client-listen 127.0.0.1:$PORT \
   --admin-listen 127.0.0.1:$((PORT + 1)) --federation-listen 127.0.0.1:$((PORT + 2)) \
   --dm-policy organization >/dev/null
# One sender far beyond a person's pace: no send rate limit on this node.
sed -i 's/^messages_per_minute = .*/messages_per_minute = 0/' "$WORK/node/config.toml"
$D --data "$WORK/node" serve 2>"$WORK/node.log" &
PID=$!
for _ in $(seq 50); do $D --data "$WORK/node" status >/dev/null 2>&1 && break; sleep 0.1; done
for u in sender receiver; do
  echo "bench password 1" | $D --data "$WORK/node" user add $u --password-stdin >/dev/null
done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), fs $(df -T "$WORK" | awk 'NR==2{print $2}')"
build-bench/bench/send_bench 127.0.0.1:$PORT "$WORK" "$COUNT" "$BODY"
