"""The "what next" hint under the lineage: one sentence, from the figures every view shows."""

from __future__ import annotations

from studio.ui.models.figures import VersionFigures
from studio.ui.models.next_step import next_step

PAIRED_FASTER = {"speedup": 2.31, "ci95": (2.25, 2.37), "verdict": "faster"}
PAIRED_SAME = {"speedup": 1.01, "ci95": (0.97, 1.04), "verdict": "no measurable difference"}
COLLAPSED = {"gate": {"rule": "top-1 agreement", "figure": 0.42, "samples": 72, "floor": 0.9,
                      "source": "held-out samples", "collapsed": True}}  # fmt: skip


def fig(id: int, parent: int | None = None, *, latency=1.0, technique=None, speed=None, details=None):
    return VersionFigures(
        id=id, name=f"m{id}", parent_id=parent, technique=technique, format="onnx", size_bytes=1000,
        params=100, macs=1000, latency_ms=latency, measurements=int(latency is not None),
        speed=speed, details=details or {},
    )  # fmt: skip


def test_an_unmeasured_version_asks_to_be_measured():
    hint = next_step(fig(3, 1, latency=None), [])
    assert hint.startswith("Measure v3 (Ctrl+M)")


def test_a_collapsed_result_says_so_before_anything_about_speed():
    hint = next_step(fig(2, 1, technique="quantize.static", speed=PAIRED_FASTER, details=COLLAPSED), [])
    assert hint.startswith("v2 follows v1 poorly (top-1 agreement 42.0 % on 72 held-out samples")
    assert "distill v2 from v1" in hint


def test_a_smaller_model_that_is_not_faster_gets_the_reason_of_its_technique():
    hint = next_step(fig(2, 1, technique="prune.magnitude", speed=PAIRED_SAME), [])
    assert hint.startswith("v2 is not faster than v1: no measurable difference (0.97–1.04×). Zeros in dense")
    assert "prune.structured removes whole channels" in hint
    other = next_step(fig(2, 1, technique="some.plugin", speed=PAIRED_SAME), [])
    assert other.endswith(". A smaller model is not always a faster one.")


def test_a_faster_faithful_result_points_at_export():
    assert next_step(fig(2, 1, speed=PAIRED_FASTER), []) == (
        "v2 is 2.31× faster than v1 and follows it: export it (Ctrl+E), or stack another technique on it."
    )
    assert next_step(fig(2, 1, speed=PAIRED_FASTER), [fig(4, 2)]).endswith("or compare its children.")


def test_the_imported_model_suggests_a_first_step_and_nothing_is_said_without_a_version():
    assert next_step(fig(1), []).startswith("Next: quantize.dynamic on v1 (no data needed")
    assert next_step(None, []) is None
    assert next_step(fig(2, 1, speed=None), []) is None  # measured, but never against its parent
