"""The wheel as an operator installs it (docs/operations.md, "Installing"): `python -m build`, `pip install` into a
fresh virtualenv with its dependencies from the package index, then `clarion version` and a server's /health.

About a minute on the reference machine (most of it pip fetching the dependencies); it runs once per suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

from conftest import free_port
from processes import clean_env

from clarion import __version__

ROOT = Path(__file__).resolve().parent.parent


def test_the_built_wheel_installs_and_serves(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = dist.glob("clarion-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    info = f"clarion-{__version__}.dist-info"
    for name in (
        "clarion/api/model/pinpoint-2016-12-01.json",
        "clarion/api/model/NOTICE",
        f"{info}/licenses/LICENSE",
        f"{info}/licenses/clarion/api/model/NOTICE",
        "clarion/console/static/index.html",  # the built web console: running it never needs Node
    ):
        assert name in names, f"{name} is not in the wheel (the console is built by scripts/build_console.sh)"
    assert any(name.startswith("clarion/console/static/assets/") and name.endswith(".js") for name in names)
    assert not any(name.startswith("tests/") for name in names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)], capture_output=True, text=True, timeout=600
    )
    assert installed.returncode == 0, installed.stderr[-3000:]

    clarion = venv / "bin" / "clarion"
    env = clean_env()
    version = subprocess.run([str(clarion), "version"], capture_output=True, text=True, env=env, timeout=60)
    assert (version.returncode, version.stdout.strip()) == (0, __version__), version.stderr

    port = free_port()
    args = ["serve", "--port", str(port), "--data-dir", str(tmp_path / "data"), "--insecure-any-credentials"]
    server = subprocess.Popen([str(clarion), *args], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    health = json.loads(response.read())
                    break
            except OSError:
                assert server.poll() is None, server.communicate()[1]
                assert time.monotonic() < deadline, "the installed server never answered /health"
                time.sleep(0.1)
        assert health == {"status": "ok", "store": "sqlite", "version": __version__}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/console/segments", timeout=5) as response:
            assert b'<div id="root">' in response.read()  # the console, served from the installed package
    finally:
        server.terminate()
        server.wait(timeout=30)
