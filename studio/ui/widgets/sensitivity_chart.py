"""Per-layer sensitivity from ``quantize.auto``: how much quantizing each layer alone costs.

The table comes from the version's ``details["sensitivity"]`` (rows of node, op, sensitivity,
rank, kept_float, outliers_in_float). Horizontal bars put the node names on the axis where they
can be read; layers the search kept in float are drawn in a warning colour, and layers that
compute only their outlier channels in float in a milder one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg

from studio.ui.widgets.charts import brush, style_plot, themed

QUANTIZED = "#1e88e5"
KEPT_FLOAT = "#e53935"
OUTLIERS_FLOAT = "#fb8c00"
MAX_NAMED = 40
NAME_CHARS = 34


def sensitivity_rows(details: dict) -> list[dict]:
    """The rows with a measured sensitivity, most sensitive first."""
    rows = [r for r in details.get("sensitivity") or [] if r.get("sensitivity") is not None]
    return sorted(rows, key=lambda r: -float(r["sensitivity"]))


class SensitivityChart(pg.GraphicsLayoutWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        themed(self)
        self.setObjectName("sensitivityChart")
        self.plot = self.addPlot()
        style_plot(self.plot, "", "Sensitivity: mean (1 − cosine) with only that layer quantized")
        self.plot.invertY(True)
        self.bars = pg.BarGraphItem(x0=[], y=[], height=[], width=[])
        self.plot.addItem(self.bars)
        self.message = pg.TextItem("", anchor=(0.5, 0.5))
        self.plot.addItem(self.message)
        self.rows: list[dict] = []

    def set_details(self, title: str, details: dict | None) -> None:
        self.rows = sensitivity_rows(details or {})
        if not self.rows:
            self._show_message(
                f"{title}: no per-layer sensitivity. Run “Accuracy-aware INT8 quantization” (quantize.auto) "
                "with a tolerance that plain quantization misses to get one."
                if title
                else "Select a version made by quantize.auto to see its per-layer sensitivity."
            )
            return
        self.message.setText("")
        ys = np.arange(len(self.rows), dtype=float)
        values = np.array([float(r["sensitivity"]) for r in self.rows])
        brushes = [brush(_colour(r)) for r in self.rows]
        self.bars.setOpts(x0=np.zeros_like(values), y=ys, height=0.7, width=values, brushes=brushes)
        split = (
            ", orange ones compute their outlier channels in float"
            if any(r.get("outliers_in_float") for r in self.rows)
            else ""
        )
        self.plot.setTitle(f"{title}: red layers were kept in float{split}")
        self._name_axis(self.rows)
        self.plot.enableAutoRange()

    def _name_axis(self, rows: Sequence[dict]) -> None:
        if len(rows) > MAX_NAMED:
            self.plot.getAxis("left").setTicks(None)
            return
        names = [(i, _short(_name(r))) for i, r in enumerate(rows)]
        self.plot.getAxis("left").setTicks([names])

    def _show_message(self, text: str) -> None:
        self.bars.setOpts(x0=[], y=[], height=[], width=[])
        self.plot.getAxis("left").setTicks(None)
        self.plot.setTitle("")
        self.message.setText(text)
        self.message.setPos(0.5, 0.5)
        self.plot.setRange(xRange=(0, 1), yRange=(0, 1))


def _name(row: dict) -> str:
    node, op = str(row["node"]), str(row.get("op") or "")
    return node if not op or node.endswith(op) else f"{node} ({op})"


def _short(text: str) -> str:
    return text if len(text) <= NAME_CHARS else "…" + text[-(NAME_CHARS - 1) :]


def _colour(row: dict) -> str:
    if row.get("kept_float"):
        return KEPT_FLOAT
    return OUTLIERS_FLOAT if row.get("outliers_in_float") else QUANTIZED
