"""Netron's page and one model's files, served to the studio's own web view and to nobody else.

Any account on the machine can reach a port on 127.0.0.1, and any web page can make a browser
send requests to one (DNS rebinding); Netron's own server answers both with the model on screen
and every file beside it. This one answers only under a random path token made for each model,
only to a request addressed to the loopback host and port it listens on, and only with Netron's
static files and the files it was given, and the documents the studio itself made for the
page (``publish``: the attachment of measured per-node figures Netron lists beside each node).
"""

from __future__ import annotations

import http.server
import re
import secrets
import threading
import urllib.parse
from collections.abc import Iterable
from pathlib import Path

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".ttf": "font/ttf",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
}
_VERSION_META = re.compile(r'<meta name="version" content="[^"]*">')


class GraphServer:
    """Serves Netron and the given model files until closed; ``url`` opens the model."""

    def __init__(self, model: Path, extra_files: Iterable[Path] = ()) -> None:
        import netron

        self.token = secrets.token_urlsafe(24)
        self._static = Path(netron.__file__).resolve().parent
        self._netron_version = getattr(netron, "__version__", "")
        self._model = Path(model)
        folder = self._model.parent
        self._files = {_name_in(folder, Path(p)): Path(p) for p in (self._model, *extra_files)}
        self._documents: dict[str, bytes] = {}  # made by the studio, served under attachments/
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._hosts = {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="graph-server", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.token}/"

    def publish(self, name: str, content: bytes) -> str:
        """Serve ``content`` (made by the studio, kept in memory) until closed; its path on the page."""
        self._documents = {**self._documents, name: bytes(content)}  # one swap: the server reads it
        return f"attachments/{urllib.parse.quote(name)}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    # -- answering -----------------------------------------------------------------------------

    def answer(self, host: str | None, raw_path: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for one GET: the whole policy, in one place."""
        if host not in self._hosts:
            return 403, "text/plain", b"forbidden"
        path = urllib.parse.unquote(urllib.parse.urlsplit(raw_path).path)
        prefix = f"/{self.token}/"
        if not path.startswith(prefix):
            return 404, "text/plain", b"not found"
        name = path[len(prefix) :] or "index.html"
        if name.startswith("data/"):
            served = self._files.get(name[len("data/") :])
            if served is None or not served.is_file():
                return 404, "text/plain", b"not found"
            return 200, "application/octet-stream", served.read_bytes()
        if name.startswith("attachments/"):
            document = self._documents.get(name[len("attachments/") :])
            if document is None:
                return 404, "text/plain", b"not found"
            return 200, "application/json", document
        return self._static_file(name)

    def _static_file(self, name: str) -> tuple[int, str, bytes]:
        target = (self._static / name).resolve()
        kind = _TYPES.get(target.suffix)
        if kind is None or target.parent != self._static or not target.is_file():
            return 404, "text/plain", b"not found"
        body = target.read_bytes()
        if name == "index.html":
            body = self._index(body.decode("utf-8")).encode("utf-8")
        return 200, kind, body

    def _index(self, html: str) -> str:
        """Netron's page, told which file to open (relative, so it stays under the token)."""
        quoted = urllib.parse.quote(self._model.name)
        meta = "\n".join(
            (
                '<meta name="type" content="Python">',
                f'<meta name="version" content="{self._netron_version}">',
                f'<meta name="file" content="data/{quoted}">',
                f'<meta name="identifier" content="{quoted}">',
            )
        )
        return _VERSION_META.sub(lambda _: meta, html, count=1)


def _name_in(folder: Path, path: Path) -> str:
    """How Netron asks for a file: its path relative to the model's folder."""
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return path.name


def _handler_for(server: GraphServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server protocol
            status, kind, body = server.answer(self.headers.get("Host"), self.path)
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the protocol's name
            return

    return Handler
