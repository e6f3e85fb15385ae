"""Time from spawning a program to its top-level window mapped on an X display, seen from outside.

A figure measured inside the process starts after Python, its imports and Qt are already loaded,
and ends when Qt says the window is shown; a user waits from the launch until the window is
on the screen. This module starts a private Xvfb server, listens on its root window for the map
of the child's top-level window (``MapNotify``, matched by ``_NET_WM_PID``), and reports the time
from just before the spawn to that event; then, through the DAMAGE extension, the time to the
first frame the program draws into that window (a mapped window is still empty until then).
Only the standard library and the system's libX11 and libXdamage are used (through ctypes), so
that nothing is polled: each event arrives when the server sees it happen.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

MAP_NOTIFY = 19
SUBSTRUCTURE_NOTIFY_MASK = 1 << 19
XA_CARDINAL = 6
DAMAGE_NOTIFY = 0  # added to the extension's first event number
DAMAGE_REPORT_NON_EMPTY = 3


class XMapEvent(ctypes.Structure):
    """Xlib's ``XMapEvent``; padded to the size of the ``XEvent`` union (24 longs)."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("serial", ctypes.c_ulong),
        ("send_event", ctypes.c_int),
        ("display", ctypes.c_void_p),
        ("event", ctypes.c_ulong),
        ("window", ctypes.c_ulong),
        ("override_redirect", ctypes.c_int),
        ("_pad", ctypes.c_long * 24),
    ]


def missing_tools() -> str | None:
    """The one sentence saying what this machine lacks to measure a mapped window, or None."""
    if shutil.which("Xvfb") is None:
        return (
            "Xvfb is not installed (apt-get install xvfb), so the start to a mapped window cannot be measured"
        )
    if _libx11() is None:
        return "libX11 is not installed (apt-get install libx11-6), so window maps cannot be observed"
    return None


def _libx11() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("X11") or "libX11.so.6"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.XOpenDisplay.restype = ctypes.c_void_p
    lib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    lib.XDefaultRootWindow.restype = ctypes.c_ulong
    lib.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    lib.XSelectInput.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_long]
    lib.XConnectionNumber.argtypes = [ctypes.c_void_p]
    lib.XPending.argtypes = [ctypes.c_void_p]
    lib.XNextEvent.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.XFlush.argtypes = [ctypes.c_void_p]
    lib.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    lib.XInternAtom.restype = ctypes.c_ulong
    lib.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    lib.XFree.argtypes = [ctypes.c_void_p]
    lib.XGetWindowProperty.argtypes = [
        ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_long, ctypes.c_long, ctypes.c_int,
        ctypes.c_ulong, ctypes.POINTER(ctypes.c_ulong), ctypes.POINTER(ctypes.c_int),
        ctypes.POINTER(ctypes.c_ulong), ctypes.POINTER(ctypes.c_ulong), ctypes.POINTER(ctypes.c_void_p),
    ]  # fmt: skip
    return lib


def _damage_extension(display: int) -> tuple[ctypes.CDLL, int] | None:
    """libXdamage and the DAMAGE extension's first event number, or None where either is missing."""
    name = ctypes.util.find_library("Xdamage") or "libXdamage.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.XDamageQueryExtension.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_int),
        ctypes.POINTER(ctypes.c_int),
    ]
    lib.XDamageCreate.restype = ctypes.c_ulong
    lib.XDamageCreate.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int]
    lib.XDamageDestroy.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
    lib.XDamageSubtract.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    event_base, error_base = ctypes.c_int(), ctypes.c_int()
    if not lib.XDamageQueryExtension(display, ctypes.byref(event_base), ctypes.byref(error_base)):
        return None
    return lib, event_base.value


@contextmanager
def xvfb(size: str = "1920x1080x24") -> Iterator[str]:
    """A private Xvfb server for the duration of the block; yields its display name (``:N``).

    ``-displayfd`` lets the server pick a free display number and say which, so a desktop or
    another benchmark already on ``:0`` or ``:99`` is never touched.
    """
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", size, "-nolisten", "tcp", "-noreset"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        number = b""
        while not number.endswith(b"\n"):
            if not select.select([read], [], [], 20)[0]:
                raise RuntimeError("Xvfb did not start within 20 s")
            chunk = os.read(read, 16)
            if not chunk:
                raise RuntimeError(f"Xvfb exited at start (exit code {server.wait()})")
            number += chunk
        yield f":{number.decode().strip()}"
    finally:
        os.close(read)
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


class MapWatcher:
    """A connection to the display that hears every top-level window being mapped."""

    def __init__(self, display: str) -> None:
        lib = _libx11()
        if lib is None:
            raise RuntimeError("libX11 cannot be loaded")
        self._x = lib
        self._dpy = lib.XOpenDisplay(display.encode())
        if not self._dpy:
            raise RuntimeError(f"cannot open display {display}")
        lib.XSelectInput(self._dpy, lib.XDefaultRootWindow(self._dpy), SUBSTRUCTURE_NOTIFY_MASK)
        lib.XSync(self._dpy, 0)
        self._pid_atom = lib.XInternAtom(self._dpy, b"_NET_WM_PID", 0)
        self._fd = lib.XConnectionNumber(self._dpy)
        self._damage = _damage_extension(self._dpy)

    def close(self) -> None:
        if self._dpy:
            self._x.XCloseDisplay(self._dpy)
            self._dpy = None

    def drain(self) -> None:
        """Forget the events of earlier launches."""
        self._x.XSync(self._dpy, 0)
        event = XMapEvent()
        while self._x.XPending(self._dpy):
            self._x.XNextEvent(self._dpy, ctypes.byref(event))

    def wait_for_map(self, pid: int, deadline: float, alive: Callable[[], bool]) -> tuple[float, int] | None:
        """(``time.monotonic()``, window) when a window of ``pid`` (not a popup) was mapped; None
        once ``alive()`` turns False or the deadline passes."""
        for event, seen in self._events(deadline, alive):
            if event.type == MAP_NOTIFY and not event.override_redirect and self._pid_of(event.window) == pid:
                return seen, event.window
        return None

    def wait_for_paint(self, window: int, deadline: float, alive: Callable[[], bool]) -> float | None:
        """``time.monotonic()`` when the program first draws into ``window`` (a DAMAGE event).

        Asked right after the map: the program draws only once the map's expose event has come
        back to it, so its first frame is not missed. The server reports a new damage object's
        whole window at once; that first report is cleared, and the next one is the program's.
        None where the server lacks DAMAGE.
        """
        if self._damage is None:
            return None
        lib, base = self._damage
        damage = lib.XDamageCreate(self._dpy, window, DAMAGE_REPORT_NON_EMPTY)
        reports = 0
        try:
            for event, seen in self._events(deadline, alive):
                if event.type != base + DAMAGE_NOTIFY:
                    continue
                reports += 1
                if reports == 2:
                    return seen
                lib.XDamageSubtract(self._dpy, damage, 0, 0)
                self._x.XFlush(self._dpy)
            return None
        finally:
            lib.XDamageDestroy(self._dpy, damage)
            self._x.XSync(self._dpy, 0)

    def _events(self, deadline: float, alive: Callable[[], bool]) -> Iterator[tuple[XMapEvent, float]]:
        """Each event as it arrives, with the time it was read, until the deadline or ``alive()``
        turns False."""
        event = XMapEvent()
        self._x.XFlush(self._dpy)
        while time.monotonic() < deadline:
            while self._x.XPending(self._dpy):
                self._x.XNextEvent(self._dpy, ctypes.byref(event))
                yield event, time.monotonic()
            if not alive():
                return
            select.select([self._fd], [], [], min(0.05, max(0.0, deadline - time.monotonic())))

    def _pid_of(self, window: int) -> int | None:
        kind, fmt = ctypes.c_ulong(), ctypes.c_int()
        count, after, data = ctypes.c_ulong(), ctypes.c_ulong(), ctypes.c_void_p()
        status = self._x.XGetWindowProperty(
            self._dpy, window, self._pid_atom, 0, 1, 0, XA_CARDINAL,
            ctypes.byref(kind), ctypes.byref(fmt), ctypes.byref(count), ctypes.byref(after), ctypes.byref(data),
        )  # fmt: skip
        try:
            if status != 0 or not data.value or count.value < 1 or fmt.value != 32:
                return None
            return int(ctypes.cast(data, ctypes.POINTER(ctypes.c_ulong))[0])
        finally:
            if data.value:
                self._x.XFree(data)


@dataclass(frozen=True)
class Launch:
    """One launch seen from outside: seconds from the spawn to the window mapped, and to the
    program's first drawing into it (None where that could not be observed)."""

    mapped_s: float
    painted_s: float | None


def launch(
    watcher: MapWatcher,
    command: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    log: Path,
    timeout_s: float = 60.0,
) -> Launch:
    """Spawn ``command`` and time its window's map and first frame; then the program is asked to
    quit (SIGTERM, as logging out would), and killed with its children if it lingers."""
    watcher.drain()
    with open(log, "wb") as out:
        start = time.monotonic()
        proc = subprocess.Popen(
            list(command),
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        alive = lambda: proc.poll() is None  # noqa: E731
        try:
            mapped = watcher.wait_for_map(proc.pid, start + timeout_s, alive)
            painted = None if mapped is None else watcher.wait_for_paint(mapped[1], start + timeout_s, alive)
        finally:
            _stop(proc)
    if mapped is None:
        tail = log.read_text(errors="replace")[-3000:]
        why = (
            " (a clean exit: did it hand the launch to a studio already running?)"
            if proc.returncode == 0
            else ""
        )
        raise RuntimeError(f"no window was mapped (exit code {proc.returncode}){why}:\n{tail}")
    return Launch(mapped[0] - start, None if painted is None else painted - start)


def _stop(proc: subprocess.Popen, grace_s: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(grace_s)
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # any worker it started, and itself if it lingered
    proc.wait()
