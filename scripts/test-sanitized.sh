#!/usr/bin/env bash
# The sanitized pass: builds Parley with clang under AddressSanitizer (with LeakSanitizer) and
# UndefinedBehaviorSanitizer into build-asan/ and runs the unit tests, the fuzz-corpus replays,
# the simulator (PARLEY_SIM_SEEDS seeds, 40 by default: the sanitizers make it ~10x slower) and
# the integration tests. Any report stops the process that made it with a failure.
# tests/sanitizers/*.supp hold suppressions for third-party code only, each with its reason.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLEY_TESTS=ON \
  -DPARLEY_SANITIZE=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DPARLEY_SIM_SEEDS="${PARLEY_SIM_SEEDS:-40}" >/dev/null
cmake --build build-asan -j 2
supp="$PWD/tests/sanitizers"
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$supp/ubsan.supp"
export PARLEY_TEST_TIME_SCALE=3  # tests/integration/harness.py: start/stop deadlines
export PARLEY_TEST_MEMORY_SCALE=4  # and bounds on memory growth (ASan quarantine, shadow)
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
cd build-asan && ctest --output-on-failure -j 2 --timeout 2400
