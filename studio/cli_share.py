"""Commands that take a project's work elsewhere: `export`, `pack`, `unpack` and `report`.

Same contract as the rest of the command line: handlers parse, call the API and print; a
problem the user can fix is a StudioError (one sentence, exit code 2) raised before anything is
written. ``COMMANDS`` holds one registration function per command for the main parser.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from studio.cli_args import emit, json_arg, positive_int, project_arg
from studio.core.files import DATABASE_NAME
from studio.tables import human_bytes

# -- export ----------------------------------------------------------------------------------------


def register_export(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write a version as a standalone ONNX file, or as a TensorRT engine (or what builds one)",
    )
    p.add_argument("version", metavar="VERSION", help="a version id (v3) or name")
    p.add_argument("--format", choices=["onnx", "tensorrt"], required=True, help="what to write")
    project_arg(p)
    p.add_argument(
        "--out",
        type=Path,
        metavar="PATH",
        help="file to write (default: <project>/exports/<version-name>.onnx|.engine)",
    )
    p.add_argument("--opset", type=positive_int, metavar="N", help="ONNX operator set to write")
    p.add_argument("--dynamic-batch", action="store_true", help="let the batch dimension vary")
    p.add_argument("--min-batch", type=positive_int, default=1, help="TensorRT: smallest batch (default 1)")
    p.add_argument("--opt-batch", type=positive_int, default=1, help="TensorRT: batch tuned for (default 1)")
    p.add_argument("--max-batch", type=positive_int, default=16, help="TensorRT: largest batch (default 16)")
    json_arg(p)
    p.set_defaults(handler=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    from studio.api import StudioError
    from studio.export.summary import onnx_export_text, tensorrt_export_text
    from studio.project import Project

    if not (args.project / DATABASE_NAME).is_file():
        raise StudioError(f"{args.project} is not a studio project (no {DATABASE_NAME})")
    with Project.open(args.project) as project:
        version = project.store.find_version(args.version)
        if args.format == "onnx":
            from studio.export import export_onnx_version

            result = export_onnx_version(
                project, version, out=args.out, opset=args.opset, dynamic_batch=args.dynamic_batch
            )
            emit(args, result.to_dict(), onnx_export_text)
        else:
            from studio.export import export_tensorrt

            result = export_tensorrt(
                project,
                version,
                out=args.out,
                opset=args.opset,
                dynamic_batch=args.dynamic_batch,
                min_batch=args.min_batch,
                opt_batch=args.opt_batch,
                max_batch=args.max_batch,
            )
            emit(args, result.to_dict(), tensorrt_export_text)
    return 0


# -- pack / unpack ---------------------------------------------------------------------------------


def register_pack(sub) -> None:
    p = sub.add_parser("pack", help="save a project as one .studio file to share")
    project_arg(p, positional=True)
    p.add_argument("out", type=Path, metavar="OUT.studio")
    json_arg(p)
    p.set_defaults(handler=_cmd_pack)


def _cmd_pack(args: argparse.Namespace) -> int:
    from studio.bundle import pack_project

    result = pack_project(args.project, args.out)
    emit(
        args,
        result.to_dict(),
        lambda d: (
            f"packed {d['versions']} version(s) and {d['artifacts']} model folder(s) into "
            f"{d['path']} ({human_bytes(d['size_bytes'])}, sha256 {d['sha256'][:16]}…)"
        ),
    )
    return 0


def register_unpack(sub) -> None:
    p = sub.add_parser("unpack", help="open a .studio file as a new project folder (checked before writing)")
    p.add_argument("bundle", type=Path, metavar="FILE.studio")
    project_arg(
        p,
        required=False,
        positional=True,
        help="the project folder to make: new or empty (default: a new folder named after the file, beside it)",
    )
    json_arg(p)
    p.set_defaults(handler=_cmd_unpack)


def _cmd_unpack(args: argparse.Namespace) -> int:
    from studio.bundle import default_unpack_folder, unpack_bundle
    from studio.core.paths import data_dir

    target = args.project or default_unpack_folder(args.bundle, data_dir() / "projects")
    result = unpack_bundle(args.bundle, target)
    emit(args, result.to_dict(), unpack_text)
    return 0


def unpack_text(d: dict) -> str:
    upgraded = " (its database was upgraded to this studio's schema)" if d["upgraded"] else ""
    return (
        f"unpacked '{d['project']}' into {d['path']}: {d['versions']} version(s){upgraded}.\n"
        "Architecture files and pickled modules from a bundle stay untrusted on this machine until you trust them here."
    )


# -- report ----------------------------------------------------------------------------------------


def register_report(sub) -> None:
    p = sub.add_parser("report", help="one self-contained HTML page of versions, measurements and charts")
    project_arg(p, positional=True)
    p.add_argument("--out", type=Path, required=True, metavar="report.html")
    p.add_argument("--csv", type=Path, metavar="measurements.csv", help="also write every measurement as CSV")
    json_arg(p)
    p.set_defaults(handler=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    from studio.project import Project
    from studio.report import write_report

    with Project.open(args.project) as project:
        result = write_report(project, args.out, csv_out=args.csv)
    emit(
        args,
        result.to_dict(),
        lambda d: (
            f"wrote {d['html']} ({d['versions']} versions, {d['measurements']} measurements)"
            + (f" and {d['csv']}" if d["csv"] else "")
        ),
    )
    return 0


COMMANDS = [register_export, register_pack, register_unpack, register_report]
