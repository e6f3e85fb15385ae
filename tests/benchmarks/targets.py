"""The targets the benchmark scripts measure, and the helpers every script shares.

Each script keeps a :class:`Report`: every figure it judges against a target becomes one
:class:`Target` record, printed as a line of the script's own report and, when the script is
given ``--targets-json PATH`` (or the ``STUDIO_BENCH_TARGETS_JSON`` variable), written there as
JSON for ``check_targets.py`` to gather into one table.

Timings that compare two things are paired: :func:`alternate` runs them in rounds, swapping
which goes first every round, so that whatever else the machine does hits both alike; the
figure is the median of the per-round ratios, with its interquartile range and the number of
rounds (:class:`Paired`).

Only the standard library is imported here, so that ``check_targets.py`` stays light.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

TARGETS_ENV = "STUDIO_BENCH_TARGETS_JSON"


@dataclass
class Target:
    """One figure of one benchmark; ``target`` None means a figure reported without a target."""

    benchmark: str
    name: str
    target: str | None
    measured: str
    met: bool | None
    samples: int | None = None
    rounds: int | None = None

    @property
    def counts(self) -> str:
        parts = []
        if self.samples is not None:
            parts.append(f"{self.samples} held-out samples")
        if self.rounds is not None:
            parts.append(f"{self.rounds} rounds")
        return ", ".join(parts)


def verdict(met: bool | None) -> str:
    return "no target" if met is None else "met" if met else "not met"


# -- a script's report ----------------------------------------------------------------------------


@dataclass
class Report:
    """The records of one script run. Use it as a context manager: the JSON is rewritten with every
    record and on the way out, also when the script fails, with the reason and whether it ran to
    the end."""

    benchmark: str
    path: Path | None = None
    records: list[Target] = field(default_factory=list)

    @classmethod
    def from_args(cls, benchmark: str, args: argparse.Namespace) -> Report:
        path = args.targets_json or os.environ.get(TARGETS_ENV)
        return cls(benchmark, Path(path) if path else None)

    def check(
        self,
        name: str,
        measured: str,
        target: str,
        met: bool,
        *,
        samples: int | None = None,
        rounds: int | None = None,
    ) -> bool:
        """Record a figure judged against its target, print it, and return whether it was met."""
        self._add(Target(self.benchmark, name, target, measured, bool(met), samples, rounds))
        return bool(met)

    def figure(
        self, name: str, measured: str, *, samples: int | None = None, rounds: int | None = None
    ) -> None:
        """Record and print a figure that has no target."""
        self._add(Target(self.benchmark, name, None, measured, None, samples, rounds))

    def _add(self, record: Target) -> None:
        self.records.append(record)
        self.write(completed=False)  # what was measured survives a script that is stopped later
        counts = f" [{record.counts}]" if record.counts else ""
        target = "" if record.target is None else f"   target {record.target}"
        print(f"    {record.name:<44} {record.measured}{counts}{target}   {verdict(record.met)}", flush=True)

    @property
    def judged(self) -> list[Target]:
        return [r for r in self.records if r.met is not None]

    @property
    def all_met(self) -> bool:
        return all(r.met for r in self.judged)

    def summary(self) -> int:
        """Print how many targets were met; the exit status: 0 when all were."""
        judged = self.judged
        met = sum(bool(r.met) for r in judged)
        figures = len(self.records) - len(judged)
        also = f" ({figures} figures without a target)" if figures else ""
        if judged:
            print(f"\n{self.benchmark}: {met} of {len(judged)} targets met{also}", flush=True)
        else:
            print(f"\n{self.benchmark}: no targets{also}", flush=True)
        return 0 if self.all_met else 1

    def __enter__(self) -> Report:
        return self

    def __exit__(self, kind, error, trace) -> None:
        reason = None
        if error is not None and not isinstance(error, SystemExit):
            reason = one_line(error)
        self.write(completed=error is None or isinstance(error, SystemExit), error=reason)

    def write(self, *, completed: bool, error: str | None = None) -> None:
        if self.path is None:
            return
        payload = {
            "benchmark": self.benchmark,
            "completed": completed,
            "error": error,
            "records": [asdict(r) for r in self.records],
        }
        self.path.write_text(json.dumps(payload, indent=1), encoding="utf-8")


def one_line(error: BaseException) -> str:
    """``Type: first line of the message``, where it was raised."""
    text = (str(error).strip().splitlines() or [""])[0][:200]
    frames = traceback.extract_tb(error.__traceback__)
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(error).__name__}: {text}{where}"


def read_records(path: Path) -> tuple[list[Target], bool, str | None]:
    """(records, completed, error) from a file a :class:`Report` wrote."""
    payload = json.loads(path.read_text(encoding="utf-8"))
    records = [Target(**r) for r in payload["records"]]
    return records, bool(payload["completed"]), payload.get("error")


# -- command line -----------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every script takes."""
    parser.add_argument(
        "--targets-json", metavar="PATH", help=f"also write the targets as JSON there (or set {TARGETS_ENV})"
    )
    parser.add_argument("--quick", action="store_true", help="smaller settings: fewer rounds, runs, epochs")


def settle_defaults(args: argparse.Namespace, full: dict, quick: dict) -> argparse.Namespace:
    """Fill the options left unset (None) from ``full``, or from ``quick`` with ``--quick``."""
    chosen = {**full, **quick} if args.quick else full
    for name, value in chosen.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    return args


# -- timing -----------------------------------------------------------------------------------------


class Stopwatch:
    """``with Stopwatch() as watch: ...`` then ``watch.seconds``."""

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.seconds = time.perf_counter() - self._start


def timed_ms(action: Callable[[], object]) -> float:
    """Milliseconds one call of ``action`` takes."""
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """(first quartile, median, third quartile)."""
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


@dataclass
class Paired:
    """Per-round figures of two things measured in the same rounds: ``a[i]`` beside ``b[i]``."""

    a: list[float]
    b: list[float]

    @property
    def rounds(self) -> int:
        return len(self.a)

    @property
    def ratios(self) -> list[float]:
        """a / b, round by round."""
        return [x / y for x, y in zip(self.a, self.b, strict=True)]

    @property
    def differences(self) -> list[float]:
        """a − b, round by round."""
        return [x - y for x, y in zip(self.a, self.b, strict=True)]

    @property
    def ratio(self) -> float:
        """The median of the per-round ratios."""
        return statistics.median(self.ratios)

    def ratio_text(self, digits: int = 2) -> str:
        """``1.93x (IQR 1.85-2.01)``: the median per-round ratio and its interquartile range."""
        return spread_text(self.ratios, digits, "x")

    def difference_text(self, digits: int = 3, unit: str = " ms") -> str:
        return spread_text(self.differences, digits, unit)

    def describe(self, a_name: str, b_name: str, unit: str = "ms", digits: int = 3) -> str:
        """Both sides' medians, the ratio with its interquartile range and full range, the rounds."""
        ratios = self.ratios
        return (
            f"{a_name} {statistics.median(self.a):.{digits}f} {unit}, {b_name} "
            f"{statistics.median(self.b):.{digits}f} {unit} (medians); {a_name}/{b_name} per round: "
            f"median {self.ratio:.3f}, IQR {quartiles(ratios)[0]:.3f}–{quartiles(ratios)[2]:.3f}, "
            f"range {min(ratios):.3f}–{max(ratios):.3f}, {self.rounds} rounds"
        )


def spread_text(values: Sequence[float], digits: int, unit: str) -> str:
    q1, median, q3 = quartiles(values)
    return f"{median:.{digits}f}{unit} (IQR {q1:.{digits}f}–{q3:.{digits}f})"


def alternate(first: Callable[[], float], second: Callable[[], float], rounds: int) -> Paired:
    """Measure ``first`` and ``second`` once per round, the one that goes first swapping every round."""
    a, b = [], []
    for i in range(rounds):
        if i % 2 == 0:
            a.append(first())
            b.append(second())
        else:
            b.append(second())
            a.append(first())
    return Paired(a, b)
