"""The operators' web console (web/, built into web/dist by `make web`), served at / by the API app.

Public by design: the console's HTML, JavaScript and CSS hold no data. Everything it shows
comes from /api/v1 with the user's own token, where every route states its permission. So these
routes state none, and they are not APIRoutes (tests/api/test_security.py walks the APIRoutes).

They never shadow the API: nothing under /api/ (the routes, the OpenAPI document, the docs page)
or /metrics is answered here, whatever order routes are added in, so unknown API paths keep their
JSON 404. Any other GET is a file of the build, or index.html so that the console's own routes
(/channels, /channels/ID/live) survive a reload. Hashed assets are cached for a year; index.html
is revalidated on every load so a new build shows at once. Without a build, / explains how to
make one.
"""

from __future__ import annotations

import html
import mimetypes
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

import camgrid

CONSOLE_DIR_ENV = "CAMGRID_CONSOLE_DIR"  # a built console elsewhere (a package, a container image)
RESERVED_PREFIXES = ("/api", "/metrics")
ASSET_CACHE = "public, max-age=31536000, immutable"  # file names carry a content hash
PAGE_CACHE = "no-cache"
# The console loads nothing from elsewhere; live video comes over WebSockets from media nodes,
# which may be other hosts and ports (ws:, wss:). Vue sets styles inline, hence 'unsafe-inline'
# for styles only; scripts are the build's own files.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self' ws: wss:; font-src 'self' data:; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Cache-Control": PAGE_CACHE,
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def default_console_dir() -> Path:
    """$CAMGRID_CONSOLE_DIR, else web/dist beside the camgrid package (the repository layout)."""
    configured = os.environ.get(CONSOLE_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(camgrid.__file__).resolve().parent.parent / "web" / "dist"


def is_reserved(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in RESERVED_PREFIXES)


def _missing_build_page(dist_dir: Path) -> str:
    where = html.escape(str(dist_dir))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>camgrid: console not built</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;line-height:1.6;color:#303133}}
code{{background:#f2f3f5;padding:.1em .3em;border-radius:3px}}</style></head>
<body>
<h1>camgrid is running; its web console is not built</h1>
<p>No console build was found at <code>{where}</code>. Build it in the repository with
<code>make web</code> (needs Node.js 20.19 or newer), then reload this page.</p>
<p>控制台尚未构建：请在代码仓库中运行 <code>make web</code>（需要 Node.js 20.19 或更高版本），然后刷新本页。</p>
<p>The HTTP API works without it: <a href="/api/v1/docs">/api/v1/docs</a>.</p>
</body></html>
"""


class ConsoleRoute(BaseRoute):
    """GET and HEAD of every path outside /api and /metrics: the console's files."""

    def __init__(self, dist_dir: Path, img_sources: list[str] | tuple[str, ...] = ()) -> None:
        self.dist_dir = dist_dir.resolve()
        # The map's tile server (http.map_tile_url), when it is another host: its images only.
        self.page_headers = PAGE_HEADERS if not img_sources else {
            **PAGE_HEADERS, "Content-Security-Policy": CONTENT_SECURITY_POLICY.replace(
                "img-src 'self' data: blob:", "img-src 'self' data: blob: " + " ".join(img_sources))}
        self.path = "/{console_path:path}"  # for tools that list routes; matching is matches()'s
        self.name = "console"

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and not is_reserved(scope["path"]):
            return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = self.respond(scope["path"], Headers(scope=scope))
        await response(scope, receive, send)

    def respond(self, path: str, headers: Headers) -> Response:
        index = self.dist_dir / "index.html"
        if not index.is_file():
            return HTMLResponse(_missing_build_page(self.dist_dir), headers={"Cache-Control": PAGE_CACHE})
        relative = path.lstrip("/")
        parts = relative.split("/")
        if "\x00" in relative or any(part.startswith(".") for part in parts if part):
            return _not_found()  # no dotfiles (the build's .vite/manifest.json), no "..": nothing outside dist
        if relative:
            candidate = (self.dist_dir / relative).resolve()
            if not candidate.is_relative_to(self.dist_dir):
                return _not_found()
            if candidate.is_file():
                cache = ASSET_CACHE if parts[0] == "assets" else PAGE_CACHE
                extra = self.page_headers if candidate.suffix == ".html" else {"Cache-Control": cache}
                return _file(candidate, headers, extra)
            if "." in parts[-1]:
                return _not_found()  # a missing file (an old asset): answering HTML would only confuse
        # The console's own routes: the page, whose router shows the right view.
        return _file(index, headers, self.page_headers)


def _file(path: Path, request_headers: Headers, headers: dict[str, str]) -> FileResponse:
    """The file, or its .gz twin from the build when the browser takes gzip."""
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if media_type.startswith("text/") or media_type in ("application/javascript", "text/javascript"):
        media_type += "; charset=utf-8"
    gz = path.with_name(path.name + ".gz")
    if "gzip" in request_headers.get("accept-encoding", "") and gz.is_file():
        return FileResponse(gz, media_type=media_type,
                            headers={**headers, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
    return FileResponse(path, media_type=media_type, headers={**headers, "Vary": "Accept-Encoding"})


def _not_found() -> Response:
    return Response("not found", status_code=404, media_type="text/plain; charset=utf-8",
                    headers={"Cache-Control": PAGE_CACHE})


def mount_console(app: FastAPI, dist_dir: Path | None = None, img_sources: list[str] | tuple[str, ...] = ()) -> ConsoleRoute:
    """Serve the console from dist_dir (default: default_console_dir()) at /. Call after the API
    routes are added; the console never answers under /api or /metrics either way. img_sources:
    further origins the page may load images from (the configured map tile server)."""
    route = ConsoleRoute(dist_dir or default_console_dir(), img_sources)
    app.router.routes.append(route)
    return route
