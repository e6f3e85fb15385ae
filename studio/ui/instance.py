"""One running studio per user and data folder, and a clean exit when the desktop asks for one.

Opening a file from the file manager while the studio runs starts a second process. That process
hands its request (the path, or "show the demo") to the running window over a local socket and
exits, so two windows never run job managers on the same project: the second would mark the
first one's running jobs as interrupted when it opened it.

SIGTERM (logging out, ``kill``, a service manager) and SIGINT (Ctrl+C in the terminal that
started the studio) close the window the same way the Quit command does: settings saved, workers
stopped, running jobs recorded as interrupted, exit code 0.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QSocketNotifier, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

NAME_PREFIX = "model-optimization-studio"
ANSWER = b"ok\n"
_MESSAGE_LIMIT = 64 * 1024


def server_name(data_folder: Path) -> str:
    """The socket name for this user and data folder (``STUDIO_DATA_DIR`` gives a new one)."""
    digest = hashlib.sha256(str(Path(data_folder).expanduser().absolute()).encode()).hexdigest()[:16]
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return f"{NAME_PREFIX}-{user}-{digest}"


def hand_over(name: str, request: dict, timeout_ms: int = 2000) -> bool:
    """Give ``request`` to the studio listening on ``name``; False when none answers."""
    client = QLocalSocket()
    client.connectToServer(name)
    if not client.waitForConnected(timeout_ms):
        return False
    client.write(json.dumps(request).encode("utf-8") + b"\n")
    client.waitForBytesWritten(timeout_ms)
    answered = client.waitForReadyRead(timeout_ms) and bytes(client.readAll().data()) == ANSWER
    client.disconnectFromServer()
    return answered


class InstanceServer(QObject):
    """Listens for requests from later launches; emits each one on the UI thread."""

    request = Signal(dict)

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._server = QLocalServer(self)
        self._clients: set[QLocalSocket] = set()
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not self._server.listen(name):
            QLocalServer.removeServer(name)  # a socket file left behind by a studio that crashed
            self._server.listen(name)
        self._server.newConnection.connect(self._accept)

    @property
    def listening(self) -> bool:
        return self._server.isListening()

    def close(self) -> None:
        for client in list(self._clients):
            client.abort()
        self._server.close()

    def _accept(self) -> None:
        while (client := self._server.nextPendingConnection()) is not None:
            self._clients.add(client)
            client.readyRead.connect(self._read)
            client.disconnected.connect(self._dropped)

    def _dropped(self) -> None:
        client = self.sender()
        if client in self._clients:
            self._clients.discard(client)
            client.deleteLater()

    def _read(self) -> None:
        client = self.sender()
        if client not in self._clients:
            return
        if not client.canReadLine():
            if client.bytesAvailable() > _MESSAGE_LIMIT:
                client.abort()
            return
        line = bytes(client.readLine(_MESSAGE_LIMIT).data())
        client.write(ANSWER)
        client.flush()
        try:
            request = json.loads(line)
        except ValueError:
            return
        if isinstance(request, dict):
            self.request.emit(request)


class QuitOnSignals(QObject):
    """Runs ``quit`` on the UI thread when SIGTERM or SIGINT arrives.

    Python only runs signal handlers between bytecodes, and the Qt event loop is C++; the wakeup
    file descriptor wakes a socket notifier, which runs the handler's work in the event loop.
    """

    def __init__(self, quit: Callable[[], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._quit = quit
        self._reader, writer = socket.socketpair()
        self._reader.setblocking(False)
        writer.setblocking(False)
        self._writer = writer
        self._previous_fd = signal.set_wakeup_fd(writer.fileno())
        self._previous = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGTERM, signal.SIGINT)}
        self._notifier = QSocketNotifier(self._reader.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._woken)

    def _woken(self) -> None:
        try:
            self._reader.recv(64)
        except BlockingIOError:
            return
        self._quit()

    def restore(self) -> None:
        self._notifier.setEnabled(False)
        signal.set_wakeup_fd(self._previous_fd)
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._reader.close()
        self._writer.close()
