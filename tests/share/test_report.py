"""The HTML report reads offline, escapes user text and draws its own charts; the CSV is flat."""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import onnxruntime
import pytest

from studio.project import Project
from studio.report import measurements_csv, pareto_front, report_data, write_report


class _Tags(HTMLParser):
    """Every start tag and attribute, and whether each opened element was closed again."""

    VOID = {"meta", "br", "hr", "img", "input", "link"}

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.open: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"
        self.open.pop()

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    parser.close()
    assert parser.open == []
    return parser


@pytest.fixture
def report(project_dir: Path, tmp_path: Path):
    with Project.open(project_dir) as project:
        result = write_report(project, tmp_path / "report.html", csv_out=tmp_path / "measurements.csv")
    return result


def test_the_report_is_one_self_contained_page(report, made_project) -> None:
    html = report.html.read_text(encoding="utf-8")
    page = _parse(html)

    assert (report.versions, report.measurements) == (3, 2)
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(page.tags)
    assert not re.search(r"https?:|//[a-z]|url\(|@import", html)
    assert not [name for name, _ in page.attrs if name in ("src", "href")]
    assert page.tags.count("svg") == 3
    text = "".join(page.text)
    assert "Digits <team> & co" in text and made_project.child_name in text
    assert "<script>alert(1)</script>" not in html  # present only as escaped text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "v1 → v2" in text and "quantize.dynamic" in text and '"weight_type": "int8"' in text


def test_the_accuracy_chart_marks_the_baseline_and_the_pareto_front(report) -> None:
    html = report.html.read_text(encoding="utf-8")
    scatter = html[html.index("<svg") : html.index("</svg>")]
    assert scatter.count('r="7"') == 1  # the ring around the one measured root version
    assert "<polyline" in scatter and "Pareto front" in scatter
    assert scatter.count('r="4"') == 2  # both measured versions are plotted


def test_the_pareto_front_keeps_only_undominated_points() -> None:
    points = [(1.0, 90.0), (2.0, 95.0), (3.0, 94.0), (0.5, 80.0), (2.0, 93.0), (4.0, 99.0)]
    assert pareto_front(points) == [3, 0, 1, 5]
    assert pareto_front([]) == []


def test_the_csv_has_one_flat_row_per_measurement(report, project_dir: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(report.csv.read_text(encoding="utf-8"))))
    assert [r["measurement_id"] for r in rows] == ["1", "2"]
    first = rows[0]
    assert first["version"] == "baseline" and first["dataset"] == "digits" and first["device"] == "cpu"
    assert first["threads"] == "1"
    assert rows[1]["parent_id"] == "1" and rows[1]["technique"] == "quantize.dynamic"
    with Project.open(project_dir) as project:
        stored = project.store.list_measurements()
    for row, measurement in zip(rows, stored, strict=True):  # the recorded figures, not others
        assert float(row["accuracy_top1"]) == pytest.approx(measurement.accuracy["top1"])
        assert float(row["latency_p50_ms"]) == pytest.approx(measurement.latency_p50_ms)
        assert row["environment_onnxruntime"] == measurement.environment["onnxruntime"]
    assert float(first["accuracy_top1"]) > 0.95
    assert first["environment_onnxruntime"] == onnxruntime.__version__


def test_csv_cells_that_a_spreadsheet_would_run_are_defused() -> None:
    rows = [{"measurement_id": 1, "version": '=HYPERLINK("x")', "technique": "-1+2", "batch": -1}]
    parsed = next(csv.DictReader(io.StringIO(measurements_csv(rows))))
    assert parsed["version"] == '\'=HYPERLINK("x")' and parsed["technique"] == "'-1+2"
    assert parsed["batch"] == "-1"  # numbers stay numbers


def test_a_project_without_versions_still_gets_a_page(tmp_path: Path) -> None:
    with Project.create(tmp_path / "empty", name="Empty") as project:
        data = report_data(project)
        result = write_report(project, tmp_path / "empty.html")
    html = result.html.read_text(encoding="utf-8")
    _parse(html)
    assert data["versions"] == [] and "No model versions yet." in html
    assert "No version has an accuracy measurement yet." in html


def test_report_from_the_command_line(studio_cli, project_dir: Path, tmp_path: Path, made_project) -> None:
    result = studio_cli(
        "report", project_dir, "--out", tmp_path / "r.html", "--csv", tmp_path / "m.csv", "--json"
    )
    assert result.returncode == 0, result.stderr
    assert result.json() == {
        "html": str(tmp_path / "r.html"),
        "csv": str(tmp_path / "m.csv"),
        "versions": 3,
        "measurements": 2,
    }
    page = _parse((tmp_path / "r.html").read_text(encoding="utf-8"))
    assert "Digits <team> & co" in "".join(page.text)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "m.csv").read_text(encoding="utf-8"))))
    assert [r["version"] for r in rows] == ["baseline", made_project.child_name]
    folder = studio_cli("report", project_dir, "--out", tmp_path)
    assert folder.returncode == 2 and "is a folder; give the file to write" in folder.stderr
    missing = studio_cli("report", tmp_path / "nowhere", "--out", tmp_path / "x.html")
    assert missing.returncode == 2 and "is not a studio project" in missing.stderr
    assert not (tmp_path / "x.html").exists()
