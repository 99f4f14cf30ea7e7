#!/usr/bin/env bash
# Install (first time only) and run Clarion on the embedded store: one process, data in ./clarion-data.
# Extra arguments go to `clarion serve` (--host, --port, --data-dir, --database-url, --config ...).
# The web console is built here when it is missing or older than its sources (needs Node 20.19+ and npm).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
built="$ROOT/clarion/console/static/index.html"
if [ ! -e "$built" ] || [ -n "$(find "$ROOT/console/src" "$ROOT/console/index.html" "$ROOT/console/package-lock.json" \
    "$ROOT/clarion/api" -newer "$built" -print -quit 2>/dev/null)" ]; then
  if command -v npm >/dev/null && node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=19)?0:1)'; then
    echo "Building the web console (console/ -> clarion/console/static/)..." >&2
    bash "$ROOT/scripts/build_console.sh" >&2
  else
    echo "Not building the web console: it needs Node 20.19+ and npm (the API works without it)." >&2
  fi
fi
exec "$VENV/bin/clarion" serve "$@"
