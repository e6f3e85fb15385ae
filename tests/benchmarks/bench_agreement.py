"""Do the studio's speed-ups survive an independent re-measurement?

Versions of three models are made through the studio's engine, as `studio optimize` makes them:
the demo CNN (ONNX: static, dynamic and float16 quantization), the demo CNN as PyTorch (pruned
by channel, then quantized), and a BERT-style sentence encoder (dynamic and static quantization).
Each step's child is measured by the studio against its parent: one job, alternating rounds,
the median speed-up with its 95 % interval.

Then, in this script, with nothing of the studio's timing code, each (parent, child) pair is
timed again: both as ONNX files (PyTorch versions through `studio export`), each in its own
plain ONNX Runtime session (1 thread, sequential, all graph optimizations), fed the same first
validation sample, in alternating rounds of blocks of runs whose order flips every round; the
speed-up is the median over rounds of parent time / child time.

Target: every studio speed-up within ±10 % of the independent one.

    python tests/benchmarks/bench_agreement.py [--rounds 60] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # encoder, targets

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from encoder import (  # noqa: E402
    EncoderConfig,
    build_encoder,
    export_encoder,
    pretrained_available,
    pretrained_encoder,
    random_token_dataset,
)
from measuring import plain_session  # noqa: E402
from targets import Report, add_arguments  # noqa: E402

from studio.core.data import DatasetSpec, bind  # noqa: E402
from studio.core.resources import resource  # noqa: E402
from studio.engine import Engine  # noqa: E402
from studio.export.onnx_export import export_onnx_version  # noqa: E402
from studio.project import Project  # noqa: E402

TOLERANCE = 0.10
BLOCK_SECONDS = 0.02


def independent_speedup(parent: Path, child: Path, feeds: dict[str, np.ndarray], rounds: int) -> float:
    """Parent time over child time, median over ``rounds`` rounds of alternating blocks."""
    sessions = [plain_session(parent), plain_session(child)]
    named = [{i.name: feeds[i.name] for i in s.get_inputs()} for s in sessions]
    for session, feed in zip(sessions, named, strict=True):
        for _ in range(5):
            session.run(None, feed)
    per_run = max(_once(s, f) for s, f in zip(sessions, named, strict=True))
    block = int(min(50, max(1, BLOCK_SECONDS // max(per_run, 1e-6))))
    ratios = []
    for r in range(rounds):
        medians = [0.0, 0.0]
        for which in (0, 1) if r % 2 == 0 else (1, 0):
            times = [_once(sessions[which], named[which]) for _ in range(block)]
            medians[which] = statistics.median(times)
        ratios.append(medians[0] / medians[1])
    return statistics.median(ratios)


def _once(session: ort.InferenceSession, feeds: dict) -> float:
    t0 = time.perf_counter()
    session.run(None, feeds)
    return time.perf_counter() - t0


def _onnx_of(project: Project, version, folder: Path) -> Path:
    """The version as one ONNX file: as stored when it is ONNX, else as `studio export` writes it."""
    if version.format == "onnx":
        return project.version_path(version)
    return export_onnx_version(project, version, out=folder / f"v{version.id}.onnx").path


def _first_sample(project: Project, version, dataset: str) -> dict[str, np.ndarray]:
    from studio.core.runtime import open_runner

    files = project.model_files(version)
    runner = open_runner(files, trusted=True)
    try:
        validation = DatasetSpec(source=dataset).load().split("validation")
        return {k: np.ascontiguousarray(v[:1]) for k, v in bind(validation, runner.inputs).items()}
    finally:
        runner.close()


def _encoder(folder: Path) -> tuple[Path, Path, str]:
    if pretrained_available():
        model, _ = pretrained_encoder()
        kind = "all-MiniLM-L6-v2 (pretrained)"
    else:
        model, kind = build_encoder(), "MiniLM-shaped encoder (outlier channels)"
    path = export_encoder(model, folder / "encoder.onnx", seq_len=64)
    return path, random_token_dataset(folder / "tokens.npz", 160, 64, EncoderConfig().vocab), kind


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--rounds", type=int, default=60, help="rounds of the independent timing")
    args = parser.parse_args()
    rounds = 20 if args.quick else args.rounds
    rows = []
    with Report.from_args("agreement", args) as report, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        encoder_path, tokens, encoder_kind = _encoder(folder)
        digits = "digits"
        plans = [
            ("demo CNN (ONNX)", resource("demo", "digits_cnn.onnx"), None, digits, [
                ("quantize.static", {"calibration_samples": 64}),
                ("quantize.dynamic", {}),
                ("quantize.fp16", {}),
            ]),
            ("demo CNN (PyTorch)", resource("demo", "digits_cnn.py"), resource("demo", "digits_cnn.safetensors"), digits, [
                ("prune.structured", {"ratio": 0.5, "finetune_epochs": 1}),
                ("quantize.static", {"calibration_samples": 64}),
            ]),
            (encoder_kind, encoder_path, None, str(tokens), [
                ("quantize.dynamic", {}),
                ("quantize.fp16", {}),
            ]),
        ]  # fmt: skip
        with Project.create(folder / "project") as project, Engine.for_project(project) as engine:
            for model_name, path, weights, dataset, steps in plans:
                parent = project.import_model(
                    Path(path), weights=None if weights is None else Path(weights), trust=True
                )
                feeds = _first_sample(project, parent, dataset)
                for technique, params in steps:
                    outcome = engine.run_step(parent, technique, params, dataset=dataset)
                    child = outcome.version
                    paired = (outcome.measurement.timing or {}).get("paired") or {}
                    studio = paired.get("speedup")
                    independent = independent_speedup(
                        _onnx_of(project, parent, folder), _onnx_of(project, child, folder), feeds, rounds
                    )
                    agreement = None if studio is None else studio / independent
                    rows.append(
                        (
                            model_name,
                            f"v{parent.id} → v{child.id} {technique}",
                            studio,
                            paired.get("ci95"),
                            independent,
                            agreement,
                        )
                    )
                    print(
                        f"{rows[-1][0]:<36} {rows[-1][1]:<34} studio {studio:.2f}×  independent {independent:.2f}×  ratio {agreement:.3f}",
                        flush=True,
                    )
                    parent = (
                        child if technique == "prune.structured" else parent
                    )  # quantize the pruned one next
        print()
        print(f"{'model':<36} {'step':<34} {'studio (95 % CI)':<24} {'independent':>11} {'ratio':>7}")
        for model_name, step, studio, ci, independent, agreement in rows:
            interval = "" if not ci else f" ({ci[0]:.2f}–{ci[1]:.2f})"
            print(
                f"{model_name:<36} {step:<34} {f'{studio:.2f}×{interval}':<24} {independent:>10.2f}× {agreement:>7.3f}"
            )
        worst = max(abs(r[5] - 1) for r in rows)
        within = sum(abs(r[5] - 1) <= TOLERANCE for r in rows)
        report.figure("pairs", f"{len(rows)}, independent timing over {rounds} rounds each")
        report.check(
            "speed-ups within ±10 % of the independent one",
            f"{within} of {len(rows)} (worst {100 * worst:.1f} %)",
            f"{len(rows)} of {len(rows)}",
            within == len(rows),
        )
        return report.summary()


if __name__ == "__main__":
    sys.exit(main())
