"""Every technique on every model of the corpus: the shapes real models have and the demo lacks.

Each model of ``tests/model_corpus.py`` is built, imported into a project of its own (code-bearing
files trusted: they are this corpus's own) and every built-in technique runs on it through the
studio's engine, with the model's dataset, as `studio optimize` runs it. Each pair ends ok,
flagged, refused or BROKEN (``model_corpus.run_pair`` says what each means), and is held to the
outcome ``model_corpus.EXPECTED`` names for it.

Before the techniques, every model's parameters and MACs, as the studio records them at import,
are compared with the counts the corpus made without the studio (``Made.params``, ``Made.macs``).
The MACs are for one sample of the dataset's size, so this import is given that size, as a
user gives ``--input-shape``; the techniques run on an import given only what the corpus gives.

Targets: every count within 1 % of the independent one, or "unknown" (never 0 or negative); no
BROKEN pair; every pair as expected.

    python tests/benchmarks/bench_corpus.py [--quick] [--only NAME ...] [--counts-only]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # model_corpus, shared with the tests

from model_corpus import (  # noqa: E402
    CORPUS,
    TECHNIQUES,
    Made,
    count_problem,
    outcome_problem,
    run_pair,
)
from targets import Report, add_arguments  # noqa: E402

from studio.api import StudioError  # noqa: E402
from studio.engine import Engine  # noqa: E402
from studio.project import Project  # noqa: E402

QUICK = ("quantize.dynamic", "quantize.static", "prune.structured")


def check_counts(report: Report, name: str, made: Made, folder: Path) -> None:
    """Import the model at the dataset's size and judge its counts against the corpus's own."""
    with Project.create(folder / "counting") as project:
        try:
            version = made.import_into(project, at_sample_size=True)
        except StudioError as error:
            report.check(f"counts: {name}", f"import refused: {error}", "within 1 % or unknown", False)
            return
    problems = [
        f"{what} {problem}"
        for what, found, truth in (("params", version.params, made.params), ("MACs", version.macs, made.macs))
        if (problem := count_problem(found, truth))
    ]
    print(
        f"{name:<30} params {_ratio(version.params, made.params):<36} MACs {_ratio(version.macs, made.macs)}",
        flush=True,
    )
    measured = "; ".join(problems) or "agree"
    report.check(f"counts: {name}", measured, "within 1 % or unknown", not problems)


def _ratio(found: int | None, truth: int | None) -> str:
    """``studio / independent = ratio``, with "unknown" for a count either side lacks."""
    shown = "unknown" if found is None else f"{found:,}"
    if truth is None:
        return f"{shown} / not counted"
    ratio = "-" if found is None or truth == 0 else f"{found / truth:.3f}"
    return f"{shown} / {truth:,} = {ratio}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--only", nargs="*", help="corpus entries to run (default: all)")
    parser.add_argument("--counts-only", action="store_true", help="check the counts, run no technique")
    args = parser.parse_args()
    techniques = QUICK if args.quick else TECHNIQUES
    rows: list[tuple[str, str, str, str]] = []
    unexpected: list[str] = []
    with Report.from_args("corpus", args) as report, tempfile.TemporaryDirectory() as tmp:
        for name, build in CORPUS.items():
            if args.only and name not in args.only:
                continue
            folder = Path(tmp) / name.replace(" ", "-").replace("/", "-")
            folder.mkdir()
            made = build(folder)
            check_counts(report, name, made, folder)
            if args.counts_only:
                continue
            with Project.create(folder / "project") as project:
                try:
                    version = made.import_into(project)
                except StudioError as error:
                    rows += [(name, t, "refused", f"import: {error}") for t in techniques]
                    continue
                with Engine.for_project(project) as engine:
                    for technique in techniques:
                        try:
                            verdict, text = run_pair(engine, version, technique, str(made.dataset))
                        except Exception as error:  # a crash of the studio itself: the worst verdict
                            verdict, text = "BROKEN", f"crashed: {type(error).__name__}: {error}"
                        rows.append((name, technique, verdict, text))
                        print(f"{name:<30} {technique:<17} {verdict:<8} {text[:150]}", flush=True)
                        if verdict != "BROKEN" and (
                            problem := outcome_problem(name, technique, verdict, text)
                        ):
                            unexpected.append(f"{name} / {technique}: {problem}")
        if args.counts_only:
            return report.summary()
        print("\nmatrix (rows: models; columns: techniques)")
        header = f"{'':<30}" + "".join(f"{t:<18}" for t in techniques)
        print(header)
        for name in dict.fromkeys(r[0] for r in rows):
            verdicts = {r[1]: r[2] for r in rows if r[0] == name}
            print(f"{name:<30}" + "".join(f"{verdicts.get(t, '-'):<18}" for t in techniques))
        counts = {v: sum(r[2] == v for r in rows) for v in ("ok", "flagged", "refused", "BROKEN")}
        report.figure("pairs", f"{len(rows)}: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
        report.check("pairs that are BROKEN", str(counts["BROKEN"]), "0", counts["BROKEN"] == 0)
        for line in unexpected:
            print(f"  not as expected: {line}")
        report.check("pairs not as expected", str(len(unexpected)), "0", not unexpected)
        return report.summary()


if __name__ == "__main__":
    sys.exit(main())
