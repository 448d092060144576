"""The NOC's package directory: pantau's wheels, and the agent's dependencies, for agency servers
that reach the NOC and nothing else.

``GET /dist/`` is a page of links in the form pip's ``--find-links`` reads, each carrying the file's
SHA-256 (``#sha256=…``), so pip refuses a file altered on the way; ``GET /dist/NAME`` is the file.
Only plain package files directly inside the directory are served (wheels, sdists) — no
subdirectories, no dotfiles, no symlinks leading out; packages hold no secrets, so no token is
asked. Each file served is logged with who fetched it.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import logging
import re
from pathlib import Path

from aiohttp import web

log = logging.getLogger("pantau.dist")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*\.(whl|tar\.gz|zip)$")


class DistDir:
    """Serves the package files of one directory; hashes are computed once per file version."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._hashes: dict[str, tuple[tuple[int, int], str]] = {}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/dist/", self.get_index)
        app.router.add_get("/dist/{name}", self.get_file)

    def files(self) -> list[Path]:
        """The package files served, by name."""
        out = []
        for p in sorted(self.root.iterdir()):
            if _NAME.match(p.name) and p.is_file() and p.resolve().parent == self.root:
                out.append(p)
        return out

    def sha256(self, path: Path) -> str:
        st = path.stat()
        key = (st.st_size, st.st_mtime_ns)
        known = self._hashes.get(path.name)
        if known is not None and known[0] == key:
            return known[1]
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        self._hashes[path.name] = (key, h.hexdigest())
        return h.hexdigest()

    def index_html(self) -> str:
        links = "".join(f'<a href="{html.escape(p.name)}#sha256={self.sha256(p)}">{html.escape(p.name)}</a><br>\n'
                        for p in self.files())
        return f"<!DOCTYPE html>\n<html><head><title>pantau packages</title></head><body>\n{links}</body></html>\n"

    async def get_index(self, _request: web.Request) -> web.Response:
        page = await asyncio.get_running_loop().run_in_executor(None, self.index_html)
        return web.Response(text=page, content_type="text/html")

    async def get_file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = self.root / name
        if not _NAME.match(name) or path not in self.files():
            return web.json_response({"error": f"no package {name!r} in the NOC's package directory; "
                                               "GET /dist/ lists what it serves"}, status=404)
        log.info("package %s sent to %s", name, request.remote)
        return web.FileResponse(path, headers={"Content-Type": "application/octet-stream"})
