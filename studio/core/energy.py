"""Energy over a span of runs, from the hardware's own counters, or why there is none.

One meter per device: ``cpu`` reads RAPL's package domains under ``/sys/class/powercap`` (the
whole CPU package, whatever else runs on it), ``cuda:N`` reads NVML's total-energy counter of
that GPU (millijoules since the driver loaded; whatever else runs on that GPU counts too).
Where neither exists the meter says why in a few words, and the figure is missing, never 0
(every view writes it as studio.tables.energy_text does).

NVML refreshes its counter every 10-100 ms, so a span shorter than a meter's ``min_seconds``
is too short to divide: the measurement then runs a window of its own (studio.core.benchmark).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")
_PACKAGE_ZONE = re.compile(r"intel-rapl:\d+")  # "intel-rapl:0"; its sub-zones are "intel-rapl:0:0"


@dataclass(frozen=True)
class EnergyReading:
    """Joules over ``seconds``; ``joules`` is None (never 0) with ``missing`` saying why."""

    joules: float | None
    seconds: float
    missing: str | None = None


class EnergyMeter:
    """``start()`` then ``stop()``, or ``with meter.span() as span:`` then ``span.reading``."""

    source: str | None = None  # "rapl", "nvml"; None where there is no counter
    reason: str | None = None  # why there is no counter (a few words, no "not available")
    min_seconds: float = 1.0  # a span shorter than this is too short for the counter's resolution

    def __init__(self) -> None:
        self._start: tuple[int, ...] | None = None
        self._t0 = 0.0

    @property
    def available(self) -> bool:
        return self.reason is None

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._start = None
        if self.available:
            try:
                self._start = self._counters()
            except OSError as exc:
                self.reason = self._unreadable(exc)

    def stop(self) -> EnergyReading:
        seconds = time.perf_counter() - self._t0
        if self._start is None:
            return EnergyReading(None, seconds, self.reason or "the meter was not started")
        start, self._start = self._start, None
        try:
            joules = self._joules(start, self._counters())
        except OSError as exc:
            return EnergyReading(None, seconds, self._unreadable(exc))
        except NoFigure as exc:
            return EnergyReading(None, seconds, str(exc))
        if joules <= 0:
            return EnergyReading(None, seconds, f"the counter did not advance over {seconds:.2f} s")
        return EnergyReading(joules, seconds)

    def span(self) -> Span:
        """A context to wrap the runs in; its ``reading`` is set when it ends."""
        return Span(self)

    # what a kind of counter provides
    def _counters(self) -> tuple[int, ...]:
        raise NotImplementedError

    def _joules(self, start: tuple[int, ...], end: tuple[int, ...]) -> float:
        raise NotImplementedError

    def _unreadable(self, exc: OSError) -> str:
        return f"the counter cannot be read ({exc})"


class NoFigure(Exception):
    """The counters were read but give no honest figure for the span; the message says why."""


class Span:
    """``with meter.span() as span:`` around some runs; ``span.reading`` once they have ended."""

    def __init__(self, meter: EnergyMeter) -> None:
        self.meter = meter
        self.reading: EnergyReading | None = None

    def __enter__(self) -> Span:
        self.meter.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.reading = self.meter.stop()


def energy_of_runs(
    meter: EnergyMeter, run: Callable[[], object], seconds: float
) -> tuple[EnergyReading, int]:
    """A window of runs of its own, at least ``seconds`` long: its reading and how many runs it made."""
    runs = 0
    with meter.span() as span:
        t0 = time.perf_counter()
        while runs == 0 or time.perf_counter() - t0 < seconds:
            run()
            runs += 1
    assert span.reading is not None
    return span.reading, runs


class NoMeter(EnergyMeter):
    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class RaplMeter(EnergyMeter):
    """The sum of RAPL's package domains (``energy_uj``), each wrapping at ``max_energy_range_uj``."""

    source = "rapl"
    min_seconds = 0.2  # RAPL updates about every millisecond

    def __init__(self, root: Path = POWERCAP) -> None:
        super().__init__()
        self.root = Path(root)
        self.zones = rapl_packages(self.root)
        self._ranges: tuple[int | None, ...] = ()
        if not self.zones:
            self.reason = f"no RAPL counters under {self.root}"
            return
        try:
            self._counters()  # unreadable files (root only on recent kernels) mean no meter
        except OSError as exc:
            self.reason = self._unreadable(exc)
        self._ranges = tuple(_read_optional(zone / "max_energy_range_uj") for zone in self.zones)

    def _counters(self) -> tuple[int, ...]:
        return tuple(_read_counter(zone / "energy_uj") for zone in self.zones)

    def _joules(self, start: tuple[int, ...], end: tuple[int, ...]) -> float:
        total = 0
        for before, after, wrap in zip(start, end, self._ranges, strict=True):
            if after < before:  # the counter passed its range and began again at 0
                if wrap is None:
                    raise NoFigure("a RAPL counter passed its maximum, and its range cannot be read")
                after += wrap
            total += after - before
        return total / 1e6

    def _unreadable(self, exc: OSError) -> str:
        why = (exc.strerror or str(exc)).lower()
        return f"the RAPL counters under {self.root} cannot be read ({why})"


class NvmlMeter(EnergyMeter):
    """NVML's total energy of one GPU since the driver loaded, in millijoules."""

    source = "nvml"
    min_seconds = 1.0

    def __init__(self, device: str) -> None:
        super().__init__()
        from studio.core.nvml import NvmlUnavailable, nvml_device

        try:
            self._nvml, self._handle = nvml_device(device)
        except NvmlUnavailable as exc:
            self.reason = str(exc)
            return
        try:
            self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        except self._nvml.NVMLError as exc:
            supported = getattr(exc, "value", None) != self._nvml.NVML_ERROR_NOT_SUPPORTED
            self.reason = (
                f"NVML cannot read its energy counter ({exc})"
                if supported
                else ("this GPU has no energy counter")
            )

    def _counters(self) -> tuple[int, ...]:
        try:
            return (int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)),)
        except self._nvml.NVMLError as exc:
            raise OSError(f"NVML: {exc}") from None

    def _joules(self, start: tuple[int, ...], end: tuple[int, ...]) -> float:
        return (end[0] - start[0]) / 1000.0


def meter_for(device: str, *, powercap: Path = POWERCAP) -> EnergyMeter:
    """The energy meter of ``cpu`` or ``cuda:N``; one that says why where there is none."""
    if device == "cpu":
        return RaplMeter(powercap)
    if device.startswith("cuda"):
        return NvmlMeter(device)
    return NoMeter(f"no energy counter is known for {device}")


def rapl_packages(root: Path) -> list[Path]:
    """RAPL's package domains (not their core/uncore/dram sub-zones, nor the platform's "psys"
    domain, which contains them): their counters add up to the CPUs' energy without counting twice."""
    try:
        zones = sorted(p for p in root.iterdir() if _PACKAGE_ZONE.fullmatch(p.name))
    except OSError:
        return []
    return [zone for zone in zones if _zone_name(zone).startswith("package")]


def _zone_name(zone: Path) -> str:
    try:
        return (zone / "name").read_text().strip()
    except OSError:
        return "package"  # a zone that does not name itself is taken for what its path says


def _read_counter(path: Path) -> int:
    text = path.read_text().strip()
    if not text.isdigit():
        raise OSError(f"{path} holds {text[:20]!r}, not a count")
    return int(text)


def _read_optional(path: Path) -> int | None:
    try:
        return _read_counter(path)
    except OSError:
        return None
