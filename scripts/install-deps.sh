#!/usr/bin/env bash
# Installs what building and testing Parley needs on Debian 12, skipping what is present.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config ccache clang-format
      libsodium-dev libboost-system-dev libboost-dev libcpprest-dev libssl-dev libsqlite3-dev
      libmsgpack-cxx-dev catch2 libcli11-dev libspdlog-dev libfmt-dev libtomlplusplus-dev
      python3 sqlite3 openssl ca-certificates
      clang libclang-rt-14-dev)  # clang: the sanitized pass (scripts/test-sanitized.sh)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
