#!/usr/bin/env bash
# Sets klingrun up on Debian 12: installs every system dependency with apt-get (skipping what is
# already there) and builds into build/. Safe to run again; only missing pieces are installed
# and the build is incremental.
#   scripts/setup.sh            install + build (with tests)
#   KLINGRUN_WERROR=ON ...      warnings are errors (CI sets this)
set -euo pipefail
cd "$(dirname "$0")/.."

# Why each package is here: see README "Dependencies".
packages=(
  g++ cmake make pkg-config git ca-certificates
  libluajit-5.1-dev luajit
  nlohmann-json3-dev
  libcurl4-openssl-dev libssl-dev
  libsqlite3-dev
  libmimalloc-dev
  catch2 openssl
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The fake fal server and the conformance test run on Node (>= 18; Debian 12 ships 18).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

werror="${KLINGRUN_WERROR:-OFF}"
if [ "${CI:-}" = "true" ]; then werror=ON; fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKLINGRUN_WERROR="$werror" >/dev/null
cmake --build build -j"$(nproc)"
echo "setup: built build/klingrun"
