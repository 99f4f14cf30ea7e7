"""Helpers and fixtures for the console's browser tests: one Clarion server per test module, Debian's Chromium through
Playwright (never a downloaded browser), sign-in, and screenshots kept under test-artifacts/console/
(CLARION_TEST_ARTIFACTS moves them).

tests/conftest.py loads this module as a plugin, so every console test module gets `browser` (one Chromium per
module), `console` and `korean_console` (a page on the module's own `server`, failing the test on any console error
it leaves) without repeating them; a module defines only its `server`, usually through `console_server`."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import ADMIN, RunningServer, free_port

from clarion.api.console_site import STATIC_DIR
from clarion.config import Settings
from clarion.console.roles import Role

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("CLARION_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts"))
PASSWORD = "console test password"
CATALOG = Path(__file__).resolve().parent.parent / "console" / "src" / "i18n" / "en.ts"
USERS = {"ada": Role.ADMIN, "mark": Role.MARKETER, "ann": Role.ANALYST}
DESKTOP = {"width": 1280, "height": 860}
Viewport = dict[str, int]
SIGN_IN_LABELS = {"en-US": ("Username", "Password", "Sign in"), "ko-KR": ("사용자 이름", "비밀번호", "로그인")}


def require_browser() -> Any:
    """Playwright's sync API, or a skip that says what is missing."""
    if not (STATIC_DIR / "index.html").is_file():
        pytest.skip("the console is not built in this checkout: bash scripts/build_console.sh")
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed (apt-get install chromium; scripts/test.sh does it as root)")
    return pytest.importorskip("playwright.sync_api", reason="playwright (the test extra) drives the browser")


@contextmanager
def console_server(tmp: Path, **settings: Any) -> Iterator[RunningServer]:
    values: dict[str, Any] = {
        "data_dir": tmp / "data",
        "port": free_port(),
        "access_keys": [ADMIN],
        "access_log": False,
        **settings,
    }
    server = RunningServer(Settings(**values)).start()
    try:
        for username, role in USERS.items():
            server.run(lambda services, u=username, r=role: services.console.create_user(u, r, PASSWORD))
        yield server
    finally:
        server.stop()


@contextmanager
def chromium() -> Iterator[Any]:
    sync_api = require_browser()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        try:
            yield browser
        finally:
            browser.close()


class ConsolePage:
    """One browser context (its own cookies) on the console, recording console errors as it goes."""

    def __init__(
        self, browser: Any, server: RunningServer, locale: str = "en-US", viewport: Viewport = DESKTOP
    ) -> None:
        self.server = server
        self.locale = locale
        self.context = browser.new_context(viewport=viewport, locale=locale)
        self.page = self.context.new_page()
        self.page.set_default_timeout(8000)
        self.errors: list[str] = []
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def open(self, path: str = "") -> None:
        self.page.goto(f"{self.server.url}/console/{path}")

    def sign_in(self, username: str, path: str = "") -> None:
        """Sign in through the form, in the page's language, and wait for the header to name the user."""
        username_label, password_label, button = SIGN_IN_LABELS[self.locale]
        self.open(path)
        self.page.get_by_label(username_label).fill(username)
        self.page.get_by_role("textbox", name=password_label).fill(PASSWORD)
        self.page.get_by_role("button", name=button).click()
        self.page.get_by_test_id("who").wait_for()

    def until(self, check: Callable[[], bool], what: str, timeout: float = 8) -> None:
        """Poll `check` until it holds: what a page shows after a client-side change (a search, a filter) settles
        when its answer arrives, and Playwright's network-idle state is reached once per load, not per fetch."""
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"the page never showed {what}"
            self.page.wait_for_timeout(20)

    def forget_refused_calls(self, status: int = 400) -> None:
        """Wait for the browser's own log line about a refused call (it may come after the page showed the refusal)
        and drop it: a refusal the test provoked is no console error of the page's."""
        logged = f"status of {status}"
        deadline = time.monotonic() + 5
        while not any(logged in error for error in self.errors) and time.monotonic() < deadline:
            self.page.wait_for_timeout(20)
        assert any(logged in error for error in self.errors), f"the browser logged no {status}: {self.errors}"
        self.errors[:] = [error for error in self.errors if logged not in error]

    def screenshot(self, name: str) -> None:
        folder = ARTIFACTS / "console"
        folder.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(folder / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


@contextmanager
def checked_page(
    browser: Any, server: RunningServer, locale: str = "en-US", viewport: Viewport = DESKTOP
) -> Iterator[ConsolePage]:
    """A console page that fails the test if the browser logged an error the test did not clear."""
    page = ConsolePage(browser, server, locale, viewport)
    try:
        yield page
    finally:
        page.close()
    assert page.errors == []


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def console(browser: Any, server: RunningServer) -> Iterator[ConsolePage]:
    with checked_page(browser, server) as page:
        yield page


@pytest.fixture
def korean_console(browser: Any, server: RunningServer) -> Iterator[ConsolePage]:
    with checked_page(browser, server, "ko-KR") as page:
        yield page


def keep_for_docs(name: str, docs_name: str) -> None:
    """Copy a screenshot into docs/images when CLARION_UPDATE_DOC_SCREENSHOTS is set (the README shows a few)."""
    if os.environ.get("CLARION_UPDATE_DOC_SCREENSHOTS"):
        target = Path(__file__).resolve().parent.parent / "docs" / "images"
        target.mkdir(exist_ok=True)
        shutil.copy(ARTIFACTS / "console" / f"{name}.png", target / docs_name)


# The page's text without the server's own messages, which are English and marked lang="en".
VISIBLE_TEXT = """() => { const body = document.body.cloneNode(true);
    body.querySelectorAll('[lang="en"]').forEach((node) => node.remove());
    document.documentElement.appendChild(body); const text = body.innerText; body.remove();
    return text; }"""

# Elements sticking out past the window's right edge that no scrolling box of theirs clips (a table inside a scroll
# container may be wider; the page itself may not), described by tag, test id and text.
OVERFLOWING = """() => { const width = document.documentElement.clientWidth; const out = [];
    const clipped = (node) => { for (let up = node.parentElement; up; up = up.parentElement) {
        if (getComputedStyle(up).overflowX !== 'visible') return up.getBoundingClientRect().right <= width + 1; }
        return false; };
    for (const node of document.body.querySelectorAll('*')) { const box = node.getBoundingClientRect();
        if (box.width > 0 && box.right > width + 1 && !clipped(node))
            out.push(`${node.tagName.toLowerCase()}${node.dataset.testid ? '#' + node.dataset.testid : ''}`
                + ` (${Math.round(box.right)} px) ${(node.innerText ?? '').slice(0, 40)}`); }
    return {scroll: document.documentElement.scrollWidth - width, elements: out.slice(0, 5)}; }"""


def _catalog(path: Path) -> dict[str, str]:
    entries = re.findall(r'^\s*"([^"]+)": ("(?:[^"\\]|\\.)*"),$', path.read_text(), re.M)
    return {key: json.loads(text) for key, text in entries}


def english_messages() -> list[str]:
    """The English catalog's messages that should never show in Korean: not bare placeholders, not the product's
    name, not a name a Korean translation keeps inside it ("APNs VoIP 푸시" keeps APNs VoIP; a bare copy is no
    translation, so it still counts)."""
    korean = _catalog(CATALOG.with_name("ko.ts"))

    def kept_name(key: str, text: str) -> bool:
        translation = korean.get(key, "")
        return text in translation and re.search("[가-힣]", translation) is not None

    return [
        text
        for key, text in _catalog(CATALOG).items()
        if re.search(r"[A-Za-z]{3}", re.sub(r"{{\w+}}", "", text)) and text != "Clarion" and not kept_name(key, text)
    ]


def untranslated(text: str, english: list[str]) -> list[str]:
    """The English messages on a Korean page's text. A one-word message may be part of its Korean translation
    (문자(SMS)), so it counts only standing alone on a line."""
    lines = {line.strip() for line in text.splitlines()}
    return [m for m in english if m in lines or (" " in m and m in text)]


def english_strings(*areas: str) -> list[str]:
    """The English catalog's messages of these areas (without placeholders), to find any left on a Korean page."""
    found = re.findall(r'^\s+"([\w.]+)": "([^"]+)",$', CATALOG.read_text(), re.MULTILINE)
    return [text for key, text in found if key.split(".")[0] in areas and "{{" not in text]
