"""Render the application icon at the sizes desktops look for, all from resources/icons/studio.svg.

One SVG is the single source, so the icon in the launcher, the window and the file manager can
never drift apart. Qt's own SVG renderer is used because it ships with the studio anyway.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "resources" / "icons" / "studio.svg"
ICON_NAME = "model-optimization-studio"
SIZES = (16, 32, 48, 64, 128, 256)


def icon_path(out_dir: Path, size: int) -> Path:
    """Where the freedesktop icon theme layout expects a PNG of this size."""
    return out_dir / "hicolor" / f"{size}x{size}" / "apps" / f"{ICON_NAME}.png"


def render_icons(out_dir: Path, source: Path = SOURCE, sizes: Iterable[int] = SIZES) -> list[Path]:
    """Write one PNG per size (plus the scalable SVG) in a hicolor tree under ``out_dir``."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([])
    renderer = QSvgRenderer(str(source))
    if not renderer.isValid():
        raise ValueError(f"{source} is not a valid SVG image")
    written = []
    for size in sizes:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        target = icon_path(out_dir, size)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(target), "PNG"):
            raise OSError(f"could not write {target}")
        written.append(target)
    scalable = out_dir / "hicolor" / "scalable" / "apps" / f"{ICON_NAME}.svg"
    scalable.parent.mkdir(parents=True, exist_ok=True)
    scalable.write_bytes(source.read_bytes())
    return [*written, scalable]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="folder that receives the hicolor/ icon tree")
    parser.add_argument("--source", type=Path, default=SOURCE, help="the SVG to render")
    args = parser.parse_args(argv)
    for path in render_icons(args.out_dir, args.source):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
