"""One module per model format, each recognising its files by content and opening them as one model.

Like Netron's format factories, every format module offers the same three things:

- ``match(path, head) -> bool``: whether the file's bytes (``head`` is its first bytes) are this
  format. Extensions are never trusted: a `.onnx` that is really a zip is a zip. A file that is
  clearly this format but damaged is refused here with a sentence that says so, because "not a
  model" would send the user looking in the wrong place.
- ``open(files, *, trusted) -> model``: the normalized model: an eval-mode ``torch.nn.Module`` for
  the PyTorch formats, the ``onnx.ModelProto`` for ONNX.
- ``runs_code(files) -> bool``: whether opening the file runs code from it, which is what the trust
  gate asks about before anything is opened. A code-bearing format refuses in ``open`` before it
  imports torch, so an untrusted file costs a moment and runs nothing.

Detection (:mod:`.kinds`) tries the formats in a fixed order; the first look at a file's
container (zip, pickle, text) is shared in :mod:`.content`. The package imports neither torch nor
onnx at import time: the window imports it at start-up.
"""
