"""How fast is a crafted file refused? Every hostile file the tests build, opened through the real
command line, as a user would open a stranger's file.

For each file: ``studio unpack`` (a bundle) or ``studio import`` (a model file, or anything into
a project whose database is damaged) runs once in a fresh process on a data folder where nothing
is trusted. The refusal counts when the command exits 2 with one line on stderr, writes nothing
(no unpacked folder, no artifact, the database unchanged) and none of the file's code ran (no
marker file). The time is wall clock for the whole command, interpreter start included, which
is what the user waits; the start of a command that refuses at once is printed for scale.

Targets: every file refused that way; the slowest refusal within 5 seconds.

    python tests/benchmarks/bench_refusals.py [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # hostile_files, shared with the tests

from hostile_files import (  # noqa: E402
    HOSTILE,
    can_build_native_code,
    damage_the_middle,
    program_with_native_code,
    read_members,
    torchscript_that_writes,
)
from targets import Report, add_arguments  # noqa: E402

from studio.bundle import pack_project  # noqa: E402
from studio.core.resources import resource  # noqa: E402
from studio.project import Project  # noqa: E402

SLOWEST_S = 5.0
QUICK_BUNDLES = (
    "path traversal",
    "zip bomb of small members",
    "a hundred thousand members",
    "a trigger in the database",
)


@dataclass
class Attempt:
    case: str
    seconds: float
    refused: bool
    why: str


class PickledPayload:
    """Unpickling this creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def run_studio(env: dict[str, str], *args: object) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "studio", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    return time.perf_counter() - start, done


def one_sentence(done: subprocess.CompletedProcess) -> str | None:
    """Why the command's failure is not the expected refusal, or None when it is."""
    lines = done.stderr.strip().splitlines()
    if done.returncode != 2:
        return f"exit {done.returncode}: {(lines or ['(nothing on stderr)'])[-1][:120]}"
    if len(lines) != 1 or not lines[0].startswith("studio: error: "):
        return f"{len(lines)} lines on stderr"
    return None


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_project(root: Path) -> Path:
    with Project.create(root, name="refusals") as project:
        project.import_model(resource("demo", "digits_cnn.onnx"), name="baseline")
        project.import_model(resource("demo", "digits_cnn.onnx"), name="again")
    return root


def try_bundles(env: dict[str, str], work: Path, cases: list[str]) -> list[Attempt]:
    members = read_members(pack_project(make_project(work / "source"), work / "source.studio").path)
    attempts = []
    for case in cases:
        make, _message = HOSTILE[case]
        folder = work / "bundles" / case.replace(" ", "-")
        folder.mkdir(parents=True)
        hostile = make(members, folder / "from-a-stranger.studio")
        seconds, done = run_studio(env, "unpack", hostile, folder / "opened")
        why = one_sentence(done)
        left = sorted(p.name for p in folder.iterdir() if p != hostile)
        if why is None and left:
            why = f"left {left[:3]} behind"
        attempts.append(Attempt(f"bundle: {case}", seconds, why is None, why or done.stderr.strip()))
    return attempts


def try_model(env: dict[str, str], work: Path, case: str, build: Callable[[Path, Path], Path]) -> Attempt:
    folder = work / "models" / case.replace(" ", "-")
    folder.mkdir(parents=True)
    marker = folder / "code-ran"
    model = build(folder, marker)
    project = folder / "project"
    seconds, done = run_studio(env, "import", model, "--project", project, "--input-shape", "1,3")
    why = one_sentence(done)
    if why is None and marker.exists():
        why = "the file's code ran"
    if why is None and project.exists() and any((project / "artifacts").glob("*/*")):
        why = "the model was stored"
    return Attempt(f"model: {case}", seconds, why is None, why or done.stderr.strip())


def try_damaged_database(env: dict[str, str], work: Path) -> Attempt:
    project = make_project(work / "damaged")
    database = project / "studio.sqlite"
    damage_the_middle(database)
    before = digest(database)
    seconds, done = run_studio(env, "import", resource("demo", "digits_cnn.onnx"), "--project", project)
    why = one_sentence(done)
    if why is None and digest(database) != before:
        why = "the damaged database was written to"
    return Attempt("project: damaged database", seconds, why is None, why or done.stderr.strip())


def model_builders() -> dict[str, Callable[[Path, Path], Path]]:
    def torchscript(folder: Path, marker: Path) -> Path:
        return torchscript_that_writes(folder / "downloaded.pt", marker)

    def native_program(folder: Path, marker: Path) -> Path:
        return program_with_native_code(folder / "downloaded.pt2", marker)

    def pickled_module(folder: Path, marker: Path) -> Path:
        path = folder / "downloaded.pth"
        path.write_bytes(pickle.dumps(PickledPayload(marker), protocol=2))
        return path

    def architecture(folder: Path, marker: Path) -> Path:
        source = resource("demo", "digits_cnn.py").read_text()
        (folder / "net.py").write_text(f"open({str(marker)!r}, 'w').close()\n{source}")
        shutil.copy(resource("demo", "digits_cnn.safetensors"), folder / "net.safetensors")
        return folder / "net.py"

    builders = {
        "TorchScript whose __setstate__ writes a file": torchscript,
        "pickled module whose unpickling writes a file": pickled_module,
        "architecture .py that writes a file": architecture,
    }
    if can_build_native_code():
        builders[".pt2 with a native library"] = native_program
    return builders


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args()
    with Report.from_args("refusals", args) as report, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**os.environ, "STUDIO_DATA_DIR": str(work / "data"), "PYTHONWARNINGS": "ignore"}
        starts = [run_studio(env, "--version")[0] for _ in range(3)]

        cases = list(QUICK_BUNDLES if args.quick else HOSTILE)
        attempts = try_bundles(env, work, cases)
        attempts += [try_model(env, work, name, build) for name, build in model_builders().items()]
        attempts.append(try_damaged_database(env, work))

        print(f"\n{'file':<62} {'seconds':>8}  result")
        for attempt in attempts:
            result = "refused" if attempt.refused else f"NOT REFUSED: {attempt.why}"
            print(f"{attempt.case:<62} {attempt.seconds:8.2f}  {result}")
        print()
        slowest = max(attempts, key=lambda a: a.seconds)
        refused = sum(a.refused for a in attempts)
        report.figure("command start (studio --version), median of 3", f"{statistics.median(starts):.2f} s")
        report.check(
            "hostile files refused (exit 2, one line, nothing written, no code ran)",
            f"{refused} of {len(attempts)}",
            "all",
            refused == len(attempts),
        )
        report.check(
            "slowest refusal, whole command",
            f"{slowest.seconds:.2f} s ({slowest.case})",
            f"<= {SLOWEST_S:.0f} s",
            slowest.seconds <= SLOWEST_S,
        )
        return report.summary()


if __name__ == "__main__":
    sys.exit(main())
