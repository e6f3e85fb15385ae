"""The web page every graph is drawn in: Netron, loopback only, prepared before it runs.

Netron's page would reach out to the internet (ipinfo.io for a cookie question, Google Analytics
for telemetry) and stops working with "Please update" once its build is 180 days old. Here:
- every request whose host is not loopback is blocked (``LoopbackOnly``);
- the cookie question is answered before the page runs (a ``consent`` cookie, as Netron's
  ``browser.js`` checks it), by a script injected at document creation;
- the page's build date (``<meta name="date">``, which the age check reads) is removed as the
  page is parsed, so the pinned Netron keeps working after 180 days;
- the angle brackets around tensor shapes (U+3008/U+3009, found only in CJK fonts) come from a
  two-glyph font shipped in resources/fonts when no font in Netron's list has them;
- in a narrow pane Netron's node sidebar (inline width ``min(60%, 42em)``) would truncate every
  value: there it takes the whole width, with a narrower name column.

The page itself, and how it talks back, is ``netron_channel.NetronPage``.
"""

from __future__ import annotations

import json

from PySide6.QtCore import QCoreApplication

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
NARROW_PX = 760  # below this page width the node sidebar covers the whole page

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
    style.textContent = %(css)s;
    document.head.appendChild(style);
  });
})();
"""
# Netron's own font list (index.html, grapher.css), which the injected rule extends.
_NETRON_FONTS = (
    '-apple-system, BlinkMacSystemFont, "Segoe WPC", "Segoe UI", "Ubuntu", "Droid Sans", '
    'sans-serif, "PingFang SC"'
)
# view.js Sidebar._update sets width (open) and right (closed: minus that width) inline; an
# !important rule beats both. Open is the only state with "right: 0" inline: when closed, the
# full-width sidebar is moved wholly off the page, or its transparent left part would take clicks;
# open, it hides the zoom buttons and the menu button, which would float over its values.
_NARROW_SIDEBAR = f"""
@media (max-width: {NARROW_PX}px) {{
  #sidebar {{ width: 100% !important; border-left: 0; }}
  #sidebar:not([style*="right: 0"]) {{ right: -100% !important; }}
  #sidebar[style*="right: 0"] ~ .toolbar, #sidebar[style*="right: 0"] ~ .menu-button {{ display: none !important; }}
  .sidebar-object {{ padding: 0 10px 12px 10px; }}
  .sidebar-title {{ padding: 16px 10px; }}
  .sidebar-item-name {{ min-width: 64px; max-width: 64px; padding-right: 4px; }}
  .sidebar-item-value-list {{ margin-left: 70px; }}
}}
"""


def _page_css() -> str:
    fonts = (
        "body, button, .sidebar, .node-item text, .node-argument > text, .edge-label "
        f'{{ font-family: {_NETRON_FONTS}, "Studio Brackets" !important; }}'
    )
    return fonts + _NARROW_SIDEBAR


def _prepare_page_script() -> str:
    import base64

    from studio.core.resources import resource

    font = base64.b64encode(resource("fonts", "studio-brackets.ttf").read_bytes()).decode("ascii")
    return _PREPARE_PAGE % {"font": font, "css": json.dumps(_page_css())}


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
