"""Check a one-folder build: every shared library it ships finds the libraries it needs, and no
link in it points at a file the build left out.

A library the build dropped (the spec trims Qt's QML modules) but a kept one still needs would
only show up on a user's machine, as a plugin that silently fails to load or a crash at start.
``ldd`` resolves each ELF file the way the dynamic loader will; a missing Qt, ICU or PySide
library is a broken build (exit 1). Missing system libraries are listed as what the target
machine must provide (X11 helpers, for example, that a desktop has and a build container lacks).

    python packaging/check_build.py dist/studio
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

SHIPPED = re.compile(r"^lib(Qt6|icu|pyside6|shiboken6|python3)")
NOT_FOUND = re.compile(r"^\s*(\S+) => not found", re.MULTILINE)


def elf_files(root: Path) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as handle:
                if handle.read(4) == b"\x7fELF":
                    found.append(path)
    return sorted(found)


def missing_libraries(root: Path) -> dict[str, list[Path]]:
    """Library name → the shipped files that need it and would not find it."""
    folders = sorted({str(p.parent) for p in root.rglob("*.so*")})
    env = {"LD_LIBRARY_PATH": ":".join(folders), "LC_ALL": "C"}
    missing: dict[str, list[Path]] = defaultdict(list)
    for path in elf_files(root):
        result = subprocess.run(["ldd", str(path)], capture_output=True, text=True, env=env)
        for name in NOT_FOUND.findall(result.stdout):
            missing[name].append(path)
    return dict(missing)


def dangling_links(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_symlink() and not p.exists())


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: check_build.py DIST_FOLDER", file=sys.stderr)
        return 2
    root = Path(argv[0])
    missing = missing_libraries(root)
    broken = {name: users for name, users in missing.items() if SHIPPED.match(name)}
    for name, users in sorted(broken.items()):
        print(
            f"BROKEN: {name} is needed by {users[0].relative_to(root)} but is not in the build",
            file=sys.stderr,
        )
    dangling = dangling_links(root)
    for link in dangling:
        print(f"BROKEN: {link.relative_to(root)} links to a file that is not in the build", file=sys.stderr)
    system = sorted(name for name in missing if name not in broken)
    if system:
        print("The target machine must provide: " + ", ".join(system))
    return 1 if broken or dangling else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
