#!/usr/bin/env bash
# bench/transport.sh — klingrun's transport against the official JS client (@fal-ai/client,
# fal.subscribe) on the loopback fake of fal; prints both side by side with a verdict per target.
# Builds klingrun into build-bench/ (incremental) unless KLINGRUN=/path/to/klingrun or
# --klingrun PATH is given, installs the pinned JS client for tests/conformance if it is missing,
# then runs bench/transport.mjs with the same arguments. See bench/README.md, section "transport".
# Exit: 0 when the runs completed (targets met or not), 1 when a run failed, 2 on usage errors.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")

need_build=1
for a in "$@"; do
  case $a in --klingrun|--klingrun=*|--no-klingrun|-h|--help) need_build=0 ;; esac
done
if [[ -n ${KLINGRUN:-} ]]; then need_build=0; fi

if (( need_build )); then
  build=$root/build-bench
  if [[ ! -f $build/CMakeCache.txt ]]; then
    cmake -S "$root" -B "$build" >&2
  fi
  echo "transport: building klingrun in $build" >&2
  cmake --build "$build" --target klingrun -j2 >&2
  export KLINGRUN=$build/klingrun
fi

if [[ ! -d $root/tests/conformance/node_modules/@fal-ai/client ]]; then
  echo "transport: installing @fal-ai/client for tests/conformance (npm ci)" >&2
  (cd "$root/tests/conformance" && npm ci --no-audit --no-fund) >&2
fi

exec node "$here/transport.mjs" "$@"
