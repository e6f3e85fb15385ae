"""What the window asks of the project, and what it hears back, as Qt signals.

The controller owns the open project's ``Engine``, the job bridge and a small pool of background
threads. Anything that can take longer than a frame (opening a project, importing or inspecting
a model, building the demo) runs off the UI thread; results and errors come back as signals.
Views never touch the engine: they render what these signals carry.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal

from studio.engine.executors import PoolSettings
from studio.jobs.events import JobEvent
from studio.ui.background import Background, TaskFailed
from studio.ui.job_bridge import JobBridge
from studio.ui.models.figures import VersionFigures, version_figures

if TYPE_CHECKING:
    from studio.engine import Engine
    from studio.ui.version_view import VersionView


class ProjectController(QObject):
    project_opened = Signal(object)  # Engine
    project_closed = Signal()
    figures_changed = Signal(list)  # list[VersionFigures]
    jobs_reset = Signal(list)  # list[JobRecord]
    job_added = Signal(object)  # JobRecord
    job_event = Signal(object)  # JobEvent
    version_loaded = Signal(object)  # VersionView
    model_imported = Signal(object)  # ModelVersion
    packed = Signal(object)  # PackResult of a shared project just written
    exported = Signal(str)  # what an export wrote, in the command line's words
    report_written = Signal(object)  # ReportResult
    version_deleted = Signal(object)  # DeletedVersion
    busy = Signal(str)  # what is being done ("" when idle)
    failed = Signal(object)  # an exception (StudioError: one sentence) or TaskFailed

    def __init__(self, pool: PoolSettings | None = None, cache_dir: Path | None = None, parent=None) -> None:
        super().__init__(parent)
        self.pool = pool or PoolSettings()
        self.cache_dir = cache_dir
        self.session: Engine | None = None
        self.figures: list[VersionFigures] = []
        self.background = Background(self)
        self.bridge = JobBridge(self)
        self.bridge.job_event.connect(self._on_job_event)
        self._known_jobs: set[int] = set()
        self._closing = False
        self._refresh_due = False

    # -- projects -------------------------------------------------------------------------------

    def is_open(self, path: Path) -> bool:
        return self.session is not None and self.session.root == Path(path).resolve()

    def open_project(self, path: Path, *, create: bool = False) -> None:
        if self.is_open(path):
            return  # already open: reopening would stop its running jobs for nothing
        self.busy.emit(f"Opening {Path(path).name}…")
        self.close_project()
        pool = self.pool

        def open_session() -> Engine:
            from studio.ui.session import open_session

            return open_session(Path(path), pool, create=create)

        self.background.run(open_session, self._opened, self._failed)

    def _opened(self, session: Engine) -> None:
        if self._closing:  # the window closed while the project was opening
            session.close()
            return
        self.session = session
        self.bridge.attach(session)
        self.busy.emit("")
        self.project_opened.emit(session)
        self.reload_jobs()
        self.refresh()

    def close_project(self) -> None:
        """Stop the project's workers (running jobs are recorded as interrupted) and close it."""
        if self.session is None:
            return
        self.bridge.detach()
        session, self.session = self.session, None
        self.figures = []
        self._known_jobs = set()
        session.close()
        self.project_closed.emit()

    def active_jobs(self) -> list[int]:
        """Jobs of the open project queued or running in this window's workers."""
        return [] if self.session is None else self.session.active()

    def unpack_and_open(self, bundle: Path, target: Path, *, on_unpacked=None) -> None:
        """Check and unpack a shared project into ``target`` off the UI thread, then open it."""
        from studio.bundle import unpack_bundle

        self.busy.emit(f"Checking and unpacking {Path(bundle).name}…")

        def unpacked(result) -> None:
            if on_unpacked is not None:
                on_unpacked(result.path)
            self.open_project(result.path)

        self.background.run(lambda: unpack_bundle(Path(bundle), Path(target)), unpacked, self._failed)

    def pack_project(self, out: Path) -> None:
        """Write the open project as one ``.studio`` file; ``packed`` follows, or ``failed``."""
        if self.session is None:
            return
        from studio.bundle import pack_project

        root = self.session.root
        self.busy.emit(f"Saving {Path(out).name}…")
        self.background.run(lambda: pack_project(root, Path(out)), self._packed, self._failed)

    def _packed(self, result) -> None:
        self.busy.emit("")
        self.packed.emit(result)

    def run_demo(self, folder: Path) -> None:
        """Build (or refresh) the demo project in ``folder``, then open it."""
        from studio.demo import run_demo

        self.busy.emit("Preparing the demo project: importing and measuring the digits model…")
        self.background.run(
            lambda: run_demo(Path(folder)),
            lambda result: self.open_project(Path(result["project"])),
            self._failed,
        )

    # -- figures and jobs -------------------------------------------------------------------------

    def refresh(self) -> list[VersionFigures]:
        """Re-read versions and measurements (two queries) and tell every view."""
        if self.session is None:
            return []
        store = self.session.project.store
        self.figures = version_figures(store.list_versions(), store.list_measurements())
        self.figures_changed.emit(self.figures)
        return self.figures

    def reload_jobs(self) -> None:
        if self.session is None:
            return
        records = self.session.project.store.list_jobs()
        self._known_jobs = {r.id for r in records}
        self.jobs_reset.emit(records)

    def _sync_jobs(self) -> None:
        """Jobs queued by the manager thread (measurements after a step) join the table."""
        if self.session is None:
            return
        for record in self.session.project.store.list_jobs():
            if record.id not in self._known_jobs:
                self._known_jobs.add(record.id)
                self.job_added.emit(record)

    def _on_job_event(self, event: JobEvent) -> None:
        if event.job_id not in self._known_jobs:
            self._sync_jobs()
        self.job_event.emit(event)
        if event.final:
            self._sync_jobs()
            self._schedule_refresh()

    def _schedule_refresh(self) -> None:
        """One refresh for a burst of jobs ending together (a step, then its measurements)."""
        if not self._refresh_due:
            self._refresh_due = True
            QTimer.singleShot(0, self._due_refresh)

    def _due_refresh(self) -> None:
        self._refresh_due = False
        self.refresh()

    # -- commands -------------------------------------------------------------------------------

    def version(self, version_id: int):
        return None if self.session is None else self.session.project.store.get_version(version_id)

    def submit_optimize(
        self, version_id: int, technique: str, params: dict[str, Any], **options: Any
    ) -> None:
        """Queue a step off the UI thread (checks load the dataset and the plugin); ``job_added``
        follows, or ``failed`` with a readable error for a request that could never run."""
        self._submit(
            lambda s: s.submit_optimize(s.project.store.get_version(version_id), technique, params, **options)
        )

    def submit_measure(self, version_id: int, dataset: str | None = None) -> None:
        self._submit(
            lambda s: s.submit_measure(s.project.store.get_version(version_id), dataset=dataset or None)
        )

    def submit_recipe(
        self, version_id: int, steps: list, *, dataset: str | None = None, **options: Any
    ) -> None:
        """Queue a recipe from the editor's rows, checked as a recipe file is; ``dataset`` serves
        every step."""
        from studio.engine import recipe_of

        self._submit(
            lambda s: s.submit_recipe(
                s.project.store.get_version(version_id), recipe_of(steps, data=dataset), **options
            )
        )

    def _submit(self, submit) -> None:
        session = self.session
        if session is None:
            return
        self.background.run(
            lambda: session.project.store.get_job(submit(session)), self._queued, self._failed
        )

    def _queued(self, record) -> None:
        if record.id not in self._known_jobs:  # an event about it may have announced it already
            self._known_jobs.add(record.id)
            self.job_added.emit(record)

    # -- a version's own commands (the lineage's context menu) ----------------------------------------

    def export_version(self, version_id: int, fmt: str, out: Path, **options: Any) -> None:
        """Write ``fmt`` ("onnx" or "tensorrt") to ``out`` off the UI thread; ``exported`` follows with
        the same summary `studio export` prints, or ``failed`` (an untrusted file asks for trust)."""
        if self.session is None:
            return
        project = self.session.project

        def export() -> str:
            from studio.export import export_onnx_version, export_tensorrt
            from studio.export.summary import onnx_export_text, tensorrt_export_text

            version = project.store.get_version(version_id)
            if fmt == "onnx":
                return onnx_export_text(export_onnx_version(project, version, out=out, **options).to_dict())
            return tensorrt_export_text(export_tensorrt(project, version, out=out, **options).to_dict())

        self.busy.emit(f"Exporting v{version_id} to {Path(out).name}…")
        self.background.run(export, self._done(self.exported), self._failed)

    def write_report(self, out: Path) -> None:
        """The project's HTML report, as `studio report` writes it; ``report_written`` follows."""
        if self.session is None:
            return
        from studio.report import write_report

        project = self.session.project
        self.busy.emit(f"Writing {Path(out).name}…")
        self.background.run(
            lambda: write_report(project, Path(out)), self._done(self.report_written), self._failed
        )

    def rename_version(self, version_id: int, name: str) -> None:
        if self.session is None:
            return
        project = self.session.project
        self.background.run(
            lambda: project.rename_version(version_id, name), lambda _v: self.refresh(), self._failed
        )

    def delete_version(self, version_id: int) -> None:
        """Delete a version its project no longer needs (refused, in one sentence, if it does)."""
        if self.session is None:
            return
        project = self.session.project
        self.busy.emit(f"Deleting v{version_id}…")

        def deleted(result) -> None:
            self.busy.emit("")
            self.refresh()
            self.version_deleted.emit(result)

        self.background.run(lambda: project.delete_version(version_id), deleted, self._failed)

    def version_file(self, version_id: int) -> Path | None:
        """The version's main file inside the project (what a loader opens)."""
        if self.session is None:
            return None
        project = self.session.project
        return project.version_path(project.store.get_version(version_id))

    def _done(self, signal):
        def done(value) -> None:
            self.busy.emit("")
            signal.emit(value)

        return done

    def cancel(self, job_id: int) -> None:
        if self.session is not None:
            self.session.cancel(job_id)

    def load_version(self, version_id: int) -> None:
        """Layers and graph file of a version, computed off the UI thread; ``version_loaded`` follows."""
        self.view_of(version_id, self._loaded)

    def view_of(self, version_id: int, on_done) -> None:
        """``on_done(VersionView)`` on the UI thread, once the version has been read."""
        if self.session is None:
            return
        from studio.ui.version_view import version_view

        project, cache = self.session.project, self.cache_dir or self.session.root / ".graph-cache"
        version = self.version(version_id)
        self.background.run(lambda: version_view(project, version, cache), on_done, self._failed)

    def _loaded(self, view: VersionView) -> None:
        if self.session is not None:
            self.version_loaded.emit(view)

    def import_model(
        self,
        path: Path,
        *,
        weights: Path | None = None,
        trust: bool = False,
        input_roles: dict[str, str] | None = None,
    ) -> None:
        if self.session is None:
            return
        session = self.session
        self.busy.emit(f"Importing {Path(path).name}…")
        self.background.run(
            lambda: session.project.import_model(
                Path(path), weights=weights, trust=trust, input_roles=input_roles
            ),
            self._imported,
            self._failed,
        )

    def trust_version(self, version_id: int) -> None:
        """Record the user's trust in the files of a version that run code, then show it again."""
        if self.session is None:
            return
        project = self.session.project

        def grant() -> int:
            from studio.core.trust import grant

            grant(project.model_files(project.store.get_version(version_id)))
            return version_id

        self.background.run(grant, self.load_version, self._failed)

    def _imported(self, version) -> None:
        self.busy.emit("")
        self.refresh()
        self.model_imported.emit(version)

    def _failed(self, failure: TaskFailed) -> None:
        self.busy.emit("")
        self.failed.emit(failure)

    def shutdown(self) -> None:
        """Finish what is running in the background, then close the project and its workers."""
        self._closing = True
        self.background.close(10_000)
        QCoreApplication.processEvents()  # deliver results still queued (a session just opened)
        self.close_project()
