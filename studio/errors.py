"""The error types every layer raises for problems the user can fix, and nothing else.

Kept apart from ``studio.api`` (which re-exports them for plugins) so that the command line and
the window can name them without loading pydantic, numpy and the training helpers: the window's
start imports only what it shows first.
"""

from __future__ import annotations

from pathlib import Path


class StudioError(Exception):
    """A problem with the user's input or environment, explained in one sentence.

    The command line prints it and exits with code 2; the window shows it in a dialog.
    Raise it before anything is written, so that a refused request leaves nothing behind.

    ``str()`` is the command line's sentence, which may say which option to pass; ``window`` is
    the same fact in the window's words (the Dataset picker, not ``--data``), where they differ.
    """

    def __init__(self, message: str = "", *, window: str | None = None) -> None:
        super().__init__(message)
        self.window = window or message


class UntrustedFileError(StudioError):
    """Loading the file would run code from it, and the user has not said they trust it.

    ``str()`` is the command line's sentence (it says how to pass ``--trust``); ``reason`` is the
    same fact without that advice, for the window to ask its own question; ``path`` is the file.
    """

    def __init__(self, message: str, *, path: Path | None = None, reason: str | None = None) -> None:
        super().__init__(message, window=reason)
        self.path = path
        self.reason = reason or message


class ModelFormatError(StudioError):
    """The file is not a model the studio can read, or it is damaged."""


class DatasetError(StudioError):
    """The dataset is missing, malformed, or does not fit the model's inputs."""


class ParameterError(StudioError):
    """A technique's parameters are out of range or do not fit the model."""


class Cancelled(Exception):  # noqa: N818 - it is an outcome, not a failure
    """Raised inside a technique when the user cancelled it; the studio keeps nothing of the run."""


def first_line(exc: BaseException) -> str:
    """An exception as one line, for a sentence that names its cause.

    Libraries raise paragraphs (a traceback of their own, a list of candidates); the studio's
    refusals are one sentence, so they quote the first line, or the exception's type when the
    message is empty.
    """
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
