#!/usr/bin/env bash
# Builds Parley and runs the whole test suite: format check, unit tests, fuzz-corpus replay and
# the multi-process integration tests on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/check-format.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLEY_TESTS=ON >/dev/null
cmake --build build -j "$(nproc)"
cd build && ctest --output-on-failure -j 2
