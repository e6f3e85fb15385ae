"""The public API that plugins import; the one module of the studio they may depend on.

It also holds the error type every layer raises for problems the user can fix, so that the
command line and the window can show one clear sentence instead of a traceback.
"""

from __future__ import annotations


class StudioError(Exception):
    """A problem with the user's input or environment, explained in one sentence.

    The command line prints it and exits with code 2; the window shows it in a dialog.
    Raise it before anything is written, so that a refused request leaves nothing behind.
    """


class UntrustedFileError(StudioError):
    """Loading the file would run code from it, and the user has not said they trust it."""


class ModelFormatError(StudioError):
    """The file is not a model the studio can read, or it is damaged."""


class DatasetError(StudioError):
    """The dataset is missing, malformed, or does not fit the model's inputs."""
