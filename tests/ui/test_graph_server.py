"""The graph server answers the studio's web view and nobody else: a token, the loopback Host, one model."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest
from uitools import UI_MARKS

from studio.ui.graph_server import GraphServer

pytestmark = UI_MARKS


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[GraphServer, Path]]:
    folder = tmp_path / "version"
    (folder / "weights").mkdir(parents=True)
    model = folder / "model.onnx"
    model.write_bytes(b"onnx bytes")
    (folder / "weights" / "model.data").write_bytes(b"external data")
    (folder / "notes.txt").write_text("a file beside the model that is not part of it")
    (tmp_path / "secret.txt").write_text("outside the version")
    server = GraphServer(model, [folder / "weights" / "model.data"])
    yield server, folder
    server.close()


def _get(server: GraphServer, path: str, host: str | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=True)
        connection.putheader("Host", host if host is not None else f"127.0.0.1:{server.port}")
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_the_page_and_the_models_files_are_served_under_the_token(served) -> None:
    server, folder = served
    token = server.token
    status, page = _get(server, f"/{token}/")
    assert status == 200 and b'<meta name="file" content="data/model.onnx">' in page
    assert _get(server, f"/{token}/index.js")[0] == 200  # Netron's own code
    assert _get(server, f"/{token}/data/model.onnx") == (200, b"onnx bytes")
    assert _get(server, f"/{token}/data/weights/model.data") == (200, b"external data")
    assert server.url == f"http://127.0.0.1:{server.port}/{token}/"


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/index.html",
        "/data/model.onnx",
        "/{token}x/data/model.onnx",
        "/{token}/data/notes.txt",
        "/{token}/data/../secret.txt",
        "/{token}/data/%2e%2e/secret.txt",
        "/{token}/../secret.txt",
        "/{token}/__init__.py",
        "/{token}/data/",
    ],
)
def test_nothing_else_is_served(served, path: str) -> None:
    server, _ = served
    status, body = _get(server, path.format(token=server.token))
    assert status == 404
    assert b"outside the version" not in body and b"not part of it" not in body


@pytest.mark.parametrize("host", ["evil.example", f"evil.example:{0}", "127.0.0.1:1", ""])
def test_a_request_for_another_host_is_refused(served, host: str) -> None:
    """A page elsewhere that rebinds its own name to 127.0.0.1 still sends its own Host."""
    server, _ = served
    status, body = _get(server, f"/{server.token}/data/model.onnx", host=host)
    assert status == 403 and body == b"forbidden"


def test_each_server_has_its_own_token(served) -> None:
    server, folder = served
    other = GraphServer(folder / "model.onnx")
    try:
        assert other.token != server.token
        assert _get(other, f"/{server.token}/data/model.onnx")[0] == 404
    finally:
        other.close()
