"""The window's preferences in one place, stored with QSettings in the studio's data folder.

The file lives beside the trust decisions (``STUDIO_DATA_DIR`` moves both), so tests and
portable installs never read or write the user's real preferences.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from studio.core.files import DATABASE_NAME
from studio.core.paths import data_dir

RECENT_LIMIT = 10
THEMES = ("system", "light", "dark")


class StudioSettings:
    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else data_dir() / "settings.ini"
        self._q = QSettings(str(self.path), QSettings.Format.IniFormat)

    def sync(self) -> None:
        self._q.sync()

    def _get(self, key: str, default, kind=str):
        value = self._q.value(key, default)
        if value is None:
            return default
        if kind is bool:
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
        try:
            return kind(value)
        except (TypeError, ValueError):
            return default

    # -- jobs ------------------------------------------------------------------------------------

    @property
    def cpu_workers(self) -> int:
        """0 means automatic: one worker per physical core but one, kept for the window."""
        return self._get("jobs/cpu_workers", 0, int)

    @cpu_workers.setter
    def cpu_workers(self, value: int) -> None:
        self._q.setValue("jobs/cpu_workers", int(value))

    @property
    def executor(self) -> str:
        """ "local", or a Ray cluster address ("ray://host:port")."""
        return self._get("jobs/executor", "local")

    @executor.setter
    def executor(self, value: str) -> None:
        self._q.setValue("jobs/executor", value.strip() or "local")

    @property
    def default_device(self) -> str:
        """The device picker's first choice: "auto" (a training step on a GPU when there is one),
        "cpu", "cuda:N" or "all-gpus"; anything else reads as "auto"."""
        value = self._get("jobs/default_device", "auto")
        return value if _is_device_choice(value) else "auto"

    @default_device.setter
    def default_device(self, value: str) -> None:
        self._q.setValue("jobs/default_device", value if _is_device_choice(value) else "auto")

    @property
    def threads(self) -> int:
        """Threads per job; 0 lets the technique decide."""
        return self._get("jobs/threads", 0, int)

    @threads.setter
    def threads(self, value: int) -> None:
        self._q.setValue("jobs/threads", int(value))

    # -- appearance and places ---------------------------------------------------------------------

    @property
    def theme(self) -> str:
        value = self._get("ui/theme", "system")
        return value if value in THEMES else "system"

    @theme.setter
    def theme(self, value: str) -> None:
        self._q.setValue("ui/theme", value if value in THEMES else "system")

    @property
    def data_folder(self) -> Path:
        """Where the demo project and projects made for loose model files go."""
        return Path(self._get("paths/data_folder", str(data_dir())))

    @data_folder.setter
    def data_folder(self, value: Path) -> None:
        self._q.setValue("paths/data_folder", str(value))

    @property
    def first_run(self) -> bool:
        return not self._get("ui/first_run_done", False, bool)

    def mark_first_run_done(self) -> None:
        self._q.setValue("ui/first_run_done", True)

    # -- recent files and window layout ----------------------------------------------------------------

    def recent(self, kind: str) -> list[str]:
        value = self._q.value(f"recent/{kind}", [])
        items = [value] if isinstance(value, str) else list(value or [])
        return [str(v) for v in items if v]

    def add_recent(self, kind: str, path: Path | str) -> list[str]:
        text = str(Path(path).expanduser().resolve())
        items = [text, *(p for p in self.recent(kind) if p != text)][:RECENT_LIMIT]
        self._q.setValue(f"recent/{kind}", items)
        return items

    def unpacked_copy(self, bundle: Path) -> Path | None:
        """The project folder this very bundle file was unpacked into before, if it is still there."""
        value = self._q.value(f"bundles/{_bundle_key(bundle)}")
        folder = Path(str(value)) if value else None
        return folder if folder is not None and (folder / DATABASE_NAME).is_file() else None

    def remember_unpacked(self, bundle: Path, folder: Path) -> None:
        self._q.setValue(f"bundles/{_bundle_key(bundle)}", str(Path(folder).resolve()))

    def window_state(self) -> tuple[QByteArray | None, QByteArray | None]:
        geometry = self._q.value("window/geometry")
        state = self._q.value("window/state")
        return (
            geometry if isinstance(geometry, QByteArray) else None,
            state if isinstance(state, QByteArray) else None,
        )

    def save_window_state(self, geometry: QByteArray, state: QByteArray) -> None:
        self._q.setValue("window/geometry", geometry)
        self._q.setValue("window/state", state)


def _is_device_choice(value: str) -> bool:
    index = value.removeprefix("cuda:")
    return value in ("auto", "cpu", "all-gpus") or (value.startswith("cuda:") and index.isdigit())


def _bundle_key(bundle: Path) -> str:
    """The same file, unchanged: its path, size and modification time (hashing a large bundle
    would hold the window up for seconds)."""
    import hashlib

    path = Path(bundle).expanduser().resolve()
    try:
        stat = path.stat()
    except OSError:
        return "missing"
    return hashlib.sha256(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:32]
