"""The model graph: Netron's page, served on 127.0.0.1 behind a token, shown in a QWebEngineView.

Netron's page would reach out to the internet (ipinfo.io for a cookie question, Google Analytics
for telemetry) and stops working with "Please update" once its build is 180 days old. Here:
- every request whose host is not loopback is blocked (``LoopbackOnly``);
- the cookie question is answered before the page runs (a ``consent`` cookie, as Netron's
  ``browser.js`` checks it), by a script injected at document creation;
- the page's build date (``<meta name="date">``, which the age check reads) is removed as the
  page is parsed, so the pinned Netron keeps working after 180 days;
- the angle brackets around tensor shapes (U+3008/U+3009, found only in CJK fonts) come from a
  two-glyph font shipped in resources/fonts when no font in Netron's list has them.
The web engine is created on first use only: it costs a few hundred milliseconds and a process.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt, QTimer, QUrl, Signal
from PySide6.QtWidgets import QLabel, QPushButton, QStackedLayout, QVBoxLayout, QWidget

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

_PREPARE_PAGE = """
(() => {
  document.cookie = 'consent=' + Date.now() + ';path=/';
  const dropDate = () => {
    for (const meta of document.querySelectorAll('meta[name="date"]')) meta.remove();
  };
  new MutationObserver(dropDate).observe(document, { childList: true, subtree: true });
  document.addEventListener('DOMContentLoaded', dropDate);
  const brackets = new FontFace('Studio Brackets', 'url(data:font/ttf;base64,%(font)s)',
                                { unicodeRange: 'U+3008-3009' });
  document.fonts.add(brackets);
  brackets.load();
  document.addEventListener('DOMContentLoaded', () => {
    const style = document.createElement('style');
    style.textContent = 'body, button, .sidebar, .node-item text, .node-argument > text, .edge-label ' +
      '{ font-family: %(stack)s, "Studio Brackets" !important; }';
    document.head.appendChild(style);
  });
})();
"""
# Netron's own font list (index.html, grapher.css), which the injected rule extends.
_NETRON_FONTS = (
    '-apple-system, BlinkMacSystemFont, "Segoe WPC", "Segoe UI", "Ubuntu", "Droid Sans", '
    'sans-serif, "PingFang SC"'
)


def _prepare_page_script() -> str:
    import base64

    from studio.core.resources import resource

    font = base64.b64encode(resource("fonts", "studio-brackets.ttf").read_bytes()).decode("ascii")
    return _PREPARE_PAGE % {"font": font, "stack": _NETRON_FONTS}


# Select a node by name the way Netron's own Find sidebar does (view.js: target.select + scrollTo).
_SELECT_NODE = """
(() => {
  const view = window.__view__;
  const target = view && view.target;
  if (!target || !target._table) return false;
  for (const key of target._table.keys()) {
    if (key && key.type && key.name === %s) {
      target.scrollTo(target.select([key], 'sidebar'));
      return true;
    }
  }
  return false;
})()
"""


# Laid out, and the page switched from Netron's welcome spinner to the graph (body class "default").
_IS_DRAWN = (
    "!!(window.__view__ && window.__view__.target && window.__view__.target._table"
    " && document.body.classList.contains('default'))"
)
_POLL_MS = 100
_MAX_POLLS = 600  # a minute: very large graphs take Netron a while to lay out


class NetronServer:
    """One model served at a time (``graph_server.GraphServer``): loopback, a fresh token each time."""

    def __init__(self) -> None:
        self._server = None

    def serve(self, path: Path, extra_files: Sequence[Path] = ()) -> QUrl:
        from studio.ui.graph_server import GraphServer

        self.stop()
        self._server = GraphServer(path, extra_files)
        return QUrl(self._server.url)

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None


_profile = None
_interceptor = None


def netron_profile():
    """The off-the-record profile every graph page uses: loopback only, page prepared as above."""
    global _profile, _interceptor
    if _profile is not None:
        return _profile
    from PySide6.QtWebEngineCore import QWebEngineProfile, QWebEngineScript, QWebEngineUrlRequestInterceptor

    class LoopbackOnly(QWebEngineUrlRequestInterceptor):
        """Blocks every request that would leave this machine; remembers what it blocked."""

        def __init__(self, parent=None) -> None:
            super().__init__(parent)
            self.blocked: list[str] = []

        def interceptRequest(self, info) -> None:
            url = info.requestUrl()
            if url.scheme() in ("data", "blob") or url.host() in LOOPBACK_HOSTS:
                return
            self.blocked.append(url.toString())
            info.block(True)

    profile = QWebEngineProfile(QCoreApplication.instance())  # no storage name: nothing kept on disk
    profile.setHttpCacheType(QWebEngineProfile.HttpCacheType.MemoryHttpCache)
    _interceptor = LoopbackOnly(profile)
    profile.setUrlRequestInterceptor(_interceptor)
    script = QWebEngineScript()
    script.setName("studio-prepare-netron")
    script.setInjectionPoint(QWebEngineScript.InjectionPoint.DocumentCreation)
    script.setWorldId(QWebEngineScript.ScriptWorldId.MainWorld)
    script.setSourceCode(_prepare_page_script())
    profile.scripts().insert(script)
    _profile = profile
    return profile


def blocked_requests() -> list[str]:
    """URLs the graph view refused to load (for the status of privacy, and for tests)."""
    return [] if _interceptor is None else list(_interceptor.blocked)


class GraphView(QWidget):
    """Shows a message until a model file is given, then Netron's drawing of it."""

    loaded = Signal(bool)  # the graph is drawn (True), or the page or model failed to load (False)
    node_selected = Signal(str, bool)  # name, whether Netron found it

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._stack = QStackedLayout(self)
        self._message_page = QWidget(self)
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
        self._stack.addWidget(self._message_page)
        self._web = None
        self._server = NetronServer()
        self._path: Path | None = None
        self._ready = False
        self._polls = 0

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
        web.load(self._server.serve(Path(path), extra_files))
        self._stack.setCurrentWidget(web)

    def select_node(self, name: str) -> None:
        """Select and scroll to a node; ``node_selected`` says whether Netron had it."""
        if self._web is None or not self._ready:
            self.node_selected.emit(name, False)
            return
        self._web.page().runJavaScript(
            _SELECT_NODE % json.dumps(name), 0, lambda found: self.node_selected.emit(name, bool(found))
        )

    def run_javascript(self, code: str, callback) -> None:
        if self._web is not None:
            self._web.page().runJavaScript(code, 0, callback)

    def _ensure_web(self):
        if self._web is None:
            from PySide6.QtWebEngineCore import QWebEnginePage
            from PySide6.QtWebEngineWidgets import QWebEngineView

            self._web = QWebEngineView(self)
            self._web.setPage(QWebEnginePage(netron_profile(), self._web))
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
                self.loaded.emit(True)
            elif self._polls < _MAX_POLLS:
                self._polls += 1
                QTimer.singleShot(_POLL_MS, self._poll_drawn)
            else:
                self.loaded.emit(False)

        self.run_javascript(_IS_DRAWN, answer)

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
