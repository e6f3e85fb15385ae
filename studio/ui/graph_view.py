"""The model graph: Netron's page (``netron_page``), served on 127.0.0.1 behind a token, shown in
a QWebEngineView, with the studio's own figures laid over it.

Over Netron's drawing the studio can colour node headers (a heat map of measured time or
quantization sensitivity, or what changed between two versions) and attach per-node figures that
Netron's own node sidebar lists under "Metrics". A click on a node is reported back
(``node_clicked``), so that the layer table can follow the drawing.
The web engine is created on first use only: it costs a few hundred milliseconds and a process.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtWidgets import QLabel, QPushButton, QStackedLayout, QVBoxLayout, QWidget

from studio.ui import netron_scripts as scripts
from studio.ui.netron_page import LOOPBACK_HOSTS, blocked_requests, netron_profile

if TYPE_CHECKING:
    from studio.ui.version_view import VersionView

__all__ = ["LOOPBACK_HOSTS", "GraphView", "blocked_requests", "netron_profile"]

log = logging.getLogger(__name__)

_POLL_MS = 100
_MAX_POLLS = 600  # a minute: very large graphs take Netron a while to lay out
ATTACHMENT_NAME = "studio-metrics.json"  # Netron reads an attachment by its name's .json ending

Fills = Mapping[str, tuple[str, str]]  # node name → (header fill, text colour)


class NetronServer:
    """One model served at a time (``graph_server.GraphServer``): loopback, a fresh token each time."""

    def __init__(self) -> None:
        self._server = None

    def serve(self, path: Path, extra_files: Sequence[Path] = ()) -> QUrl:
        from studio.ui.graph_server import GraphServer

        self.stop()
        self._server = GraphServer(path, extra_files)
        return QUrl(self._server.url)

    def publish(self, name: str, content: bytes) -> str | None:
        return None if self._server is None else self._server.publish(name, content)

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None


class GraphView(QWidget):
    """Shows a message until a model file is given, then Netron's drawing of it.

    ``colour_by``: a "Colour by" bar above the drawing (the graph tab's view; the compare views
    colour the drawing themselves).
    """

    loaded = Signal(bool)  # the graph is drawn (True), or the page or model failed to load (False)
    node_selected = Signal(str, bool)  # name, whether Netron found it
    node_clicked = Signal(str)  # the name of a node the user clicked in the drawing

    def __init__(self, parent: QWidget | None = None, *, colour_by: bool = True) -> None:
        super().__init__(parent)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        self.colour_by = None
        if colour_by:
            from studio.ui.colour_by import ColourBy

            self.colour_by = ColourBy(self)
            self.colour_by.fills_changed.connect(self.set_fills)
            self.colour_by.hide()
            column.addWidget(self.colour_by)
        holder = QWidget(self)
        column.addWidget(holder, 1)
        self._stack = QStackedLayout(holder)
        self._message_page = QWidget(holder)
        self._build_message_page()
        self._stack.addWidget(self._message_page)
        self._web = None
        self._server = NetronServer()
        self._path: Path | None = None
        self._ready = False
        self._polls = 0
        self._fills: tuple[Fills, tuple[str, str] | None] = ({}, None)
        self._metrics: bytes | None = None

    def _build_message_page(self) -> None:
        column = QVBoxLayout(self._message_page)
        column.addStretch(1)
        self._message = QLabel("Select a model version to see its graph.")
        self._message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._message.setWordWrap(True)
        column.addWidget(self._message)
        self.message_button = QPushButton(self._message_page)
        self.message_button.hide()
        self.message_button.clicked.connect(self._on_message_button)
        column.addWidget(self.message_button, 0, Qt.AlignmentFlag.AlignHCenter)
        column.addStretch(1)
        self._message_action = None

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def ready(self) -> bool:
        """Whether the page for ``path`` has finished loading."""
        return self._ready

    @property
    def web_view(self):
        return self._web

    def prepare(self) -> None:
        """Start the web engine now (a few hundred milliseconds, once), rather than when the first
        graph is asked for."""
        self._ensure_web()

    def show_message(self, text: str, action: tuple[str, object] | None = None) -> None:
        """``text`` instead of a graph; ``action`` (label, callable) adds a button under it."""
        self._path = None
        self._ready = False
        self._server.stop()
        self._forget_decorations()
        self._message.setText(text)
        self._message_action = action[1] if action else None
        self.message_button.setText(action[0] if action else "")
        self.message_button.setVisible(action is not None)
        self._stack.setCurrentWidget(self._message_page)

    def message_text(self) -> str:
        return self._message.text()

    def _on_message_button(self) -> None:
        if self._message_action is not None:
            self._message_action()

    def show_file(self, path: Path, extra_files: Sequence[Path] = ()) -> None:
        """Serve ``path`` (an ONNX or other Netron-readable file) and load it.

        ``extra_files`` are the other files it needs (ONNX external data); nothing else is served.
        """
        if self._path == Path(path) and self._web is not None:
            return
        web = self._ensure_web()
        self._path, self._ready = Path(path), False
        self._forget_decorations()
        web.load(self._server.serve(Path(path), extra_files))
        self._stack.setCurrentWidget(web)

    def select_node(self, name: str) -> None:
        """Select and scroll to a node; ``node_selected`` says whether Netron had it."""
        if self._web is None or not self._ready:
            self.node_selected.emit(name, False)
            return
        self._web.page().runJavaScript(
            scripts.select_node(name), 0, lambda found: self.node_selected.emit(name, bool(found))
        )

    def run_javascript(self, code: str, callback) -> None:
        if self._web is not None:
            self._web.page().runJavaScript(code, 0, callback)

    # -- the studio's figures over the drawing ------------------------------------------------------

    def set_fills(self, fills: Fills, otherwise: tuple[str, str] | None = None) -> None:
        """Colour node headers: name → (fill, text colour); ``otherwise`` for every other node
        (None: Netron's own colours). Kept for the drawing of ``path`` and applied once it is drawn."""
        self._fills = (dict(fills), otherwise)
        if self._ready:
            self.run_javascript(scripts.fill_nodes(*self._fills), _ignore)

    def set_metrics(self, document: dict | None) -> None:
        """Figures Netron's node sidebar lists under "Metrics": a ``netron:attachment`` document
        (``graph_decor.attachment``), served beside the model and opened by the page."""
        self._metrics = None if document is None else json.dumps(document).encode("utf-8")
        if self._ready:
            self._attach()

    def show_measures(self, view: VersionView) -> None:
        """A version's measured figures over its drawing (time per node, quantization sensitivity),
        when ``view`` is the version drawn here."""
        from studio.ui.graph_decor import attachment, node_measures

        if view.graph_file is None or self._path != Path(view.graph_file):
            return  # another version is drawn: these figures are not about it
        measures = node_measures(view)
        if self.colour_by is not None:
            self.colour_by.set_measures(measures)
        self.set_metrics(attachment(measures) if measures.nodes else None)

    def _forget_decorations(self) -> None:
        self._fills, self._metrics = ({}, None), None
        if self.colour_by is not None:
            self.colour_by.clear()
            self.colour_by.hide()

    def _attach(self) -> None:
        if self._metrics is None:
            return
        where = self._server.publish(ATTACHMENT_NAME, self._metrics)
        if where is not None:
            self.run_javascript(scripts.attach(where, ATTACHMENT_NAME), _ignore)

    def _decorate(self) -> None:
        """A fresh drawing: hook its clicks, and lay the studio's figures over it."""
        self.run_javascript(scripts.hook_clicks(self._web.page().prefix), _ignore)
        if self._fills[0] or self._fills[1]:
            self.run_javascript(scripts.fill_nodes(*self._fills), _ignore)
        self._attach()
        if self.colour_by is not None:
            self.colour_by.show()

    def _on_page_message(self, message: object) -> None:
        if isinstance(message, dict) and isinstance(message.get("node"), str):
            self.node_clicked.emit(message["node"])

    # -- the page -------------------------------------------------------------------------------------

    def _ensure_web(self):
        if self._web is None:
            from PySide6.QtWebEngineWidgets import QWebEngineView

            from studio.ui.netron_channel import NetronPage

            self._web = QWebEngineView(self)
            page = NetronPage(self._web)
            page.message.connect(self._on_page_message)
            self._web.setPage(page)
            self._web.setContextMenuPolicy(Qt.ContextMenuPolicy.NoContextMenu)
            self._web.loadFinished.connect(self._on_loaded)
            self._stack.addWidget(self._web)
        return self._web

    def _on_loaded(self, ok: bool) -> None:
        if not ok:
            self.loaded.emit(False)
            return
        self._polls = 0
        self._poll_drawn()

    def _poll_drawn(self) -> None:
        """The page loads before Netron has read and drawn the model: wait until it has."""
        path = self._path

        def answer(drawn) -> None:
            if path != self._path:
                return  # another model was asked for meanwhile
            if drawn:
                self._ready = True
                self._decorate()
                self.loaded.emit(True)
            elif self._polls < _MAX_POLLS:
                self._polls += 1
                QTimer.singleShot(_POLL_MS, self._poll_drawn)
            else:
                self.loaded.emit(False)

        self.run_javascript(scripts.IS_DRAWN, answer)

    def shutdown(self) -> None:
        """Stop serving and delete the page now: the web engine wants every page gone before the
        application-wide profile, which may happen without another turn of the event loop."""
        import shiboken6

        self._server.stop()
        self._path = None
        if self._web is not None:
            web, self._web = self._web, None
            self._stack.removeWidget(web)
            shiboken6.delete(web)  # its page is its child and goes with it


def _ignore(_result: object) -> None:
    """runJavaScript wants a callback to return a result at all; these scripts' results are not needed."""
