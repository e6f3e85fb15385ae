"""An architecture file runs from its own source: no bytecode is read from, or written beside, it.

Python's import system would prefer a ``__pycache__/*.pyc`` next to the file over the source the
user trusted, and would write one into the project's artifact folder, which then no longer
matches its manifest (sharing the project fails). These tests run with bytecode writing on, as
on a user's machine.
"""

from __future__ import annotations

import importlib.util
import os
import py_compile
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from studio.core.models import collect_files, load_torch_module


def _caches(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.name == "__pycache__" or p.suffix == ".pyc")


def _assert_computes_the_corpus_network(module: torch.nn.Module, corpus) -> None:
    x = corpus.example(2)
    with torch.no_grad():
        np.testing.assert_allclose(module(x).numpy(), corpus.reference(x.numpy()), rtol=1e-5, atol=1e-6)


def test_loading_an_architecture_file_writes_no_bytecode_beside_it(corpus, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    folder = tmp_path / "artifact"
    folder.mkdir()
    shutil.copy(corpus.arch, folder / "model.py")
    shutil.copy(corpus.arch_weights, folder / "weights.pt")

    module = load_torch_module(collect_files(folder / "model.py", folder / "weights.pt"), trusted=True)

    _assert_computes_the_corpus_network(module, corpus)
    assert _caches(folder) == []


def test_bytecode_planted_beside_a_trusted_file_is_never_run(corpus, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    folder = tmp_path / "artifact"
    folder.mkdir()
    source = folder / "model.py"
    arch_source = corpus.arch.read_text()
    source.write_text(arch_source)
    shutil.copy(corpus.arch_weights, folder / "weights.pt")
    marker = tmp_path / "planted-code-ran"
    # Bytecode an attacker compiled from other source, placed where the import system looks first,
    # with the source's own size and modification time so that it would be taken as current.
    planted = tmp_path / "planted.py"
    planted.write_text(f"open({str(marker)!r}, 'w').close()\n" + arch_source)
    stat = source.stat()
    os.utime(planted, (stat.st_atime, stat.st_mtime))
    cache = Path(importlib.util.cache_from_source(str(source)))
    cache.parent.mkdir()
    py_compile.compile(
        str(planted), cfile=str(cache), invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
    )

    module = load_torch_module(collect_files(source, folder / "weights.pt"), trusted=True)

    _assert_computes_the_corpus_network(module, corpus)
    assert not marker.exists(), "the planted bytecode ran instead of the trusted source"
    assert _caches(folder) == [cache.parent, cache]  # nothing added, nothing rewritten
