"""Argument pieces every `studio` command shares, so each command parses and prints the same way."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path


def project_arg(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    p.add_argument("--project", type=Path, required=required, metavar="DIR", help="the project folder")


def json_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def emit(args: argparse.Namespace, payload: dict, text: Callable[[dict], str]) -> None:
    """One JSON object with `--json`, else the text view of the same payload."""
    print(json.dumps(payload, indent=2, default=str) if args.json else text(payload))


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value
