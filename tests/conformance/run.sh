#!/usr/bin/env bash
# Runs the @fal-ai/client conformance test against tests/fakefal/fakefal.js, over HTTP and then
# over HTTPS.
# Installs the pinned client with `npm ci` when node_modules is missing or does not match
# package-lock.json (tracked by a stamp holding the lockfile's hash).
# Exit codes: 0 pass, 1 failures or the client could not be installed (the npm registry is
# part of our CI environment, so an install failure is a failure, not a skip).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

lock_hash() { node -e 'const c=require("crypto"),f=require("fs");process.stdout.write(c.createHash("sha256").update(f.readFileSync("package-lock.json")).digest("hex"))'; }

stamp=node_modules/.klingrun-lock-sha256
want=$(lock_hash)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" || ! -d node_modules/@fal-ai/client ]]; then
  echo "conformance: installing @fal-ai/client (npm ci)" >&2
  if ! npm ci --no-audit --no-fund >&2; then
    echo "conformance: npm ci failed: is the npm registry reachable?" >&2
    exit 1
  fi
  printf '%s' "$want" > "$stamp"
fi

node conformance.mjs "$@"

# Again over HTTPS, as real fal is: the fake serves a throwaway certificate that Node is told to
# trust, so the official client's own TLS stack talks to it unmodified.
tls=$(mktemp -d)
trap 'rm -rf "$tls"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$tls/key.pem" \
  -out "$tls/cert.pem" -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
echo "conformance: again over HTTPS" >&2
NODE_EXTRA_CA_CERTS="$tls/cert.pem" KLINGRUN_CONFORMANCE_TLS="$tls" node conformance.mjs "$@"
