"""The main window: renders the project's state and turns the user's gestures into commands.

Layout lives in ``window_parts``, menus in ``actions``, project work in ``controller``; this
class wires them together and holds the handful of commands the actions name.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QMainWindow

from studio.jobs.events import JobEvent
from studio.ui.actions import add_panel_toggles, build_actions, update_enabled
from studio.ui.background import TaskFailed, after_first_frame
from studio.ui.controller import ProjectController
from studio.ui.models.figures import VersionFigures
from studio.ui.opening import Opener
from studio.ui.pool import detected_devices, placement_request, pool_settings
from studio.ui.settings import StudioSettings
from studio.ui.theme import apply_theme
from studio.ui.version_commands import VersionCommands
from studio.ui.widgets.errors import show_error, show_info
from studio.ui.widgets.next_step_hint import NextStepHint, with_hint
from studio.ui.window_parts import LAYOUT_VERSION, build_parts, default_sizes

if TYPE_CHECKING:
    from studio.ui.version_view import VersionView

APP_TITLE = "Model Optimization Studio"


class MainWindow(QMainWindow):
    def __init__(
        self, settings: StudioSettings | None = None, controller: ProjectController | None = None
    ) -> None:
        super().__init__()
        self.setWindowTitle(APP_TITLE)
        self.setAcceptDrops(True)
        self.settings = settings or StudioSettings()
        self.controller = controller or ProjectController(
            pool_settings(self.settings), cache_dir=self.settings.data_folder / "cache" / "graphs"
        )
        self.controller.setParent(self)
        self.parts = build_parts(self)
        self.actions = build_actions(self)
        add_panel_toggles(self, self.parts.docks.values())
        self.current_version: int | None = None
        self.opener = Opener(self, self.controller, self.settings)
        self.versions = VersionCommands(self)
        self.hint = NextStepHint()
        self.parts.docks["lineage"].setWidget(with_hint(self.parts.lineage, self.hint))
        self._follow_next_job = False
        self._closed = False
        self.gpus: list[dict] = []  # as hardware.cuda_devices() lists them, once found
        self._connect()
        self._restore_layout()
        self._show_welcome()
        self._update_actions()
        after_first_frame(self, self._after_first_paint)

    # -- wiring ---------------------------------------------------------------------------------

    def _connect(self) -> None:
        c, p = self.controller, self.parts
        c.project_opened.connect(self._on_project_opened)
        c.project_closed.connect(self._show_welcome)
        c.figures_changed.connect(self._on_figures)
        c.jobs_reset.connect(p.jobs.set_records)
        c.job_added.connect(self._on_job_added)
        c.job_event.connect(self._on_job_event)
        c.version_loaded.connect(self._on_version_loaded)
        c.model_imported.connect(lambda v: (p.lineage.select(v.id), self._rebuild_recent_menu()))
        c.busy.connect(self._on_busy)
        c.packed.connect(self._on_packed)
        c.failed.connect(self.show_failure)
        p.welcome.demo_requested.connect(self.open_demo)
        p.welcome.open_project_requested.connect(self.open_project_dialog)
        p.welcome.open_model_requested.connect(self.open_model_dialog)
        p.welcome.recent_requested.connect(lambda path: self.open_project(Path(path)))
        p.lineage.current_changed.connect(self._on_version_chosen)
        p.lineage.selection_changed.connect(lambda _ids: self._update_actions())
        p.layers.layer_activated.connect(p.graph.select_node)
        p.graph.node_selected.connect(self._on_node_selected)
        p.graph.node_clicked.connect(p.layers.select_layer)
        c.version_loaded.connect(p.graph.show_measures)  # after _on_version_loaded: its graph is set
        c.version_loaded.connect(p.layers.show_measures)
        p.optimize.run_requested.connect(self._on_run_requested)
        p.optimize.add_to_recipe.connect(p.recipe.add_step)
        p.recipe.edit_requested.connect(self._edit_recipe_step)
        p.recipe.run_requested.connect(self._run_recipe)
        p.recipe.failed.connect(self.show_failure)
        p.jobs.cancel_requested.connect(c.cancel)
        p.jobs.summary_changed.connect(p.jobs_label.setText)
        p.charts.built.connect(self._on_charts_built)
        p.compare.set_graph_loader(c.view_of)

    def _after_first_paint(self) -> None:
        """Work the window does not need to appear: plugins and devices, found off the UI thread
        (even their imports: pydantic and the plugins would hold the UI for a quarter second)."""
        self.controller.background.run(_discover, self.parts.optimize.set_entries, self.show_failure)
        self.controller.background.run(detected_devices, self._on_devices)

    # -- project and version state ----------------------------------------------------------------

    def _show_welcome(self) -> None:
        self.setWindowTitle(APP_TITLE)
        self.parts.welcome.set_state(self.settings.recent("projects"), self.settings.first_run)
        self.parts.stack.setCurrentWidget(self.parts.welcome)
        self.current_version = None
        self.hint.show_for(None, [])
        self._update_actions()

    def _on_project_opened(self, session) -> None:
        self.settings.add_recent("projects", session.root)
        self.settings.mark_first_run_done()
        self._rebuild_recent_menu()
        name = session.project.store.project().name
        self.setWindowTitle(f"{name} — {APP_TITLE}")
        self.parts.stack.setCurrentWidget(self.parts.tabs)
        self.parts.graph.prepare()
        self.parts.jobs.logs_dir = session.project.logs_dir
        _settle_memory()
        self.parts.optimize.set_dataset_sources(
            [(d.name, str(d.spec.get("source", ""))) for d in session.project.store.list_datasets()]
        )
        self._update_actions()

    def _on_figures(self, figures: list[VersionFigures]) -> None:
        p = self.parts
        p.lineage.set_figures(figures)
        if self.current_version is None and figures:
            p.lineage.select(figures[0].id)
        charts = p.charts.content
        if charts is not None:
            charts.set_figures(figures, self.current_version)
        p.compare.refresh(figures)
        self.hint.show_for(self.current_version, figures)

    def _on_version_chosen(self, version_id: int) -> None:
        self.current_version = version_id
        fig = next((f for f in self.controller.figures if f.id == version_id), None)
        self.parts.optimize.set_target(fig.label if fig else f"v{version_id}")
        self.hint.show_for(version_id, self.controller.figures)
        self.parts.layers.clear(f"Reading {fig.label if fig else 'the model'}…")
        self.controller.load_version(version_id)
        if self.parts.charts.content is not None:
            self.parts.charts.content.set_selected(version_id)
        self._update_actions()

    def _on_version_loaded(self, view: VersionView) -> None:
        if view.version.id != self.current_version:
            return  # the user moved on meanwhile
        v, p = view.version, self.parts
        p.layers.set_model_info(
            f"v{v.id} {v.name}",
            view.layers,
            params=v.params,
            size=v.size_bytes,
            inputs=v.inputs,
            times=view.times,
        )
        if view.graph_file is not None:
            p.graph.show_file(view.graph_file, view.graph_extra)
        elif view.untrusted is not None:
            question = view.untrusted
            p.layers.clear(f"<b>v{v.id} {v.name}</b> — its layers are read once you trust its code")
            p.graph.show_message(
                f"{view.problem}.\nThe graph and the layers are shown once you trust it.",
                ("Trust This File…", lambda: self.opener.ask_trust_version(v.id, question)),
            )
        else:
            p.graph.show_message(view.problem or "This model cannot be drawn.")

    def _on_charts_built(self, charts) -> None:
        charts.version_clicked.connect(self.parts.lineage.select)
        charts.set_figures(self.controller.figures, self.current_version)

    def _on_node_selected(self, name: str, found: bool) -> None:
        if not found:
            self.statusBar().showMessage(f"{name} is not drawn as a node in the graph", 4000)

    def _on_devices(self, found: tuple[list[dict], str]) -> None:
        gpus, cpu = found
        self.gpus = gpus
        label = self.parts.devices_label
        label.setToolTip("\n".join([cpu, *(f"cuda:{gpu['index']} {gpu['name']}" for gpu in gpus)]))
        label.setText("Devices: " + ", ".join(["cpu", *(f"cuda:{gpu['index']}" for gpu in gpus)]))
        self.parts.optimize.set_devices(gpus, self.settings.default_device)

    # -- jobs ------------------------------------------------------------------------------------

    def _on_job_added(self, record) -> None:
        self.parts.jobs.add_record(record)
        if self._follow_next_job:  # the job the user just asked for: show it
            self._follow_next_job = False
            self.parts.docks["jobs"].raise_()
            self.parts.jobs.select_job(record.id)

    def _on_job_event(self, event: JobEvent) -> None:
        self.parts.jobs.apply(event)
        if event.kind == "failed":
            self.statusBar().showMessage(f"Job {event.job_id} failed: {event.error}", 8000)

    def _on_run_requested(
        self, technique: str, params: dict, dataset: str, device: str, threads: int, name: str
    ) -> None:
        if self.current_version is None:
            return
        self._follow_next_job = True
        device, ranks = placement_request(device, self.gpus)
        self.controller.submit_optimize(
            self.current_version, technique, params,
            dataset=dataset or None, device=device, ranks=ranks, threads=threads or None, name=name or None,
        )  # fmt: skip
        self.statusBar().showMessage(f"Queuing {technique} on v{self.current_version}…", 3000)

    def _run_recipe(self, steps: list) -> None:
        if self.current_version is None:
            return
        o = self.parts.optimize
        self._follow_next_job = True
        device, ranks = placement_request(o.device_choice(), self.gpus)
        self.controller.submit_recipe(
            self.current_version, steps, dataset=o.dataset.source() or None, device=device, ranks=ranks
        )

    def _edit_recipe_step(self, technique: str, params: dict) -> None:
        self.parts.optimize.set_technique(technique)
        self.parts.optimize.form.set_values(params)
        self.parts.docks["optimize"].raise_()

    # -- errors and trust -------------------------------------------------------------------------

    def show_failure(self, failure) -> None:
        error = failure.error if isinstance(failure, TaskFailed) else failure
        if self.opener.handle_untrusted(error, self.current_version) or self.opener.handle_input_value(error):
            return
        details = failure.traceback if isinstance(failure, TaskFailed) else None
        show_error(self, error, details=None if _is_user_error(error) else details)

    def _on_packed(self, result) -> None:
        from studio.tables import human_bytes

        self.statusBar().showMessage(
            f"Saved {result.path.name} ({human_bytes(result.size_bytes)}): "
            f"{result.versions} version(s), ready to send",
            8000,
        )

    def _on_busy(self, text: str) -> None:
        self.parts.busy_label.setText(text)

    def _update_actions(self) -> None:
        update_enabled(
            self.actions,
            project=self.controller.session is not None,
            version=self.current_version is not None,
        )

    # -- commands named by the actions --------------------------------------------------------------

    def open_model(self, path: Path, weights: Path | None = None) -> None:
        self.opener.open_model(path, weights)

    def open_project(self, path: Path, *, create: bool = False) -> None:
        self.opener.open_project(path, create=create)

    def open_path(self, path: Path) -> None:
        self.opener.open_path(path)

    def open_model_dialog(self) -> None:
        self.opener.model_dialog()

    def open_project_dialog(self) -> None:
        self.opener.project_dialog()

    def new_project_dialog(self) -> None:
        self.opener.project_dialog(create=True)

    def open_shared_dialog(self) -> None:
        self.opener.bundle_dialog()

    def share_project_dialog(self) -> None:
        self.opener.share_dialog()

    def open_demo(self) -> None:
        self.opener.open_demo()

    def open_settings(self) -> None:
        from studio.ui.widgets.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.settings, self.gpus, self)
        dialog.accepted.connect(self._settings_changed)
        dialog.open()

    def _settings_changed(self) -> None:
        apply_theme(self.settings.theme)
        self.controller.pool = pool_settings(self.settings)

    def run_technique(self) -> None:
        self.parts.optimize.run_button.click()

    def measure_selected(self) -> None:
        if self.current_version is not None:
            self.controller.submit_measure(self.current_version, self.parts.optimize.dataset.source())

    def compare_selected(self) -> None:
        by_id = {f.id: f for f in self.controller.figures}
        chosen = [by_id[i] for i in self.parts.lineage.selected_ids() if i in by_id]
        self.parts.compare.set_versions(chosen)
        self.show_compare_tab()

    def compare_with_parent(self) -> None:
        self.versions.compare_with_parent(self.current_version)

    def export_selected(self) -> None:
        self.versions.export(self.current_version)

    def write_report(self) -> None:
        self.versions.report()

    def rename_selected(self) -> None:
        self.versions.rename(self.current_version)

    def copy_selected_path(self) -> None:
        self.versions.copy_path(self.current_version)

    def delete_selected(self) -> None:
        self.versions.delete(self.current_version)

    def cancel_selected_job(self) -> None:
        job = self.parts.jobs.selected_id()
        if job is not None:
            self.controller.cancel(job)

    def show_graph_tab(self) -> None:
        self.parts.tabs.setCurrentIndex(0)

    def show_charts_tab(self) -> None:
        self.parts.tabs.setCurrentIndex(1)

    def show_compare_tab(self) -> None:
        self.parts.tabs.setCurrentIndex(2)

    def focus_layer_filter(self) -> None:
        self.show_graph_tab()
        self.parts.layers.filter.setFocus()

    def reset_layout(self) -> None:
        for dock in self.parts.docks.values():
            dock.show()
            dock.setFloating(False)
        self.resize(1400, 900)
        default_sizes(self, self.parts)

    def show_about(self) -> None:
        from studio import __version__

        show_info(
            self,
            f"Model Optimization Studio {__version__}\nGraphs drawn by Netron, served on this machine only.",
        )

    # -- recent files, layout, drag and drop, closing ---------------------------------------------------

    def _rebuild_recent_menu(self) -> None:
        from studio.ui.window_menus import rebuild_recent_menus

        rebuild_recent_menus(self)

    def _restore_layout(self) -> None:
        geometry, state = self.settings.window_state()
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1400, 900)
        if state is None or not self.restoreState(state, LAYOUT_VERSION):
            default_sizes(self, self.parts)  # the first run, or a state saved by an older layout
        self._rebuild_recent_menu()

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls() and all(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        for url in event.mimeData().urls():
            self.open_path(Path(url.toLocalFile()))
        event.acceptProposedAction()

    def closeEvent(self, event) -> None:
        if self._closed:
            super().closeEvent(event)
            return
        self._closed = True
        self.settings.save_window_state(self.saveGeometry(), self.saveState(LAYOUT_VERSION))
        self.settings.sync()
        self.controller.version_loaded.disconnect(self._on_version_loaded)  # no new pages from here on
        self.controller.shutdown()  # delivers what background work still had queued
        self.parts.graph.shutdown()
        self.parts.compare.shutdown()
        super().closeEvent(event)


def _discover() -> list:
    from studio.core.techniques import discover

    return discover()


def _settle_memory() -> None:
    """Move everything alive now (modules, Qt wrappers, the project's machinery) out of the
    garbage collector's sight. Otherwise a full collection walks all of it, every so often, in
    the middle of a redraw: a 100 ms hitch with a large project open."""
    import gc

    gc.collect()
    gc.freeze()


def _is_user_error(error: BaseException) -> bool:
    from studio.api import StudioError

    return isinstance(error, StudioError)
