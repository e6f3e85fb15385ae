"""The `studio` command line: everything the window does, headless, with `--json` for scripts.

Handlers stay thin: they parse, call the project API, and print. A problem the user can fix
is one sentence on stderr and exit code 2; nothing is written to the project in that case.
"""

from __future__ import annotations

import argparse
import difflib
import errno
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from studio import __version__
from studio.cli_args import emit, json_arg, positive_int, project_arg, resolve_project, terminal_safe
from studio.cli_versions import register_versions
from studio.core.files import DATABASE_NAME
from studio.errors import StudioError

EXIT_USAGE = 2
EXIT_COLLAPSED = 3  # a step's result was recorded, but it follows its parent poorly (studio.core.gate)
EXIT_BROKEN_PIPE = 141  # what a shell reports for a program its pipe's reader stopped (128 + SIGPIPE)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a reader that stops early (``studio jobs | head -1``) ends it quietly.

    Output goes through a buffer, so a closed pipe may only show when that buffer is flushed:
    the flush happens here, where the error can be caught, and not at interpreter exit, where
    Python would print it as an ignored exception.
    """
    try:
        try:
            return _dispatch(list(sys.argv[1:] if argv is None else argv))
        finally:
            if sys.stdout is not None:
                sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE


def _dispatch(argv: list[str]) -> int:
    if not argv:
        return _window(argv)
    parser, commands = _parser_and_commands()
    if _opens_window(argv, commands):
        return _window(argv)
    refusal = _first_word_refusal(argv, commands)
    if refusal is not None:
        print(f"studio: error: {terminal_safe(refusal)}", file=sys.stderr)
        return EXIT_USAGE
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        try:
            resolve_project(args)
            return args.handler(args) or 0
        finally:
            _finish_progress(args)  # a bar left on a terminal line would take the error message in
    except StudioError as exc:
        print(f"studio: error: {terminal_safe(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # the reader went away: not the user's mistake, handled in main
        raise
    except OSError as exc:  # the machine said no (disk full, a file too large, no permission): one sentence
        print(f"studio: error: {terminal_safe(_os_error_sentence(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("studio: interrupted", file=sys.stderr)
        return 130


def _follow(path: Path, ended: Callable[[], bool]) -> None:
    """Print a job's log as it grows until the job ends or the user presses Ctrl-C; the job runs on.

    Ctrl-C only sets a flag, checked between reads. Raised as KeyboardInterrupt wherever it
    landed, inside the database driver or the log reader, it could be caught there: a follower
    once went on for minutes after Ctrl-C.
    """
    import signal
    import threading

    from studio.jobs.logs import follow_log

    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        for text in follow_log(path, lambda: stop.is_set() or ended(), wait=stop.wait):
            if stop.is_set():
                break
            sys.stdout.write(terminal_safe(text))
            sys.stdout.flush()
    finally:
        signal.signal(signal.SIGINT, previous)


def _window(argv: list[str]) -> int:
    missing = _no_display()
    if missing is not None:
        print(f"studio: error: {missing}", file=sys.stderr)
        return EXIT_USAGE
    from studio.ui.app import main as window

    return window(argv)


def _no_display() -> str | None:
    """The sentence for a window asked for where there is no display, or None.

    Qt would abort the process (SIGABRT) after five lines about a missing xcb plugin, which is
    not what is missing. A platform the user set (offscreen, vnc) is theirs to judge.
    """
    import os

    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if not sys.platform.startswith("linux") or (platform and not platform.startswith(("xcb", "wayland"))):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return (
        "there is no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set); "
        "the commands work without one: see `studio --help`, or try `studio demo --headless`"
    )


def _discard_stdout() -> None:
    """Point stdout at the null device, so the flush at exit has somewhere to put what is left."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is no file descriptor (embedded, replaced): nothing to do
        pass


def _os_error_sentence(exc: OSError) -> str:
    """What the operating system refused, in words, with the file it was about."""
    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is used up",
        errno.EFBIG: "the file grew past the largest size allowed here",
        errno.EACCES: "permission denied",
        errno.EROFS: "the file system is read-only",
    }
    reason = reasons.get(exc.errno or 0) or (exc.strerror or str(exc)).rstrip(".").lower()
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS):
        # every write goes to a temporary name first, removed when the write fails
        return f"{reason}{where}; what was being written was removed, and the project is as it was"
    return f"{reason}{where}"


def _opens_window(argv: list[str], commands: Sequence[str]) -> bool:
    """`studio` alone, or `studio PATH` (a project folder or a model file), opens the window."""
    if not argv:
        return True
    first = argv[0]
    return len(argv) == 1 and not first.startswith("-") and first not in commands and Path(first).exists()


def _first_word_refusal(argv: list[str], commands: Sequence[str]) -> str | None:
    """Why the first word is neither a command nor a path the window opens, as one sentence.

    Said before argparse sees it, whose answer (an "invalid choice" followed by every command
    name) reads as if only commands were possible when the user meant a project folder.
    """
    first = argv[0]
    if first.startswith("-") or first in commands:
        return None
    if Path(first).exists():
        return f"'{first}' is not a command; to open it in the window, give it alone: studio {first}"
    close = difflib.get_close_matches(first, commands, n=1)
    hint = f" (did you mean 'studio {close[0]}'?)" if close else "; `studio --help` lists the commands"
    return f"no such command, file or project: '{first}'{hint}"


def build_parser() -> argparse.ArgumentParser:
    return _parser_and_commands()[0]


def _parser_and_commands() -> tuple[argparse.ArgumentParser, list[str]]:
    """The parser and its command names, one list, so telling a command from a path never lags."""
    parser = argparse.ArgumentParser(
        prog="studio", description="Make neural networks smaller and faster, and measure what it cost."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for register in _COMMANDS:
        register(sub)
    from studio.cli_share import COMMANDS as share_commands

    for register in share_commands:
        register(sub)
    return parser, list(sub.choices)


# ---------------------------------------------------------------------------------------------
# Shared argument groups


def _executor_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--executor",
        default="local",
        metavar="local|ray|ray://HOST:PORT",
        help="where jobs run: worker processes here (default), a local Ray, or a Ray cluster",
    )


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--weights", type=Path, help="state_dict (.pt) or .safetensors for an architecture .py file"
    )
    p.add_argument(
        "--trust",
        action="store_true",
        help="allow loading this file even though that runs code from it (recorded with its sha256)",
    )
    p.add_argument(
        "--input-shape",
        action="append",
        type=_shape,
        metavar="N,C,H,W",
        help="input shape for models that do not record one (repeat for several inputs)",
    )
    p.add_argument(
        "--input-spec",
        action="append",
        type=_input_spec,
        metavar="NAME=ROLE",
        help="what an input is fed: batch (samples), state (zeros) or a value such as sr=16000; "
        "inferred from the shapes when not given (comma-separate or repeat for several inputs)",
    )


def _model_file_options(args: argparse.Namespace) -> dict:
    """How to read a model file, as every command that takes one was told."""
    roles = {name: role for given in args.input_spec or () for name, role in given.items()}
    return {
        "weights": args.weights,
        "trust": args.trust,
        "input_shapes": args.input_shape,
        "input_roles": roles or None,
    }


def _input_spec(text: str) -> dict[str, str]:
    from studio.core.input_roles import parse_input_spec

    try:
        return parse_input_spec(text)
    except StudioError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _dataset_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", metavar="DATASET", help="'digits', a .npz, an image folder or a .csv")
    p.add_argument("--image-size", type=_size, metavar="HxW", help="resize images of a folder dataset")
    p.add_argument("--mean", type=_floats, metavar="M[,M,M]", help="normalisation mean for images")
    p.add_argument("--std", type=_floats, metavar="S[,S,S]", help="normalisation std for images")
    p.add_argument("--grayscale", action="store_true", help="read images as one channel")
    p.add_argument("--label-column", metavar="NAME", help="label column of a CSV dataset")


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a shape like 1,3,224,224") from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"'{text}' is not a shape of positive sizes")
    return dims


def _size(text: str) -> tuple[int, int]:
    dims = _shape(text)
    if len(dims) != 2:
        raise argparse.ArgumentTypeError(f"'{text}' is not an image size like 28x28")
    return dims[0], dims[1]


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of numbers") from None


def _dataset_spec(args: argparse.Namespace):
    from studio.core.data import DatasetSpec

    if not args.data:
        return None
    return DatasetSpec(
        source=args.data,
        image_size=args.image_size,
        mean=args.mean,
        std=args.std,
        grayscale=args.grayscale,
        label_column=args.label_column,
    )


# ---------------------------------------------------------------------------------------------
# Commands


def _register_import(sub) -> None:
    p = sub.add_parser("import", help="copy a model into a project and record it as a version")
    p.add_argument("model", type=Path, metavar="MODEL")
    project_arg(p)
    p.add_argument("--name", help="version name (default: the file name)")
    _model_args(p)
    json_arg(p)
    p.set_defaults(handler=_cmd_import)


def _cmd_import(args: argparse.Namespace) -> int:
    from studio.cli_views import version_text
    from studio.project import Project
    from studio.versions import check_model_file

    # Read the whole file before the project folder is even created: a refusal writes nothing.
    checked = check_model_file(args.model, **_model_file_options(args))
    with Project.open_or_create(args.project) as project:
        version = project.add_checked_model(checked, name=args.name)
        emit(args, version.to_dict(), version_text)
    return 0


def _register_info(sub) -> None:
    p = sub.add_parser("info", help="inputs, outputs, parameters, operators and the layer table of a model")
    p.add_argument("model", metavar="MODEL|VERSION", help="a model file, or a version id or name")
    project_arg(p, required=False)
    _model_args(p)
    p.add_argument(
        "--layers",
        type=int,
        default=None,
        metavar="N",
        help="show only N layers: the slowest once `studio bench VERSION --layers` timed them, else the heaviest",
    )
    json_arg(p)
    p.set_defaults(handler=_cmd_info)


def _cmd_info(args: argparse.Namespace) -> int:
    from studio.cli_views import info_text
    from studio.measurements import layer_times_of
    from studio.project import Project
    from studio.versions import inspect_file

    if args.project is None:
        info = inspect_file(Path(args.model), **_model_file_options(args))
    else:
        with Project.open(args.project) as project:
            version = project.find_model(args.model, **_model_file_options(args))
            info = project.inspect(version)
            times = layer_times_of(version, project.store.list_measurements(version.id))
    payload = info.to_dict()
    if args.project is not None:
        payload["layer_times"] = times
    emit(args, payload, lambda d: info_text(d, limit=args.layers))
    return 0


def _register_bench(sub) -> None:
    p = sub.add_parser("bench", help="measure accuracy, fidelity, size and latency; stored in the project")
    p.add_argument("model", metavar="MODEL|VERSION", help="a model file (imported first), or a version")
    project_arg(p)
    _dataset_args(p)
    _model_args(p)
    p.add_argument("--reference", metavar="VERSION", help="compare outputs with this version (fidelity)")
    p.add_argument(
        "--device", default=None, help="cpu or cuda:N (default: cpu, or cuda:0 for a GPU --provider)"
    )
    p.add_argument("--batch", type=int, default=None, help="batch size for latency (default: 1)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: physical cores)")
    p.add_argument("--runtime", choices=["onnxruntime", "torch"], default="onnxruntime")
    p.add_argument(
        "--provider",
        choices=["cpu", "cuda", "tensorrt"],
        default=None,
        help="ONNX Runtime's execution provider (default: the device's); one this ONNX Runtime lacks is "
        "refused, and nodes it left to the CPU are counted and named",
    )
    p.add_argument(
        "--torch-mode",
        choices=["eager", "compile", "cuda-graphs"],
        default="eager",
        help="with --runtime torch: eager, torch.compile, or torch.compile with CUDA graphs (GPU only); "
        "a compile that fails is refused, never measured eagerly under its name",
    )
    p.add_argument("--min-runs", type=positive_int, default=50, help="at least this many timed runs")
    p.add_argument("--min-seconds", type=float, default=2.0, help="and at least this long")
    p.add_argument(
        "--layers",
        action="store_true",
        help="also time every node with ONNX Runtime's profiler, in a run of its own (the window's layer "
        "table and `studio info VERSION --layers N` show it)",
    )
    p.add_argument(
        "--sweep",
        action="store_true",
        help="measure at batches 1, 2, 4, ... until memory runs out or throughput stops growing; "
        "each batch is recorded as a measurement",
    )
    p.add_argument(
        "--max-batch", type=positive_int, default=256, metavar="N", help="the largest batch of --sweep"
    )
    _executor_arg(p)
    json_arg(p)
    p.set_defaults(handler=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    from studio.cli_views import measurement_text
    from studio.core.benchmark import BenchmarkSettings
    from studio.core.data import bind
    from studio.core.runtime import parse_device
    from studio.engine import Engine, parse_executor
    from studio.project import Project
    from studio.versions import check_model_file, looks_like_path

    parse_executor(args.executor)
    _refuse_bench_combinations(args)
    device = _bench_device(args)
    settings = BenchmarkSettings(
        runtime=args.runtime,
        device=parse_device(device),
        batch=1 if args.batch is None else args.batch,
        threads=args.threads,
        min_runs=args.min_runs,
        min_seconds=args.min_seconds,
        layers=args.layers,
        provider=args.provider,
        torch_mode=args.torch_mode,
    )
    settings.validate()
    dataset = _dataset_spec(args)
    data = dataset.load() if dataset is not None else None  # a bad dataset is refused before any write
    checked = None
    if looks_like_path(args.model):
        checked = check_model_file(Path(args.model), **_model_file_options(args))
        _refuse_sweep_of(args, checked.info.inputs)
    elif not (args.project / DATABASE_NAME).is_file():
        raise StudioError(f"{args.project} is not a studio project (no {DATABASE_NAME})")
    if checked is not None and data is not None:
        bind(data, checked.info.inputs)
    with Project.open_or_create(args.project) as project:
        reference = project.find_model(args.reference) if args.reference else None
        if checked is None:
            version = project.find_model(args.model)
            _refuse_sweep_of(args, version.inputs)
            if data is not None:
                bind(data, list(version.inputs))
        else:
            version = project.add_checked_model(checked)
        with Engine.for_project(project, device=settings.device, executor=args.executor) as engine:
            if args.sweep:
                payload = _bench_sweep(args, project, engine, version, dataset, settings)
            else:
                measurement = engine.measure(
                    version,
                    dataset=dataset,
                    settings=settings,
                    reference=reference,
                    on_progress=_progress_bar(args),
                )
        _finish_progress(args)
        if args.sweep:
            from studio.cli_views import sweep_text

            emit(args, payload, sweep_text)
        else:
            emit(args, project.measurement_report(measurement), measurement_text)
    return 0


def _bench_device(args: argparse.Namespace) -> str:
    """The device asked for (cuda:0 for a GPU provider named alone); a provider this ONNX Runtime
    lacks is refused here, before any device is looked for or anything is written."""
    from studio.core.runtime import check_provider, provider_name

    gpu_provider = args.provider in ("cuda", "tensorrt")
    device = args.device or ("cuda:0" if gpu_provider else "cpu")
    kind = device.strip().lower().partition(":")[0]
    if args.runtime == "onnxruntime" and kind in ("cpu", "cuda"):  # any other name: parse_device refuses it
        check_provider(provider_name(args.provider, kind), kind)
    return device


def _refuse_bench_combinations(args: argparse.Namespace) -> None:
    if not args.sweep:
        return
    for given, option in (
        (args.batch is not None, "--batch"),
        (args.reference is not None, "--reference"),
        (args.layers, "--layers"),
    ):
        if given:
            raise StudioError(f"--sweep measures one version at batches it chooses: leave out {option}")


def _refuse_sweep_of(args: argparse.Namespace, inputs) -> None:
    from studio.core.sweep import sweep_refusal

    refusal = sweep_refusal(list(inputs)) if args.sweep else None
    if refusal is not None:
        raise StudioError(refusal)


def _bench_sweep(args, project, engine, version, dataset, settings) -> dict:
    """`bench --sweep`: one measurement per batch (studio.core.sweep), as one payload."""
    import dataclasses

    from studio.core.sweep import run_sweep, sweep_batches, sweep_label

    label, batches = sweep_label(), sweep_batches(args.max_batch)
    bar = _progress_bar(args)

    def measure_at(batch: int):
        step = batches.index(batch)

        def progress(fraction: float, message: str) -> None:
            bar((step + fraction) / len(batches), f"batch {batch}: {message}")

        step_settings = dataclasses.replace(settings, batch=batch, sweep=label)
        return engine.measure(version, dataset=dataset, settings=step_settings, on_progress=progress)

    sweep = run_sweep(measure_at, lambda m: m.throughput_per_s or 0.0, args.max_batch)
    return {
        "version": {"id": version.id, "name": version.name},
        "sweep": label,
        "stopped": sweep.stopped,
        "measurements": [project.measurement_report(m) for m in sweep.steps],
    }


def _register_target(sub) -> None:
    p = sub.add_parser(
        "target",
        help="where the project's models will run: every step is measured there (default: cpu)",
    )
    p.add_argument("device", nargs="?", metavar="DEVICE", help="cpu or cuda:N; without it, print the target")
    project_arg(p)
    json_arg(p)
    p.set_defaults(handler=_cmd_target)


def _cmd_target(args: argparse.Namespace) -> int:
    from studio.project import Project

    with Project.open(args.project) as project:  # refuses a folder that is not a project
        device = project.target_device if args.device is None else project.set_target_device(args.device)
    emit(args, {"target_device": device}, lambda d: f"target device: {d['target_device']}")
    return 0


def _register_devices(sub) -> None:
    p = sub.add_parser("devices", help="CPUs, CUDA GPUs, ONNX Runtime providers and TensorRT on this machine")
    json_arg(p)
    p.set_defaults(handler=_cmd_devices)


def _cmd_devices(args: argparse.Namespace) -> int:
    from studio.cli_views import devices_text
    from studio.core.hardware import describe

    emit(args, describe(), devices_text)
    return 0


def _register_demo(sub) -> None:
    p = sub.add_parser("demo", help="make a demo project from the shipped digits model, measure it, show it")
    p.add_argument("--headless", action="store_true", help="do not open the window; print the results")
    project_arg(p, required=False)
    json_arg(p)
    p.set_defaults(handler=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    if not args.headless:
        return _window(["--demo", *(["--project", str(args.project)] if args.project else [])])
    from studio.cli_views import demo_text
    from studio.demo import run_demo

    result = run_demo(args.project, progress=None if args.json else _stderr_line)
    emit(args, result, demo_text)
    return 0


def _register_optimize(sub) -> None:
    p = sub.add_parser(
        "optimize", help="apply one technique to a version; the result is a new, measured version"
    )
    p.add_argument("model", metavar="MODEL|VERSION", help="a model file (imported first), or a version")
    p.add_argument("technique", help="a technique name (see `studio plugins`)")
    project_arg(p)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a technique parameter")
    _dataset_args(p)
    _model_args(p)
    p.add_argument("--name", help="name of the new version")
    _placement_args(p)
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads for the step")
    p.add_argument(
        "--no-measure",
        action="store_true",
        help="record the version without timing it against its parent (the result gate still runs); "
        "`studio bench VERSION --reference PARENT` measures it later",
    )
    _min_fidelity_arg(p)
    _executor_arg(p)
    json_arg(p)
    p.set_defaults(handler=_cmd_optimize)


def _placement_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        default="auto",
        help="auto, cpu or cuda:N (default: auto: steps that train run on a free GPU when there is one, "
        "the others on the CPU)",
    )
    p.add_argument(
        "--gpus",
        metavar="LIST",
        help="train data-parallel on these GPUs, one rank each: 0,1 or all",
    )
    p.add_argument(
        "--ranks",
        type=positive_int,
        metavar="N",
        help="train data-parallel in N processes (on --device, or dealt over --gpus); "
        "with --device cpu, N CPU processes",
    )


def _placement(args: argparse.Namespace) -> tuple[str, tuple[str, ...]]:
    """The device and data-parallel ranks a step command asked for, refused early when unknown."""
    from studio.core.runtime import parse_device
    from studio.engine.placement import AUTO, rank_devices

    device = AUTO if args.device.strip().lower() == AUTO else parse_device(args.device)
    return device, rank_devices(device, args.gpus, args.ranks)


def _min_fidelity_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--min-fidelity",
        type=_fraction,
        default=None,
        metavar="F",
        help="refuse a result that follows its parent less closely than F (0-1) on held-out samples; "
        "without it such a result is kept, with a warning and exit code 3",
    )


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a fidelity floor is a number from 0 to 1, not {text!r}")
    return value


def _warn_collapsed(reports: list[dict]) -> int:
    """A last line on stderr for every result whose fidelity collapsed, and exit code 3; else 0."""
    collapsed = [r for r in reports if (r.get("gate") or {}).get("collapsed")]
    for r in collapsed:
        gate = r["gate"]
        figure = (
            f"{100 * gate['figure']:.1f} %" if gate["rule"] == "top-1 agreement" else f"{gate['figure']:.4f}"
        )
        print(
            terminal_safe(
                f"warning: v{r['id']} ({r['name']}) follows its parent poorly: {gate['rule']} {figure} on "
                f"{gate['samples']} held-out samples, below {gate['floor']:g}; check it before you use it"
            ),
            file=sys.stderr,
        )
    return EXIT_COLLAPSED if collapsed else 0


def _cmd_optimize(args: argparse.Namespace) -> int:
    from studio.cli_views import outcome_text
    from studio.core.techniques import get_technique, parse_assignments, parse_params
    from studio.engine import AUTO_MEASURE, Engine, outcome_report, parse_executor
    from studio.engine.placement import place_step
    from studio.engine.steps import check_step
    from studio.project import Project
    from studio.versions import check_model_file, looks_like_path

    parse_executor(args.executor)
    device, ranks = _placement(args)
    technique = get_technique(args.technique)
    params = parse_params(technique, parse_assignments(args.set))  # refused before anything else
    place_step(technique, device, ranks, gpus=[])  # ranks for a step that does not train: refused here
    dataset = _dataset_spec(args)
    checked = None
    if looks_like_path(args.model):
        checked = check_model_file(Path(args.model), **_model_file_options(args))
    elif not (args.project / DATABASE_NAME).is_file():
        raise StudioError(f"{args.project} is not a studio project (no {DATABASE_NAME})")
    if checked is not None:  # the step's own checks pass before the file is imported
        check_step(
            technique.name,
            params,
            format=checked.files.format.value,
            inputs=checked.info.inputs,
            dataset=dataset,
        )
    with Project.open_or_create(args.project) as project:
        version = project.find_model(args.model) if checked is None else project.add_checked_model(checked)
        with Engine.for_project(
            project,
            device=ranks[0] if ranks else device,
            executor=args.executor,
            min_fidelity=args.min_fidelity,
        ) as engine:
            outcome = engine.run_step(
                version,
                technique.name,
                params.model_dump(mode="json"),
                dataset=dataset,
                name=args.name,
                device=device,
                ranks=ranks,
                threads=args.threads,
                measure=None if args.no_measure else AUTO_MEASURE,
                on_progress=_progress_bar(args),
            )
        _finish_progress(args)
        report = outcome_report(project, outcome)
        emit(args, report, outcome_text)
    return _warn_collapsed([report])


def _register_run(sub) -> None:
    p = sub.add_parser("run", help="run a recipe: technique steps in order, each feeding the next")
    p.add_argument("recipe", type=Path, metavar="RECIPE.yaml")
    project_arg(p)
    p.add_argument("--model", metavar="VERSION", help="the version to start from (overrides the recipe's)")
    p.add_argument(
        "--data", metavar="DATASET", help="dataset for steps that name none (overrides the recipe's)"
    )
    _placement_args(p)
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads for the steps")
    _min_fidelity_arg(p)
    _executor_arg(p)
    json_arg(p)
    p.set_defaults(handler=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    from studio.cli_views import recipe_text
    from studio.core.recipes import load_recipe
    from studio.engine import Engine, outcome_report, parse_executor
    from studio.project import Project

    parse_executor(args.executor)
    device, ranks = _placement(args)
    recipe = load_recipe(args.recipe)  # every step validated before anything runs
    start = args.model or recipe.model
    if not start:
        raise StudioError(f"{args.recipe} names no model to start from: add 'model:' or pass --model VERSION")
    with Project.open(args.project) as project:
        version = project.find_model(start)
        with Engine.for_project(
            project,
            device=ranks[0] if ranks else device,
            executor=args.executor,
            min_fidelity=args.min_fidelity,
        ) as engine:
            reports = [
                outcome_report(project, outcome)
                for outcome in engine.run_recipe(
                    recipe,
                    version,
                    data=args.data,
                    device=device,
                    ranks=ranks,
                    threads=args.threads,
                    on_progress=_progress_bar(args),
                )
            ]
        _finish_progress(args)
        emit(args, {"recipe": str(args.recipe), "steps": reports}, recipe_text)
    return _warn_collapsed(reports)


def _register_jobs(sub) -> None:
    p = sub.add_parser("jobs", help="the project's jobs; `studio jobs cancel ID` stops one")
    p.add_argument("action", nargs="?", choices=["list", "cancel", "log"], default="list")
    p.add_argument("job", nargs="?", type=int, metavar="ID", help="the job, for cancel and log")
    project_arg(p)
    p.add_argument("--state", action="append", help="only jobs in this state (repeatable)")
    p.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="with log: keep printing new lines until the job has ended (Ctrl-C stops following)",
    )
    json_arg(p)
    p.set_defaults(handler=_cmd_jobs)


def _cmd_jobs(args: argparse.Namespace) -> int:
    from studio.cli_views import jobs_text
    from studio.project import Project

    with Project.open(args.project) as project:
        store = project.store
        if args.action == "list":
            jobs = [j.to_dict() for j in store.list_jobs(args.state)]
            emit(args, {"jobs": jobs}, jobs_text)
            return 0
        if args.job is None:
            raise StudioError(f"name the job to {args.action}: studio jobs {args.action} ID --project DIR")
        if args.follow and (args.action != "log" or args.json):
            raise StudioError("--follow goes with log and without --json: studio jobs log ID --follow")
        job = store.get_job(args.job)
        if args.action == "log":
            from studio.jobs.logs import job_log_path

            # Always the project's own logs folder: a path stored in the database may come from a
            # stranger's bundle and point anywhere.
            path = job_log_path(project.logs_dir, job.id)
            if args.follow:
                _follow(path, lambda: store.get_job(job.id).finished)
                return 0
            text = path.read_text(errors="replace") if path.is_file() else ""
            emit(args, {"id": job.id, "log_path": str(path), "log": text}, lambda d: d["log"] or "(no log)")
            return 0
        record = store.request_cancel(args.job)
        emit(args, record.to_dict(), lambda d: f"asked job {d['id']} ({d['state']}) to stop")
    return 0


def _register_plugins(sub) -> None:
    p = sub.add_parser(
        "plugins", help="the techniques this studio has, their parameters, and any that failed to load"
    )
    json_arg(p)
    p.set_defaults(handler=_cmd_plugins)


def _cmd_plugins(args: argparse.Namespace) -> int:
    from studio.cli_views import plugins_text, technique_parameters
    from studio.core.techniques import discover

    entries = []
    for entry in discover():
        d = entry.to_dict()  # "params" stays the full JSON schema; "parameters" is its flat reading
        d["parameters"] = None if entry.technique is None else technique_parameters(entry.technique.Params)
        entries.append(d)
    emit(args, {"techniques": entries}, plugins_text)
    return 0


def _progress_bar(args: argparse.Namespace):
    """The command's progress reporter on stderr (see studio.cli_progress); ended by _finish_progress."""
    from studio.cli_progress import progress_reporter

    _finish_progress(args)  # a command that reports twice ends the first bar before the second
    args.progress_reporter = progress_reporter(sys.stderr)
    return args.progress_reporter


def _finish_progress(args: argparse.Namespace) -> None:
    reporter = getattr(args, "progress_reporter", None)
    if reporter is not None:
        reporter.finish()
        args.progress_reporter = None


def _stderr_line(message: str) -> None:
    print(terminal_safe(message), file=sys.stderr, flush=True)


_COMMANDS = [
    _register_demo,
    _register_import,
    _register_info,
    _register_bench,
    _register_optimize,
    _register_run,
    register_versions,
    _register_jobs,
    _register_plugins,
    _register_devices,
    _register_target,
]
