"""Energy meters: RAPL read from a real (made-up) powercap tree of files, NVML where it is installed,
and this machine's own answer. A meter without a counter gives a reason, never 0."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from studio.core.energy import NoMeter, NvmlMeter, RaplMeter, energy_of_runs, meter_for, rapl_packages
from studio.core.nvml import NvmlUnavailable, nvml_key
from studio.tables import energy_cell, energy_text, joules


def zone(root: Path, name: str, label: str, energy_uj: int, max_uj: int | None = 2**32) -> Path:
    """One powercap zone as the kernel lays it out: ``name``, ``energy_uj``, ``max_energy_range_uj``."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "name").write_text(f"{label}\n")
    (folder / "energy_uj").write_text(f"{energy_uj}\n")
    if max_uj is not None:
        (folder / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return folder


def set_energy(folder: Path, energy_uj: int) -> None:
    (folder / "energy_uj").write_text(f"{energy_uj}\n")


@pytest.fixture
def two_packages(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Two CPU packages with core/dram sub-zones and a platform (psys) zone that contains them all."""
    root = tmp_path / "powercap"
    package0 = zone(root, "intel-rapl:0", "package-0", 5_000_000)
    zone(root, "intel-rapl:0:0", "core", 4_000_000)
    zone(root / "intel-rapl:0", "intel-rapl:0:1", "dram", 1_000_000)
    package1 = zone(root, "intel-rapl:1", "package-1", 7_000_000)
    zone(root, "intel-rapl:2", "psys", 90_000_000)
    (root / "intel-rapl").mkdir()  # the control type's own folder has no counter
    return root, package0, package1


def test_only_package_domains_are_summed(two_packages) -> None:
    root, package0, package1 = two_packages
    assert [p.name for p in rapl_packages(root)] == ["intel-rapl:0", "intel-rapl:1"]
    meter = meter_for("cpu", powercap=root)
    assert isinstance(meter, RaplMeter) and meter.available and meter.source == "rapl"
    meter.start()
    set_energy(package0, 5_000_000 + 1_500_000)
    set_energy(package1, 7_000_000 + 250_000)
    reading = meter.stop()
    assert reading.joules == pytest.approx(1.75)
    assert reading.missing is None and reading.seconds >= 0


def test_a_counter_that_wraps_around_its_range(tmp_path: Path) -> None:
    package = zone(tmp_path, "intel-rapl:0", "package-0", 262_143_000_000, max_uj=262_143_328_850)
    meter = RaplMeter(tmp_path)
    with meter.span() as span:
        set_energy(package, 671_150)  # passed its maximum and began again from 0
    assert span.reading is not None
    assert span.reading.joules == pytest.approx((262_143_328_850 - 262_143_000_000 + 671_150) / 1e6)


def test_a_wrap_without_a_known_range_is_missing_not_guessed(tmp_path: Path) -> None:
    package = zone(tmp_path, "intel-rapl:0", "package-0", 900, max_uj=None)
    meter = RaplMeter(tmp_path)
    meter.start()
    set_energy(package, 100)
    reading = meter.stop()
    assert (reading.joules, reading.missing) == (
        None,
        "a RAPL counter passed its maximum, and its range cannot be read",
    )


def test_a_counter_that_does_not_move_gives_no_figure_rather_than_zero(tmp_path: Path) -> None:
    zone(tmp_path, "intel-rapl:0", "package-0", 123_456)
    reading, runs = energy_of_runs(RaplMeter(tmp_path), lambda: None, 0.01)
    assert runs >= 1
    assert reading.joules is None
    assert reading.missing == f"the counter did not advance over {reading.seconds:.2f} s"


def test_no_powercap_tree_means_not_available(tmp_path: Path) -> None:
    meter = meter_for("cpu", powercap=tmp_path / "absent")
    assert not meter.available
    assert meter.reason == f"no RAPL counters under {tmp_path / 'absent'}"
    meter.start()
    assert meter.stop().joules is None


def test_a_counter_holding_no_number_is_not_available(tmp_path: Path) -> None:
    package = zone(tmp_path, "intel-rapl:0", "package-0", 1)
    (package / "energy_uj").write_text("unsupported\n")
    meter = RaplMeter(tmp_path)
    assert not meter.available and "cannot be read" in meter.reason


def _reason_as_nobody(root: Path) -> str | None:
    """The meter's reason, read in a child process that gave up root (root reads any file)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to nobody, build the meter, send its reason back
        try:
            os.close(read_end)
            os.setgid(65534)
            os.setuid(65534)
            reason = RaplMeter(root).reason or ""
            os.write(write_end, reason.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read().decode()
    os.waitpid(pid, 0)
    return answer or None


def test_counters_readable_by_root_only_mean_not_available() -> None:
    """Since Linux 5.10 ``energy_uj`` is readable by root alone: a user's studio has no meter."""
    root = Path(tempfile.mkdtemp(prefix="powercap-"))
    try:
        root.chmod(0o755)
        package = zone(root, "intel-rapl:0", "package-0", 1_000)
        for path in (package, package / "name", package / "max_energy_range_uj"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        (package / "energy_uj").chmod(0o400)  # root only, as the kernel sets it
        if os.geteuid() == 0:
            assert RaplMeter(root).available  # root itself can read it
            reason = _reason_as_nobody(root)
        else:
            reason = RaplMeter(root).reason
        assert reason == f"the RAPL counters under {root} cannot be read (permission denied)"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_this_machine_answers_without_a_figure_of_zero() -> None:
    """The build machines have no RAPL: the real default path gives the reason (elsewhere a meter)."""
    meter = meter_for("cpu")
    if Path("/sys/class/powercap").exists() and meter.available:
        pytest.skip("this machine has readable RAPL counters")
    assert not meter.available and meter.reason
    assert energy_text(None, meter.reason).startswith("not available on this machine: ")
    assert energy_cell(None, meter.reason) == "n/a"


@pytest.mark.skipif(importlib.util.find_spec("pynvml") is not None, reason="nvidia-ml-py is installed here")
def test_a_gpu_meter_without_nvidia_ml_py_says_so() -> None:
    meter = NvmlMeter("cuda:0")
    assert (meter.available, meter.reason) == (False, "nvidia-ml-py is not installed")


@pytest.mark.skipif(importlib.util.find_spec("pynvml") is None, reason="nvidia-ml-py is not installed")
def test_a_gpu_meter_reads_nvml_or_says_why() -> None:
    meter = NvmlMeter("cuda:0")
    if meter.available:
        reading, runs = energy_of_runs(meter, lambda: None, meter.min_seconds)
        assert runs >= 1 and (reading.joules is None) == (reading.missing is not None)
    else:
        assert meter.reason and meter.reason != "nvidia-ml-py is not installed"


@pytest.mark.gpu
def test_nvml_energy_on_a_gpu() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available() or importlib.util.find_spec("pynvml") is None:
        pytest.skip("needs a CUDA GPU and nvidia-ml-py")
    meter = meter_for("cuda:0")
    if not meter.available:
        assert meter.reason == "this GPU has no energy counter"
        return
    a = torch.randn(4096, 4096, device="cuda")
    reading, runs = energy_of_runs(meter, lambda: (a @ a).sum().item(), 1.0)
    assert reading.joules is not None and reading.joules > 0 and runs > 0


def test_gpus_are_found_in_nvml_through_the_visible_list() -> None:
    assert nvml_key(1, None) == 1
    assert nvml_key(0, "3") == 3  # a worker bound to GPU 3 calls it cuda:0
    assert nvml_key(1, "2, 0") == 0
    assert nvml_key(0, "GPU-8f4a1c8b") == "GPU-8f4a1c8b"
    with pytest.raises(NvmlUnavailable, match="has no device 2"):
        nvml_key(2, "0,1")


def test_other_devices_have_no_meter() -> None:
    assert isinstance(meter_for("tpu"), NoMeter)


@pytest.mark.parametrize(
    ("value", "text"), [(1.234, "1.23 J"), (0.00456, "4.56 mJ"), (7.89e-4, "789 µJ"), (2e-8, "0.02 µJ")]
)
def test_energy_reads_in_joules_with_a_prefix(value: float, text: str) -> None:
    assert joules(value) == text
    assert energy_text(value, None) == text


def test_a_measurement_from_before_energy_reads_as_not_measured() -> None:
    assert energy_text(None, "not measured") == "-" and energy_cell(None, None) == "-"
