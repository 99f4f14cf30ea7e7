# Sourced by serve.sh and test.sh: make sure .venv exists with Clarion installed (plus the extras asked for).
# On a fresh Debian machine python3-venv may be missing; as root we install it, otherwise we say how.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Clarion needs Python 3.11 or newer ($PYTHON is $("$PYTHON" --version 2>&1))." >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "Installing python3-venv (Debian splits it out of python3)..." >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      "$PYTHON" -m venv "$VENV"
    else
      echo "Cannot create a virtualenv: install python3-venv first (sudo apt-get install python3-venv)." >&2
      exit 1
    fi
  fi
fi
stamp="$VENV/.installed-$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)-${CLARION_EXTRAS:-none}"
if [ ! -e "$stamp" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  target="$ROOT${CLARION_EXTRAS:+[$CLARION_EXTRAS]}"
  if ! "$VENV/bin/python" -m pip install -q -e "$target"; then
    # Where PyPI has no pycurl wheel for this machine it is built from source, against libcurl's headers.
    if ! command -v curl-config >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "Installing libcurl's headers to build pycurl (Debian: libcurl4-openssl-dev libssl-dev)..." >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        libcurl4-openssl-dev libssl-dev gcc python3-dev >/dev/null
      "$VENV/bin/python" -m pip install -q -e "$target"
    else
      echo "Installing Clarion failed; if pycurl did not build, install libcurl's headers" \
        "(Debian: sudo apt-get install libcurl4-openssl-dev libssl-dev) and run this again." >&2
      exit 1
    fi
  fi
  touch "$stamp"
fi
