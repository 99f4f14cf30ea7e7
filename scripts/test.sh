#!/usr/bin/env bash
# Install everything the tests need and run the whole suite, on SQLite and on PostgreSQL.
# PostgreSQL: a local server is used (started if installed but stopped, installed from Debian's packages when
# running as root without one). Where none can be had, the PostgreSQL half skips and says why.
set -euo pipefail
CLARION_EXTRAS=test
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"

pg_ready() { "$VENV/bin/python" - <<'PY' 2>/dev/null
import os, psycopg
psycopg.connect(os.environ.get("CLARION_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"), connect_timeout=2).close()
PY
}
if ! pg_ready; then
  if ! command -v pg_ctlcluster >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing PostgreSQL from Debian's packages for the PostgreSQL half of the tests..." >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null || true
  fi
  if command -v pg_ctlcluster >/dev/null; then
    for version in $(ls /etc/postgresql 2>/dev/null); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
    done
    for _ in $(seq 1 30); do pg_ready && break; sleep 0.5; done
    # A fresh Debian cluster wants a password over TCP: give postgres one and use it.
    if ! pg_ready && su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null 2>&1; then
      export CLARION_TEST_POSTGRES_URL="postgresql://postgres:postgres@127.0.0.1:5432/postgres"
    fi
  fi
fi

# The console's browser tests drive Debian's Chromium through Playwright and Debian's firefox-esr over WebDriver
# BiDi through puppeteer-core (tests/firefox/; never a downloaded browser); a Korean font makes the Korean pages'
# screenshots readable.
if { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/firefox-esr ] || [ ! -d /usr/share/fonts/truetype/nanum ]; } \
    && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing Chromium, Firefox ESR and a Korean font from Debian's packages for the console's browser tests..." >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium firefox-esr fonts-nanum \
    >/dev/null || true
fi
if [ ! -e "$ROOT/tests/firefox/node_modules/.package-lock.json" ] \
    || [ "$ROOT/tests/firefox/package-lock.json" -nt "$ROOT/tests/firefox/node_modules/.package-lock.json" ]; then
  npm ci --prefix "$ROOT/tests/firefox" --no-audit --no-fund --loglevel=error
fi
# The console: generated API types, typecheck, lint, unit tests, then the build the server and the wheel serve.
CLARION_EXTRAS="$CLARION_EXTRAS" bash "$ROOT/scripts/build_console.sh" --check

cd "$ROOT"
"$VENV/bin/ruff" check clarion tests tools bench
"$VENV/bin/ruff" format --check clarion tests tools bench
"$VENV/bin/lint-imports" --no-cache --no-logo  # the layers and no-cycles contracts in pyproject.toml
# One test process per core (pytest-xdist): most tests wait on sockets and subprocesses. `-n 0` runs them in one.
exec "$VENV/bin/python" -m pytest -p no:cacheprovider -n auto "$@"
