"""Draw ``studio-brackets.ttf``: the two angle brackets Netron puts around tensor shapes.

Netron writes shapes as ``float32〈1×28×28〉`` with U+3008 and U+3009, which only CJK fonts
have; on a machine without one the graph shows empty boxes. This font has just those two
glyphs, drawn here (so it carries no third-party licence), and the graph page falls back to it
when no font earlier in Netron's list has them.

    python resources/fonts/make_bracket_font.py   (needs fonttools, at build time only)
"""

from __future__ import annotations

from pathlib import Path

from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen

FAMILY = "Studio Brackets"
UNITS = 1000
ADVANCE = 600
ASCENT, DESCENT = 880, -120


def _polygon(points: list[tuple[int, int]]):
    pen = TTGlyphPen(None)
    pen.moveTo(points[0])
    for point in points[1:]:
        pen.lineTo(point)
    pen.closePath()
    return pen.glyph()


def _left_bracket() -> list[tuple[int, int]]:
    """A chevron pointing left, 70 units thick, from cap height to just below the baseline."""
    top, bottom, middle = 780, -80, 350
    outer_x, inner_x, thickness = 470, 150, 70
    return [
        (outer_x, top),
        (outer_x + thickness, top - 30),
        (inner_x + thickness + 10, middle),
        (outer_x + thickness, bottom + 30),
        (outer_x, bottom),
        (inner_x, middle),
    ]


def build(out: Path) -> Path:
    left = _left_bracket()
    right = [(ADVANCE - x, y) for x, y in left]
    builder = FontBuilder(UNITS, isTTF=True)
    builder.setupGlyphOrder([".notdef", "uni3008", "uni3009"])
    builder.setupCharacterMap({0x3008: "uni3008", 0x3009: "uni3009"})
    builder.setupGlyf(
        {
            ".notdef": TTGlyphPen(None).glyph(),
            "uni3008": _polygon(left),
            "uni3009": _polygon(list(reversed(right))),  # mirrored: keep the contour's direction
        }
    )
    builder.setupHorizontalMetrics({name: (ADVANCE, 0) for name in (".notdef", "uni3008", "uni3009")})
    builder.setupHorizontalHeader(ascent=ASCENT, descent=DESCENT)
    builder.setupNameTable({"familyName": FAMILY, "styleName": "Regular"})
    builder.setupOS2(sTypoAscender=ASCENT, sTypoDescender=DESCENT, usWinAscent=ASCENT, usWinDescent=-DESCENT)
    builder.setupPost()
    builder.save(str(out))
    return out


if __name__ == "__main__":
    print(build(Path(__file__).with_name("studio-brackets.ttf")))
