"""The scripts the studio runs in Netron's page (netron 9.3: view.js, grapher.js, browser.js).

Every value a script is given goes in as JSON (``json.dumps``): node names come from the model
file and are data here, never code. What Netron offers and these scripts rely on:
``window.__view__`` is the View; ``view.target._table`` maps each model node (``.name``,
``.type``) to its drawn node (``.element``, an SVG group whose header entries are
``.node-item-type`` groups of a ``path`` and a ``text``); a click on a node's header calls
``view.showNodeProperties(node, 'target')``; ``host._openModel(url, identifier)`` on an open
model hands an attachment JSON to ``view.attach``, whose metrics the node sidebar lists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

# Laid out, and the page switched from Netron's welcome spinner to the graph (body class "default").
IS_DRAWN = (
    "!!(window.__view__ && window.__view__.target && window.__view__.target._table"
    " && document.body.classList.contains('default'))"
)

# Select a node by name the way Netron's own Find sidebar does (view.js: target.select + scrollTo).
# It opens no sidebar, so it never reports a click back: no loop with the layer table.
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

# Report a click on a node (not a sidebar's own navigation) as {"node": name}, once per View.
_HOOK_CLICKS = """
(() => {
  const view = window.__view__;
  const prefix = %s;
  if (!view) return false;
  if (view.__studioPrefix === prefix) return true;
  const show = view.showNodeProperties;
  view.showNodeProperties = function (node, source) {
    if (source === 'target' && node && typeof node.name === 'string') {
      console.info(prefix + JSON.stringify({ node: node.name }));
    }
    return show.call(this, node, source);
  };
  view.__studioPrefix = prefix;
  return true;
})()
"""

# Fill each drawn node's header: [name, background, text colour] rows, ``otherwise`` for the rest
# (null: Netron's own colours). Returns how many nodes got a colour of their own.
_FILL_NODES = """
(() => {
  const target = window.__view__ && window.__view__.target;
  if (!target || !target._table) return -1;
  const fills = new Map(%s.map((row) => [row[0], row.slice(1)]));
  const otherwise = %s;
  let painted = 0;
  for (const [value, node] of target._table) {
    if (!value || !value.type || !node || !node.element) continue;
    const own = fills.get(value.name);
    const colour = own || otherwise;
    for (const entry of node.element.querySelectorAll('.node-item-type')) {
      const path = entry.querySelector('path');
      const text = entry.querySelector('text');
      for (const [part, fill] of [[path, colour && colour[0]], [text, colour && colour[1]]]) {
        if (!part) continue;
        if (fill) part.style.setProperty('fill', fill);
        else part.style.removeProperty('fill');
      }
    }
    if (own) painted += 1;
  }
  return painted;
})()
"""

# Open an attachment the way a user dropping it on the page would (browser.js _openModel →
# _openContext → view.attach); ``window.__studioAttached`` holds the outcome once it is read.
_ATTACH = """
(() => {
  const host = window.__view__ && window.__view__._host;
  if (!host || typeof host._openModel !== 'function' || !window.__view__._model) return false;
  window.__studioAttached = null;
  host._openModel(host._url(%s), %s).then((status) => { window.__studioAttached = status; });
  return true;
})()
"""


def select_node(name: str) -> str:
    return _SELECT_NODE % json.dumps(name)


def hook_clicks(prefix: str) -> str:
    return _HOOK_CLICKS % json.dumps(prefix)


def fill_nodes(fills: Mapping[str, tuple[str, str]], otherwise: tuple[str, str] | None = None) -> str:
    rows = [[name, *colours] for name, colours in fills.items()]
    return _FILL_NODES % (json.dumps(rows), json.dumps(list(otherwise) if otherwise else None))


def attach(path: str, identifier: str) -> str:
    return _ATTACH % (json.dumps(path), json.dumps(identifier))
