#!/usr/bin/env bash
# Runs the @fal-ai/client conformance test against tests/fakefal/fakefal.js.
# Installs the pinned client with `npm ci` when node_modules is missing or does not match
# package-lock.json (tracked by a stamp holding the lockfile's hash).
# Exit codes: 0 pass, 1 failures, 77 = could not install the client (ctest reports "skipped").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

lock_hash() { node -e 'const c=require("crypto"),f=require("fs");process.stdout.write(c.createHash("sha256").update(f.readFileSync("package-lock.json")).digest("hex"))'; }

stamp=node_modules/.klingrun-lock-sha256
want=$(lock_hash)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" || ! -d node_modules/@fal-ai/client ]]; then
  echo "conformance: installing @fal-ai/client (npm ci)" >&2
  if ! npm ci --no-audit --no-fund >&2; then
    echo "conformance: npm ci failed (registry unreachable?); skipping" >&2
    exit 77
  fi
  printf '%s' "$want" > "$stamp"
fi

exec node conformance.mjs "$@"
