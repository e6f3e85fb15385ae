"""Tables, figures and the Pareto front as plain text and numbers, without Qt.

The one place where a size, a count, a latency or a percentage becomes text, and where the
versions worth picking are found: the command line, the HTML report and the window all call
these, so the same figure reads the same everywhere. Callers choose only what stands for a
missing figure (the terminal writes "-", the window "–") and, for a percentage, the unit's
spacing.
"""

from __future__ import annotations

from collections.abc import Sequence


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, align: str | None = None) -> str:
    """Render rows under headers; ``align`` has one 'l' or 'r' per column (numbers default right)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, v in enumerate(row):
            widths[i] = max(widths[i], len(v))
    if align is None:
        align = "".join("r" if rows and _is_number(rows[0][i]) else "l" for i in range(len(headers)))
    lines = [_line(headers, widths, align), "  ".join("-" * w for w in widths)]
    lines += [_line(row, widths, align) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def _line(values: Sequence[str], widths: Sequence[int], align: str) -> str:
    return "  ".join(
        v.rjust(w) if a == "r" else v.ljust(w) for v, w, a in zip(values, widths, align, strict=True)
    )


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _cell(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


MISSING = "-"  # what stands for a figure that was not measured
UNKNOWN = "unknown"  # what stands for a count that cannot be known (a MAC count without shapes)


def human_bytes(n: float | None, *, missing: str = MISSING) -> str:
    """Bytes in binary units (KiB, MiB, GiB), one decimal past bytes."""
    if n is None:
        return missing
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def human_count(n: float | None, *, missing: str = MISSING) -> str:
    """A count in k, M and G (decimal) with two decimals; below a thousand, the whole number."""
    if n is None:
        return missing
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return str(n) if isinstance(n, int) else f"{n:.0f}"


def percent(fraction: float | None, *, missing: str = MISSING, unit: str = "%") -> str:
    """A fraction in 0..1 as a percentage with two decimals; ``unit=" %"`` spaces the sign."""
    return missing if fraction is None else f"{100 * fraction:.2f}{unit}"


def millis(ms: float | None, *, missing: str = MISSING) -> str:
    """A latency in milliseconds, to the microsecond."""
    return missing if ms is None else f"{ms:.3f} ms"


NOT_AVAILABLE = "not available on this machine"  # an energy figure the hardware cannot give
NOT_MEASURED = "not measured"  # how a measurement from before energy was measured reads


def joules(value: float | None, *, missing: str = MISSING) -> str:
    """Energy with the prefix that keeps three figures: ``1.23 J``, ``4.56 mJ``, ``789 µJ``."""
    if value is None:
        return missing
    for unit, scale in (("J", 1.0), ("mJ", 1e-3), ("µJ", 1e-6)):
        if abs(value) >= scale or unit == "µJ":
            return f"{value / scale:.3g} {unit}"
    return f"{value:.3g} J"


def energy_text(value: float | None, reason: str | None, *, missing: str = MISSING) -> str:
    """Energy per inference, or why there is none: "not available on this machine: no RAPL
    counters under /sys/class/powercap". Never 0 for a figure the hardware could not give."""
    if value is not None:
        return joules(value)
    if not reason or reason == NOT_MEASURED:
        return missing
    return f"{NOT_AVAILABLE}: {reason}"


def energy_cell(value: float | None, reason: str | None, *, missing: str = MISSING) -> str:
    """The short form for a table cell: the figure, ``n/a`` where the hardware has no counter."""
    if value is not None:
        return joules(value)
    return missing if not reason or reason == NOT_MEASURED else "n/a"


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (lower latency x, higher accuracy y),
    ordered by latency: the curve a person picks a version from."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best = float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def speed_text(speed: dict | None, *, missing: str = MISSING) -> str:
    """A speed-up as people read it: ``2.31× faster (95 % CI 2.25–2.37×)``, ``no measurable
    difference (0.98–1.03×)``, ``1.25× slower (…)``; a plain ratio for two timings taken apart."""
    value = None if speed is None else speed.get("speedup")
    if value is None:
        return missing
    interval, verdict = speed.get("ci95"), speed.get("verdict")
    if interval is None or verdict is None:
        return f"{value:.2f}× faster"
    low, high = interval
    if verdict == "faster":
        return f"{value:.2f}× faster (95 % CI {low:.2f}–{high:.2f}×)"
    if verdict == "slower":
        return f"{1 / value:.2f}× slower (speed-up {value:.2f}×, 95 % CI {low:.2f}–{high:.2f}×)"
    return f"no measurable difference ({low:.2f}–{high:.2f}×)"


def speed_cell(speed: dict | None, *, missing: str = MISSING) -> str:
    """The short form for a table cell: ``2.31×``, ``no gain``, ``1.25× slower``."""
    value = None if speed is None else speed.get("speedup")
    if value is None:
        return missing
    verdict = speed.get("verdict")
    if verdict == "slower":
        return f"{1 / value:.2f}× slower"
    if verdict not in (None, "faster"):
        return "no gain"
    return f"{value:.2f}×"
