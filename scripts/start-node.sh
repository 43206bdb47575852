#!/usr/bin/env bash
# Installs what is missing, builds, creates a node in ./parley-data (once) and serves it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLEY_TESTS=OFF >/dev/null
cmake --build build -j "$(nproc)" --target parleyd parley
DATA=${PARLEYD_DATA:-$PWD/parley-data}
NAME=${PARLEY_NAME:-example.org}
[ -f "$DATA/config.toml" ] || build/cli/parleyd init --data "$DATA" --name "$NAME"
echo "Serving $NAME from $DATA. In another terminal:"
echo "  build/cli/parleyd user add alice --data $DATA"
echo "  build/cli/parley --profile /tmp/alice login alice@$NAME --server 127.0.0.1:7420"
exec build/cli/parleyd serve --data "$DATA"
