"""Argument pieces every `studio` command shares, so each command parses and prints the same way."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from pathlib import Path


def project_arg(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    p.add_argument("--project", type=Path, required=required, metavar="DIR", help="the project folder")


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
