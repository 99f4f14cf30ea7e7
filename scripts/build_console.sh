#!/usr/bin/env bash
# Build the web console (console/, a Vite + React app) into clarion/console/static/, where `clarion serve` serves it
# at /console/ and the wheel picks it up. Needs Node 20.19+ with npm. The API client's types are generated first from
# the server's own OpenAPI document. `--check` also typechecks, lints and runs the console's unit tests (CI).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT/console"
if [ ! -e node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
"$VENV/bin/clarion" openapi > openapi.json
npx openapi-typescript openapi.json -o src/api/schema.d.ts --default-non-nullable false --silent
if [ "${1:-}" = "--check" ]; then
  npm run --silent typecheck
  npm run --silent lint
  npm run --silent test
fi
npm run --silent build
