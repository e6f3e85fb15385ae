"""The user's decisions to trust files that run code when loaded, kept per machine by file hash.

A decision belongs to the exact bytes the user looked at: an edited file has a new hash and is
untrusted again. The record lives outside any project, so opening a shared project can never
carry a trust decision in with it.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path

from studio.core.files import atomic_write_text, sha256_file
from studio.core.models import ModelFiles, code_bearing_files
from studio.core.paths import data_dir

log = logging.getLogger(__name__)


_VERSION = 1


class TrustStore:
    """A small JSON file, read afresh on every call so the window and the command line agree."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def default(cls) -> TrustStore:
        return cls(data_dir() / "trust.json")

    def is_trusted(self, sha256: str) -> bool:
        return sha256 in self._read()

    def trust(self, sha256: str, path: Path) -> None:
        entries = self._read()
        entries[sha256] = {
            "path": str(Path(path).absolute()),
            "trusted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        self._write(entries)

    def revoke(self, sha256: str) -> None:
        entries = self._read()
        if entries.pop(sha256, None) is not None:
            self._write(entries)

    def entries(self) -> dict[str, dict]:
        """sha256 → {"path", "trusted_at"}, for a settings page that lists and revokes decisions."""
        return self._read()

    def _read(self) -> dict[str, dict]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning(
                "ignoring the unreadable trust file %s (%s): every file counts as untrusted", self.path, exc
            )
            return {}
        files = data.get("files") if isinstance(data, dict) else None
        if not isinstance(files, dict):
            log.warning("ignoring the malformed trust file %s: every file counts as untrusted", self.path)
            return {}
        return {k: v for k, v in files.items() if isinstance(k, str) and isinstance(v, dict)}

    def _write(self, entries: dict[str, dict]) -> None:
        text = json.dumps({"version": _VERSION, "files": entries}, indent=2, sort_keys=True)
        atomic_write_text(self.path, text + "\n")


def files_needing_trust(files: ModelFiles) -> list[Path]:
    """The files of a model that run code when loaded (weights are read safely and never count).

    The .py of an architecture, a pickled whole module, and a torch.export `.pt2` only when it
    carries pickled objects (plain exports do not).
    """
    return code_bearing_files(files)


def is_model_trusted(files: ModelFiles, store: TrustStore | None = None) -> bool:
    """True when every file that runs code was trusted before (or when none does)."""
    needing = files_needing_trust(files)
    if not needing:
        return True
    store = store or TrustStore.default()
    return all(store.is_trusted(sha256_file(p)) for p in needing)


def grant(files: ModelFiles, store: TrustStore | None = None) -> list[str]:
    """Record the user's --trust for every file of the model that needs it; returns their hashes."""
    store = store or TrustStore.default()
    return [_trust_one(store, p) for p in files_needing_trust(files)]


def resolve_trust(files: ModelFiles, *, trust: bool, store: TrustStore | None = None) -> bool:
    """What ``trusted=`` to load with: the user's --trust now (recorded), or a decision made before."""
    if trust:
        grant(files, store)
        return True
    return is_model_trusted(files, store)


def _trust_one(store: TrustStore, path: Path) -> str:
    digest = sha256_file(path)
    store.trust(digest, path)
    return digest
