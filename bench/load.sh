#!/usr/bin/env bash
# Builds parleyd and parley-bench (Release, build-bench/) and runs one load scenario against
# throwaway nodes on loopback. Usage: bench/load.sh SCENARIO [parley-bench options]
#   bench/load.sh local-1to1 --quick      bench/load.sh idle --clients 10000 --seconds 25
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DPARLEY_TESTS=OFF -DPARLEY_BENCH=ON >/dev/null
cmake --build build-bench -j "$(nproc)" --target parleyd parley-bench >/dev/null
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB, fs $(df -T /tmp | awk 'NR==2{print $2}')" >&2
exec build-bench/bench/parley-bench "$@"
