"""Argument pieces every `studio` command shares, so each command parses and prints the same way."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from pathlib import Path

from studio.errors import StudioError


def project_arg(
    p: argparse.ArgumentParser,
    *,
    required: bool = True,
    positional: bool = False,
    help: str = "the project folder",
) -> None:
    """``--project DIR``, the one way every command names its project.

    ``positional`` also accepts the folder as a bare word where older releases took it that way
    (``studio pack DIR OUT.studio``), so scripts written for them keep working; call it where that
    word stood among the command's positional arguments. :func:`resolve_project` then merges the
    two spellings.
    """
    p.add_argument("--project", type=Path, required=required and not positional, metavar="DIR", help=help)
    if positional:
        p.add_argument(
            _POSITIONAL, nargs="?", type=Path, metavar="PROJECT", help=f"{help}; the same as --project DIR"
        )
        # the command's name when a project must be given, for the sentence that asks for one
        p.set_defaults(**{_NEEDED_BY: p.prog if required else None})


_POSITIONAL = "project_positional"
_NEEDED_BY = "project_needed_by"


def resolve_project(args: argparse.Namespace) -> None:
    """Fold a project given by position into ``args.project``; refuse two different ones, or none.

    Handlers then read ``args.project`` whichever way the user spelled it.
    """
    if not hasattr(args, _POSITIONAL):
        return
    by_position = getattr(args, _POSITIONAL)
    needed_by = getattr(args, _NEEDED_BY, None)
    delattr(args, _POSITIONAL)
    delattr(args, _NEEDED_BY)
    if by_position is not None and args.project is not None and by_position != args.project:
        raise StudioError(
            f"two projects given ({by_position} and --project {args.project}): give it once, as --project DIR"
        )
    args.project = args.project or by_position
    if args.project is None and needed_by:
        raise StudioError(f"{needed_by} needs a project: add --project DIR")


def json_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def emit(args: argparse.Namespace, payload: dict, text: Callable[[dict], str]) -> None:
    """One JSON object with `--json`, else the text view of the same payload."""
    print(json.dumps(payload, indent=2, default=str) if args.json else terminal_safe(text(payload)))


# Control characters other than newline and tab: an escape sequence in a name from a shared
# project could otherwise move the cursor, rewrite what the terminal shows, or set its title.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``) instead of acted on."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value
