"""The one refusal every code-bearing format gives before it runs anything from an untrusted file."""

from __future__ import annotations

from pathlib import Path

from studio.api import UntrustedFileError
from studio.core.files import sha256_file
from studio.core.model_files import ModelFormat


def untrusted_error(path: Path, fmt: ModelFormat) -> UntrustedFileError:
    """The refusal for a file that would run code, naming the hash the user is asked to trust.

    The hash is in the sentence because trust is recorded per hash: an edited file asks again.
    """
    digest = sha256_file(path)[:12]
    what = {
        ModelFormat.TORCH_ARCHITECTURE: "is Python code: loading the model runs it",
        ModelFormat.EXPORTED_PROGRAM: "holds native code or pickled Python objects: loading it runs code "
        "from the file",
        ModelFormat.TORCHSCRIPT: "is a TorchScript archive: loading it runs the archive's own code",
    }.get(fmt, "is a pickled PyTorch module: loading it runs code from the file")
    return UntrustedFileError(
        f"{path.name} {what}. Pass --trust if you trust it (sha256 {digest}…).",
        path=path,
        reason=f"{path.name} {what} (sha256 {digest}…)",
    )
