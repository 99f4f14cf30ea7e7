#!/usr/bin/env bash
# Install (first time only) and run Clarion on the embedded store: one process, data in ./clarion-data.
# Extra arguments go to `clarion serve` (--host, --port, --data-dir, --database-url, --config ...).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
exec "$VENV/bin/clarion" serve "$@"
