"""Serving the web console's built pages at /console/ (the single-page app in clarion/console/static/).

Files the build made are served as they are (hashed asset names cached for a year); any other path under /console/
is one of the app's own routes and gets index.html, which must never be cached so a new release is picked up. A
checkout where the app was never built answers 503 saying how to build it, rather than a bare 404.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent.parent / "console" / "static"
PREFIX = "/console"
# The app loads only its own scripts, styles and images; Mantine sets inline style attributes, hence 'unsafe-inline'
# for styles only. The API it calls is on the same origin.
_HEADERS = {
    "content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}
NOT_BUILT = (
    "The web console is not built in this checkout. Build it with `bash scripts/build_console.sh` (needs Node 20.19+), "
    "or run `bash scripts/serve.sh`, which builds it when missing. Installed wheels contain it already.\n"
)


class ConsoleSite:
    def __init__(self, directory: Path = STATIC_DIR) -> None:
        self.directory = directory
        self.files = StaticFiles(directory=directory, check_dir=False)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        index = self.directory / "index.html"
        if not index.is_file():
            await PlainTextResponse(NOT_BUILT, status_code=503)(scope, receive, send)
            return
        path = scope["path"].removeprefix(PREFIX)
        if path in ("", "/"):
            response: Response = FileResponse(index, headers={"cache-control": "no-cache", **_HEADERS})
        else:
            try:
                response = await self.files.get_response(path.lstrip("/"), scope)
                if path.startswith("/assets/"):
                    response.headers["cache-control"] = "public, max-age=31536000, immutable"
            except HTTPException as error:
                if error.status_code != 404:
                    raise
                response = FileResponse(index, headers={"cache-control": "no-cache"})
            response.headers.update(_HEADERS)
        await response(scope, receive, send)


def redirect_to_console(_: Any) -> Response:
    return RedirectResponse(f"{PREFIX}/", status_code=302)
