#!/usr/bin/env bash
# Builds and runs the end-to-end crypto benchmark (Release, build-bench/).
# Usage: bench/crypto.sh [ITERATIONS] [PLAINTEXT_BYTES]   (defaults 20000 and 256)
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DPARLEY_TESTS=OFF -DPARLEY_BENCH=ON >/dev/null
cmake --build build-bench -j "$(nproc)" --target crypto_bench >/dev/null
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), libsodium $(dpkg-query -W -f='${Version}' libsodium23 2>/dev/null || echo '?')"
build-bench/bench/crypto_bench "${1:-20000}" "${2:-256}"
